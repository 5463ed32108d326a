"""Validation: what an agent's policy is truly worth on training scenarios it never learns on.

A run holds some of its training scenarios aside (:func:`split`, the same for all its
agents).  A policy is played deterministically over the first ``validation_days`` of each
(the whole horizon if shorter) from the run's start volumes, and scored by its true value,
as the evaluation counts it: revenue plus the end water value.  Beside it, on the same
episodes, the perfect-foresight bound, the SDP benchmark and the planner the agents
imitate: the score is shown as a share of the bound and against the best of the classical
policies, and the best checkpoint of an agent is its best validated one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from hydrorl.physics import Problem

if TYPE_CHECKING:
    from hydrorl.baselines.foresight import Forecast
    from hydrorl.baselines.sdp import WaterValues

#: Curves an agent records about its validation (TrainStepData names) and their units.
VALUE = "validation/value_eur"
SHARE = "validation/share_of_bound"
VERSUS = "validation/vs_best_classical"
#: Reference lines: the classical policies on the same episodes, as a share of the bound.
REFERENCES = {"sdp": "reference/sdp_share_of_bound", "planner": "reference/planner_share_of_bound"}
UNITS = {VALUE: "EUR", SHARE: "%", VERSUS: "x", **{n: "%" for n in REFERENCES.values()}}


def split(n_scenarios: int, held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(scenarios to learn on, scenarios held aside) of a run with ``seed``.

    At most a quarter of the scenarios are held aside; with fewer than four nothing is, and
    the validation plays the training scenarios themselves.
    """
    every = np.arange(n_scenarios)
    if held <= 0:
        return every, every[:0]
    held = min(held, n_scenarios // 4)
    if held == 0:
        return every, every
    aside = np.sort(np.random.default_rng([seed, 13]).choice(n_scenarios, held, replace=False))
    return np.setdiff1d(every, aside), aside


@dataclasses.dataclass
class Validation:
    """The held-aside episodes of a run and the classical yardsticks' values on them."""

    problem: Problem
    start_volumes: np.ndarray | None
    options: dict[str, Any]
    bound_eur: float
    sdp_eur: float
    planner_eur: float | None = None

    @property
    def best_classical_eur(self) -> float:
        return max(v for v in (self.sdp_eur, self.planner_eur) if v is not None)

    def score(self, model: Any) -> float:
        """The mean true value (EUR) of the policy of ``model`` (SB3's predict) on the episodes."""
        from hydrorl.evaluation import evaluate_policy

        return _mean_total(evaluate_policy(model, self.problem, self.start_volumes, **self.options))

    def share(self, value_eur: float) -> float:
        return value_eur / self.bound_eur if self.bound_eur else float("nan")

    def points(self, value_eur: float) -> dict[str, float]:
        """The curve points of a validation: its value, share of the bound, and against the best
        classical policy."""
        return {
            VALUE: value_eur,
            SHARE: 100.0 * self.share(value_eur),
            VERSUS: value_eur / self.best_classical_eur if self.best_classical_eur else np.nan,
        }

    def reference_points(self) -> dict[str, float]:
        out = {REFERENCES["sdp"]: 100.0 * self.share(self.sdp_eur)}
        if self.planner_eur is not None:
            out[REFERENCES["planner"]] = 100.0 * self.share(self.planner_eur)
        return out


def episodes(training: Problem, aside: np.ndarray, days: float) -> Problem:
    """The validation episodes: the scenarios ``aside`` over their first ``days``."""
    per_day = 86_400.0 / training.dt_s
    steps = training.n_steps if days <= 0 else min(training.n_steps, round(days * per_day))
    return training.scenarios(aside).horizon(max(1, steps))


def bound_eur(problem: Problem, scenario: int, start_volumes: np.ndarray | None) -> float:
    """The perfect-foresight bound of one validation episode."""
    from hydrorl.baselines import perfect_foresight

    return float(perfect_foresight(problem, scenario, start_volumes).total_eur)


def sdp_eur(problem: Problem, values: WaterValues, start_volumes: np.ndarray | None) -> float:
    """The SDP benchmark's mean true value on the validation episodes."""
    from hydrorl.baselines import WaterValuePolicy
    from hydrorl.evaluation import evaluate_policy

    return _mean_total(evaluate_policy(WaterValuePolicy(problem, values), problem, start_volumes))


def planner_eur(
    problem: Problem,
    scenario: int,
    values: WaterValues,
    lookahead_days: float,
    forecast: Callable[[Problem], Forecast],
    start_volumes: np.ndarray | None,
    progress: Callable[[float], None] | None = None,
) -> float:
    """The forecast planner (the guided agents' guide, the imitating agents' teacher) on one
    validation episode: hundreds of LPs, seconds; ``progress`` is told the share done before
    each plan (it may raise to stop)."""
    from hydrorl.baselines.foresight import limited_foresight
    from hydrorl.training.imitation import teacher

    planner = teacher(problem, values, lookahead_days, forecast)
    return float(
        limited_foresight(
            problem,
            scenario,
            values,
            planner.lookahead_steps,
            planner.every_steps,
            start_volumes,
            planner.forecast,
            progress,
        ).total_eur
    )


def _mean_total(result: Any) -> float:
    return float(result.totals["total_eur"].mean())
