"""Observation and action spaces shared by the single and the vectorised environment."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from hydrorl.physics.episode import ObservationLayout


def observation_space(layout: ObservationLayout) -> spaces.Box:
    low = np.full(layout.size, -np.inf, dtype=np.float32)
    high = np.full(layout.size, np.inf, dtype=np.float32)
    low[: layout.n_reservoirs], high[: layout.n_reservoirs] = 0.0, 1.0
    for part in (layout.time_of_day, layout.time_of_year):
        low[part], high[part] = -1.0, 1.0
    low[layout.progress], high[layout.progress] = 0.0, 1.0
    return spaces.Box(low, high, dtype=np.float32)


def action_space(n_stations: int, guided: bool = False) -> spaces.Box:
    """Discharge of each station as a fraction of its maximum; guided, a correction in [-1, 1]
    of the guide's (see :class:`~hydrorl.physics.episode.EpisodeDesign`'s ``residual_scale``)."""
    if guided:
        return spaces.Box(-1.0, 1.0, shape=(n_stations,), dtype=np.float32)
    return spaces.Box(0.0, 1.0, shape=(n_stations,), dtype=np.float32)


def scalar_info(info: dict, row: int) -> dict[str, float]:
    """The reward components of one row as plain floats."""
    keys = (
        "revenue_eur",
        "end_value_eur",
        "reward_eur",
        "spill_mm3",
        "generation_mwh",
        "price_eur_mwh",
        "inflow_m3s",
    )
    return {k: float(info[k][row]) for k in keys}
