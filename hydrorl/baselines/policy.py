"""The one policy shape every player of the evaluation has: SB3's ``predict``.

RL agents are SB3 models; baselines subclass :class:`Policy` so that one
evaluator (:func:`hydrorl.evaluation.evaluate_policy`) plays all of them.
"""

from __future__ import annotations

import numpy as np

from hydrorl.physics import Problem
from hydrorl.physics.episode import ObservationLayout


class Policy:
    """A baseline policy reading the observations of ``problem`` with ``horizon`` future steps."""

    def __init__(self, problem: Problem, horizon: int = 0) -> None:
        self.problem = problem
        self.layout = ObservationLayout(problem.cascade.n_reservoirs, horizon)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Discharge fractions (B, S) for observations (B, D)."""
        raise NotImplementedError

    def predict(
        self,
        observation: np.ndarray,
        state: object = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's signature: actions for a batch (or one) observation, and no recurrent state."""
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        actions = self.act(obs[None, :] if single else obs).astype(np.float32)
        return (actions[0] if single else actions), None


def pass_through_fractions(
    problem: Problem, obs_volumes_mm3: np.ndarray, inflow_m3s: np.ndarray, wanted: np.ndarray
) -> np.ndarray:
    """Raise the wanted fractions (B, S) where a reservoir would otherwise spill this step.

    Walks the cascade upstream first, predicting what arrives in each reservoir
    from the stations above, as an operator would: water is released through
    the turbines rather than spilled.
    """
    c = problem.cascade
    to_mm3 = problem.dt_s * 1e-6
    fractions = np.clip(wanted, 0.0, 1.0).copy()
    arrivals = np.zeros_like(obs_volumes_mm3)
    for r in c.order:
        stations = c.stations_from(r)
        available = obs_volumes_mm3[:, r] + to_mm3 * (
            c.inflow_factor[r] * inflow_m3s + arrivals[:, r]
        )
        if stations.size:
            capacity = c.max_discharge_m3s[stations]
            planned = (fractions[:, stations] * capacity).sum(axis=1)
            needed = np.maximum(available - c.max_volume_mm3[r], 0.0) / to_mm3
            usable = np.maximum(available - c.min_volume_mm3[r], 0.0) / to_mm3
            total = np.minimum(np.maximum(planned, needed), np.minimum(usable, capacity.sum()))
            fractions[:, stations] = (total / capacity.sum())[:, None]
            released = fractions[:, stations] * capacity
            for k, s in enumerate(stations):
                if c.downstream[s] >= 0:
                    arrivals[:, c.downstream[s]] += released[:, k]
            available = available - to_mm3 * released.sum(axis=1)
        overflow = np.maximum(available - c.max_volume_mm3[r], 0.0) / to_mm3
        if c.spill_to[r] >= 0:
            arrivals[:, c.spill_to[r]] += overflow
    return fractions
