"""One evaluation path: any policy with SB3's ``predict`` over every scenario of a problem.

Every scenario is played over its whole horizon from the same start volumes,
all scenarios at once as rows of one batched physics call (or ``batch_size`` at
a time).  Totals come out as a DataFrame; per-step series as arrays, and one
scenario's steps as a DataFrame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hydrorl.physics import MM3_PER_M3, Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, Guide, Potential


class Predictor(Protocol):
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]: ...


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Per-scenario totals and per-step series of one policy on one problem."""

    problem: Problem
    totals: pd.DataFrame
    volume_mm3: np.ndarray  # (S, T + 1, R)
    discharge_m3s: np.ndarray  # (S, T, St)
    spill_m3s: np.ndarray  # (S, T, R)
    generation_mwh: np.ndarray  # (S, T, St)
    revenue_eur: np.ndarray  # (S, T)
    reward_eur: np.ndarray  # (S, T): revenue, plus the end water value on the last step

    def episode(self, scenario: int | str) -> pd.DataFrame:
        """The steps of one scenario: time, price, inflow, volumes, discharges, spill, reward."""
        p = self.problem
        s = p.scenario_names.index(scenario) if isinstance(scenario, str) else scenario
        c = p.cascade
        frame = pd.DataFrame(
            {
                "time": p.times(),
                "price_eur_mwh": p.price_eur_mwh[s],
                "inflow_m3s": p.inflow_m3s[s],
            }
        )
        for r, name in enumerate(c.reservoir_names):
            frame[f"volume_mm3:{name}"] = self.volume_mm3[s, 1:, r]
        for k, name in enumerate(c.station_names):
            frame[f"discharge_m3s:{name}"] = self.discharge_m3s[s, :, k]
            frame[f"generation_mwh:{name}"] = self.generation_mwh[s, :, k]
        for r, name in enumerate(c.reservoir_names):
            frame[f"spill_m3s:{name}"] = self.spill_m3s[s, :, r]
        frame["revenue_eur"] = self.revenue_eur[s]
        frame["reward_eur"] = self.reward_eur[s]
        return frame


def evaluate_policy(
    policy: Predictor,
    problem: Problem,
    start_volumes: np.ndarray | None = None,
    *,
    forecast_horizon_steps: int = 0,
    batch_size: int | None = None,
    marginal: Potential | None = None,
    spill_guard: bool = False,
    context_features: bool = False,
    bootstrap_window_ends: bool = False,
    expected: tuple[np.ndarray, np.ndarray] | None = None,
    guide: Guide | None = None,
    residual_scale: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> EvaluationResult:
    """Play ``policy`` deterministically over the whole horizon of every scenario.

    ``forecast_horizon_steps`` and ``marginal`` (the water value feature) must be
    (with ``context_features`` and ``bootstrap_window_ends``, which hides the progress) what
    the policy was trained to observe (``expected``: the forecast features, see
    :class:`~hydrorl.physics.episode.BatchedEpisodes`), ``spill_guard`` and ``guide`` with
    ``residual_scale`` (actions correct the guide's) how its actions were read.
    ``progress`` is told the share done every few hundred steps (it may raise to stop).
    """
    c = problem.cascade
    n_s, n_t = problem.n_scenarios, problem.n_steps
    design = EpisodeDesign(
        episode_steps=0,
        forecast_horizon_steps=forecast_horizon_steps,
        spill_guard=spill_guard,
        context_features=context_features,
        bootstrap_window_ends=bootstrap_window_ends,
        forecast_features=expected is not None,
        residual_scale=residual_scale if guide is not None else 0.0,
    )
    volume = np.empty((n_s, n_t + 1, c.n_reservoirs))
    discharge = np.empty((n_s, n_t, c.n_stations))
    spill = np.empty((n_s, n_t, c.n_reservoirs))
    generation = np.empty((n_s, n_t, c.n_stations))
    revenue = np.empty((n_s, n_t))
    reward = np.empty((n_s, n_t))
    size = batch_size or n_s
    for lo in range(0, n_s, size):
        rows = np.arange(lo, min(lo + size, n_s))
        episodes = BatchedEpisodes(
            problem,
            rows.size,
            design,
            scenarios=rows,
            start_volumes=start_volumes,
            marginal=marginal,
            expected=None if expected is None else (expected[0][rows], expected[1][rows]),
            guide=guide,  # (a PlannerGuide re-plans a row that moved to another scenario)
        )
        obs = episodes.observe()
        volume[rows, 0] = episodes.volume
        for t in range(n_t):
            if progress is not None and t % 256 == 0:
                progress((lo + rows.size * t / n_t) / n_s)
            action, _ = policy.predict(obs, deterministic=True)
            obs, _, _, info = episodes.step(np.asarray(action, dtype=float))
            result = info["result"]
            volume[rows, t + 1] = result.volume_mm3
            discharge[rows, t] = result.discharge_m3s
            spill[rows, t] = result.spill_m3s
            generation[rows, t] = result.generation_mwh
            revenue[rows, t] = info["revenue_eur"]
            reward[rows, t] = info["reward_eur"]
    end_value = reward[:, -1] - revenue[:, -1]
    totals = pd.DataFrame(
        {
            "scenario": problem.scenario_names,
            "revenue_eur": revenue.sum(axis=1),
            "end_value_eur": end_value,
            "total_eur": revenue.sum(axis=1) + end_value,
            "spill_mm3": spill.sum(axis=(1, 2)) * problem.dt_s * MM3_PER_M3,
            "end_volume_mm3": volume[:, -1].sum(axis=1),
        }
    )
    return EvaluationResult(problem, totals, volume, discharge, spill, generation, revenue, reward)


def evaluate_agent(
    model: Any,
    problem: Problem,
    start_volumes: np.ndarray | None = None,
    *,
    batch_size: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> EvaluationResult:
    """Play a HydroRL agent (a model trained by the recipe, or loaded from its checkpoint) over
    every scenario of ``problem``, as it observes: its :class:`~hydrorl.env.spec.ObservationSpec`
    (carried by the model) gives the features, the training scales and the water values, so no
    training settings are needed.  A problem of another system is refused."""
    from hydrorl.env.spec import ObservationSpec

    spec = ObservationSpec.of(model)
    spec.check(problem, model)
    seen = spec.view(problem)
    return evaluate_policy(
        model,
        seen,
        start_volumes,
        batch_size=batch_size,
        progress=progress,
        **spec.evaluation_options(seen),
    )
