"""A run's curves as the monitor draws them: which curves there are and what their axes say,
TensorBoard's debiased smoothing, and the points read so far per agent (:class:`RunCurves`).

Plain computation on frames of points, no Panel: the monitor (:mod:`hydrorl.ui.monitor`)
streams what this returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from hydrorl.training import validation
from hydrorl.training.recipe import ACTOR_LOSS, ANCHOR_LOSS, CRITIC_LOSS

#: The columns of an exported point (with its agent).
EXPORTED_COLUMNS = ["timestep", "wall_time", "value", "smooth"]
#: The columns of a drawn point: its x in each unit, raw and smoothed value, agent.
DRAWN_COLUMNS = ["timestep", "wall_time", "relative_time", "value", "smooth", "agent"]

#: The curves the selector offers, by group, in the order shown: HydroRL's own and SB3's
#: (its ``train/`` values, recorded without the prefix, for every algorithm offered).
SERIES_GROUPS: dict[str, tuple[str, ...]] = {
    "validation": (validation.SHARE, validation.VALUE, validation.VERSUS),
    "imitation": (ACTOR_LOSS, CRITIC_LOSS, ANCHOR_LOSS),
    "training": (
        "episode_reward",
        "episode_value_eur",
        "episode_revenue_eur",
        *("loss", "entropy_loss", "policy_gradient_loss", "value_loss", "policy_loss"),
        *("actor_loss", "critic_loss", "ent_coef", "ent_coef_loss", "approx_kl"),
        *("clip_fraction", "clip_range", "clip_range_vf", "explained_variance", "std"),
        *("learning_rate", "n_updates"),
    ),
}
#: What the y axis says of a curve: the quantity and its unit.
SERIES_LABELS = {
    validation.SHARE: "validation value (% of bound)",
    validation.VALUE: "validation value (EUR)",
    validation.VERSUS: "validation value (x best classical policy)",
    ACTOR_LOSS: "imitation loss (actor)",
    CRITIC_LOSS: "imitation loss (critic)",
    ANCHOR_LOSS: "imitation anchor loss",
    "episode_reward": "episode reward (EUR, scaled)",
    "episode_value_eur": "episode value (EUR)",
    "episode_revenue_eur": "episode revenue (EUR)",
}
#: Curves whose x counts fitting epochs of the imitation, not environment steps.
EPOCH_SERIES = frozenset({ACTOR_LOSS, CRITIC_LOSS})


def forecast_warning(run_id: int, others: Iterable[int], forecasts: Mapping[int, str]) -> str:
    """What to say when runs compared with ``run_id`` learnt on other forecasts (their
    forecast's name by run in ``forecasts``); "" when they all learnt on the same one."""
    mine = forecasts.get(run_id)
    differ = {r: forecasts.get(r) for r in others if forecasts.get(r) != mine}
    if not differ:
        return ""
    theirs = ", ".join(f"run {r} on forecast '{f}'" for r, f in sorted(differ.items()))
    return (
        f"Run {run_id} learnt on forecast '{mine}', {theirs}: other scenarios,"
        " so their curves are not comparable point for point."
    )


def default_series(present: set[str]) -> str:
    """The curve a run opens on: its validation when it has one, else the episode reward."""
    return validation.SHARE if validation.SHARE in present else "episode_reward"


def series_groups(present: set[str], current: str) -> dict[str, list[str]]:
    """The selector's options by group: the curves the run has, the one shown, and the episode
    reward (every agent records it: a run just started has it soon)."""
    shown = present | {current, "episode_reward"}
    groups = {g: [n for n in names if n in shown] for g, names in SERIES_GROUPS.items()}
    known = {n for names in SERIES_GROUPS.values() for n in names}
    groups["training"] += sorted(shown - known)
    return {g: names for g, names in groups.items() if names}


def x_label(series: str, x_axis: str) -> str:
    if x_axis == "wall_time":
        return "wall time (UTC)"
    if x_axis == "relative_time":
        return "relative wall time (min)"
    return "fitting epoch" if series in EPOCH_SERIES else "timesteps"


def y_label(series: str) -> str:
    """The y axis of ``series``: what it measures, in which unit (SB3's own names as SB3's)."""
    if series in SERIES_LABELS:
        return SERIES_LABELS[series]
    if series in SERIES_GROUPS["training"]:
        return f"SB3 {series.replace('_', ' ')} (train/{series})"
    return series


def smooth(
    values: np.ndarray, weight: float, state: tuple[float, int] = (0.0, 0)
) -> tuple[np.ndarray, tuple[float, int]]:
    """TensorBoard's smoothing of ``values``, continuing from ``state``; the new state.

    An exponential moving average ``last = weight * last + (1 - weight) * value`` started
    at 0 and debiased by ``1 - weight ** n`` after ``n`` points (as TensorBoard does, so
    that the first points are not pulled towards 0): ``weight`` 0 returns the values,
    towards 1 smoother.  Non-finite values are passed through and leave the average as
    it is.  ``state`` is (the average before debiasing, the points it has taken in).
    """
    values = np.asarray(values, dtype=float)
    out = values.copy()
    finite = np.isfinite(values)
    points = values[finite]
    if len(points) == 0:
        return out, state
    last, count = state
    average, _ = lfilter([1.0 - weight], [1.0, -weight], points, zi=[weight * last])
    taken = count + np.arange(1, len(points) + 1)
    out[finite] = average / (1.0 - weight**taken)
    return out, (float(average[-1]), int(taken[-1]))


class RunCurves:
    """One run's points of a curve as read so far, smoothed, kept so that a refresh costs only
    the new points.

    Each agent's smoothed values are also summed into fixed timestep bins (the run's
    target split in ``bins``), so the mean ± std band across agents is computed from
    ``agents x bins`` numbers however many points are stored.  ``origin`` is the run's
    start: the zero of the relative wall time (minutes).
    """

    def __init__(
        self,
        horizon: float,
        weight: float,
        bins: int = 60,
        origin: pd.Timestamp | None = None,
    ) -> None:
        self.weight, self.bins, self.origin = weight, bins, origin
        self.width = max(float(horizon), 1.0) / bins
        #: The last point id seen per agent (see ``Workbench.curves``: exact on every backend).
        self.watermark: dict[int, int] = {}
        self.state: dict[int, tuple[float, int]] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.counts: dict[int, np.ndarray] = {}
        self._chunks: dict[int, list[pd.DataFrame]] = {}

    def add(self, new: pd.DataFrame, every: int = 1) -> dict[int, pd.DataFrame]:
        """Take points newer than the last seen; return them per agent with their smoothed value.

        ``every`` > 1 says the points are one in ``every`` of a long history: the
        smoothing weight is raised to that power, so that the curve keeps its time constant.
        """
        weight = self.weight**every
        if new.empty:
            return {}
        self.watermark = dict(new.attrs.get("watermark") or self.watermark)
        for agent, last in new.groupby("agent")["id"].max().items():
            self.watermark[int(agent)] = max(int(last), self.watermark.get(int(agent), 0))
        if self.origin is None:
            self.origin = pd.Timestamp(new["wall_time"].min())
        out = {}
        for agent, points in new.groupby("agent"):
            agent = int(agent)
            values = points["value"].to_numpy(dtype=float)
            smoothed, self.state[agent] = smooth(values, weight, self.state.get(agent, (0.0, 0)))
            timesteps = points["timestep"].to_numpy(dtype=float)
            index = np.clip((timesteps // self.width).astype(int), 0, self.bins - 1)
            sums = self.sums.setdefault(agent, np.zeros(self.bins))
            counts = self.counts.setdefault(agent, np.zeros(self.bins))
            finite = np.isfinite(smoothed)
            np.add.at(sums, index[finite], smoothed[finite])
            np.add.at(counts, index[finite], 1)
            wall_time = pd.to_datetime(points["wall_time"]).reset_index(drop=True)
            frame = pd.DataFrame(
                {
                    "timestep": timesteps,
                    "wall_time": wall_time,
                    "relative_time": (wall_time - self.origin).dt.total_seconds() / 60.0,
                    "value": values,
                    "smooth": smoothed,
                    "agent": agent,
                }
            )
            self._chunks.setdefault(agent, []).append(frame)
            out[agent] = frame
        return out

    def history(self, agent: int) -> pd.DataFrame:
        """Every point of ``agent`` taken so far, oldest first."""
        chunks = self._chunks.get(agent) or [pd.DataFrame(columns=DRAWN_COLUMNS)]
        if len(chunks) > 1:
            chunks[:] = [pd.concat(chunks, ignore_index=True)]
        return chunks[0]

    def band(self, min_agents: int = 2) -> pd.DataFrame:
        """Mean ± std across agents of their bin means, over the bins every agent has reached."""
        if len(self.sums) < min_agents:
            return pd.DataFrame(columns=["timestep", "mean", "std"])
        sums = np.array(list(self.sums.values()))
        counts = np.array(list(self.counts.values()))
        reached = (counts > 0).all(axis=0)
        means = sums[:, reached] / counts[:, reached]
        centres = (np.arange(self.bins)[reached] + 0.5) * self.width
        return pd.DataFrame({"timestep": centres, "mean": means.mean(0), "std": means.std(0)})
