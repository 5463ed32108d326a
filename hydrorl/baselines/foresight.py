"""What foresight is worth: planners that see the next steps, exactly or as a forecast.

Every ``every`` steps, :func:`limited_foresight` solves the LP of the next
``lookahead`` steps (:func:`~hydrorl.baselines.bound.solve_window`'s, re-solved warm
by a :class:`~hydrorl.baselines.window.WindowSolver`) from the present volumes, with
their prices and inflows known exactly, values the water left at the window's end
with the benchmark's water values of that time of year, and follows the first
``every`` steps of the plan through the physics.  With the whole horizon in sight it
is the perfect-foresight bound; with a day in sight it is the benchmark's water
values plus a day of exact forecast.  Between the two it measures how much of the
gap between the benchmark and the bound is the value of knowing the future, which
no policy that sees only the present can earn.

Given a ``forecast`` (:class:`CalendarForecast`: the calendar and the scenario's
own past only) the same planner is a policy that knows no more than the agents do:
it plans on expected prices and inflows and re-plans as they come.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from hydrorl.baselines.bound import ConcaveEndValue, LinearEndValue
from hydrorl.baselines.sdp import WaterValues, _stage_of_year
from hydrorl.baselines.window import EndValue, WindowSolver
from hydrorl.physics import Problem
from hydrorl.physics.cascade import end_water_value_eur, step

#: ``(scenario, t, stop) -> (price, inflow)`` for steps ``t`` to ``stop``: what a planner expects.
Forecast = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class ForesightResult:
    """What the limited-foresight planner earned on one scenario."""

    scenario: int
    lookahead_steps: int
    every_steps: int
    revenue_eur: float
    end_value_eur: float
    solves: int

    @property
    def total_eur(self) -> float:
        return self.revenue_eur + self.end_value_eur


@dataclasses.dataclass(frozen=True)
class Planner:
    """Plan ``lookahead_steps`` ahead from any state; the plan's first ``every_steps`` are played.

    ``values`` (the benchmark's water values) price the water left at the end of
    a window that stops before the horizon; a window reaching the horizon's end
    uses the problem's own end value, as the bound does.  The plan sees the
    scenario's exact future unless a ``forecast`` is given.

    The windows' LPs are re-solved warm, one :class:`~hydrorl.baselines.window.WindowSolver`
    per window length (the last windows before the horizon's end are shorter), built
    on first use in the process that plans: a Planner pickles without them.
    """

    problem: Problem
    values: WaterValues
    lookahead_steps: int
    every_steps: int
    forecast: Forecast | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.every_steps <= self.lookahead_steps:
            raise ValueError(
                f"need 1 <= every_steps <= lookahead_steps, "
                f"got {self.every_steps} and {self.lookahead_steps}"
            )

    @functools.cached_property
    def _stages(self) -> np.ndarray:
        _, year_angle = self.problem.time_angles()
        return _stage_of_year(year_angle / (2 * np.pi), self.values.n_stages)

    @functools.cached_property
    def _solvers(self) -> collections.OrderedDict[int, WindowSolver]:
        """Solvers by window length, the most recently used last."""
        return collections.OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        # HiGHS models do not pickle; a Planner sent to a worker builds its own there.
        state = dict(self.__dict__)
        state.pop("_solvers", None)
        return state

    def window(
        self, scenario: int, t: int
    ) -> tuple[int, EndValue, np.ndarray | None, np.ndarray | None]:
        """The LP planned at step ``t``: its stop, end value, expected prices and inflows.

        The prices and inflows are ``None`` where the plan sees the scenario's own.
        """
        problem, values = self.problem, self.values
        stop = min(t + self.lookahead_steps, problem.n_steps)
        if stop == problem.n_steps:
            end: EndValue = LinearEndValue(problem)
        else:
            end = ConcaveEndValue(
                values.levels_mwh, values.values_eur[self._stages[stop]], values.energy_per_mm3
            )
        if self.forecast is None:
            return stop, end, None, None
        return stop, end, *self.forecast(scenario, t, stop)

    def plan(self, scenario: int, t: int, volume_mm3: np.ndarray) -> np.ndarray:
        """Discharge fractions (k, S) for steps ``t`` to ``t + k``, ``k`` up to ``every_steps``."""
        stop, end, price, inflow = self.window(scenario, t)
        solver = self._solver(stop - t)
        _, discharge, _ = solver.solve(scenario, t, stop, volume_mm3, end, price, inflow)
        k = min(self.every_steps, stop - t)
        return np.clip(discharge[:k] / self.problem.cascade.max_discharge_m3s, 0.0, 1.0)

    def _solver(self, n_steps: int) -> WindowSolver:
        solvers = self._solvers
        if n_steps in solvers:
            solvers.move_to_end(n_steps)
        else:
            n_segments = self.values.levels_mwh.size - 1
            solvers[n_steps] = WindowSolver(self.problem, n_steps, n_segments)
            if len(solvers) > _SOLVERS_KEPT:
                solvers.popitem(last=False)
        return solvers[n_steps]


class PlannerGuide:
    """A :class:`Planner` as the guide of batched episodes
    (:data:`~hydrorl.physics.episode.Guide`): each row follows its plan for ``every_steps``
    and is re-planned from where it is when the plan runs out, or when the row has moved to
    another scenario or step (a new episode)."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._plans: dict[int, tuple[int, int, np.ndarray]] = {}  # row: (scenario, first t, plan)
        self.solves = 0

    def __call__(self, scenarios: np.ndarray, t: np.ndarray, volumes: np.ndarray) -> np.ndarray:
        n_stations = self.planner.problem.cascade.n_stations
        out = np.empty((len(scenarios), n_stations))
        for row, (scenario, now) in enumerate(zip(scenarios.tolist(), t.tolist(), strict=True)):
            kept = self._plans.get(row)
            if kept is None or kept[0] != scenario or not 0 <= now - kept[1] < len(kept[2]):
                kept = (scenario, now, self.planner.plan(scenario, now, volumes[row]))
                self._plans[row] = kept
                self.solves += 1
            out[row] = kept[2][now - kept[1]]
        return out


#: Window lengths a Planner keeps a solver for: its own and the last shorter ones (near the
#: horizon's end, where scenarios planned in step with each other share each length).
_SOLVERS_KEPT = 3


def limited_foresight(
    problem: Problem,
    scenario: int,
    values: WaterValues,
    lookahead_steps: int,
    every_steps: int,
    start_volumes: np.ndarray | None = None,
    forecast: Forecast | None = None,
    progress: Callable[[float], None] | None = None,
) -> ForesightResult:
    """Play a :class:`Planner`'s plans over the whole horizon of ``scenario``.

    ``progress`` is told the share of the horizon done before each plan (it may raise to stop).
    """
    planner = Planner(problem, values, lookahead_steps, every_steps, forecast)
    c = problem.cascade
    volume = problem.default_start_volumes() if start_volumes is None else start_volumes
    volume = np.asarray(volume, dtype=float)[None, :]
    price, inflow = problem.price_eur_mwh[scenario], problem.inflow_m3s[scenario]
    revenue, solves, t = 0.0, 0, 0
    while t < problem.n_steps:
        if progress is not None:
            progress(t / problem.n_steps)
        plan = planner.plan(scenario, t, volume[0])
        solves += 1
        for k in range(len(plan)):
            result = step(
                c,
                volume,
                plan[k][None, :],
                inflow[t + k : t + k + 1],
                price[t + k : t + k + 1],
                problem.dt_s,
            )
            volume = result.volume_mm3
            revenue += float(result.revenue_eur[0])
        t += len(plan)
    end_value = float(end_water_value_eur(c, volume, problem.water_price_eur_mwh)[0])
    return ForesightResult(scenario, lookahead_steps, every_steps, revenue, end_value, solves)


@dataclasses.dataclass(frozen=True)
class CalendarForecast:
    """Expected prices and inflows from the calendar and the scenario's own past only.

    Fitted on the training forecast by least squares: the price on the season (four
    harmonics of the year), the time of day and the day of the week; the log of the
    inflow on the season.  What remains is forecast to fade from its present value at
    the persistence measured on the training forecast (lag-one autocorrelation), the
    price's towards its recent level (an exponential average of the past).
    """

    price_coef: np.ndarray
    inflow_coef: np.ndarray
    price_persistence: float
    inflow_persistence: float
    level_memory_steps: float

    @classmethod
    def fit(cls, training: Problem, level_memory_days: float = 30.0) -> CalendarForecast:
        x = _calendar(training)
        price_coef = np.linalg.lstsq(
            np.tile(x, (training.n_scenarios, 1)), training.price_eur_mwh.reshape(-1), rcond=None
        )[0]
        season = x[:, : 1 + 2 * _HARMONICS]
        log_inflow = np.log(np.maximum(training.inflow_m3s, 1e-6))
        inflow_coef = np.linalg.lstsq(
            np.tile(season, (training.n_scenarios, 1)), log_inflow.reshape(-1), rcond=None
        )[0]
        price_rest = training.price_eur_mwh - x @ price_coef
        price_rest -= price_rest.mean(axis=1, keepdims=True)  # each scenario's own level
        return cls(
            price_coef,
            inflow_coef,
            _persistence(price_rest),
            _persistence(log_inflow - season @ inflow_coef),
            level_memory_days * 86_400.0 / training.dt_s,
        )

    def bind(self, problem: Problem) -> Forecast:
        """The forecast for ``problem``'s scenarios: at step ``t`` it reads steps up to ``t``."""
        x = _calendar(problem)
        price_mean = x @ self.price_coef  # (T,)
        inflow_mean = x[:, : 1 + 2 * _HARMONICS] @ self.inflow_coef
        price_rest = problem.price_eur_mwh - price_mean
        inflow_rest = np.log(np.maximum(problem.inflow_m3s, 1e-6)) - inflow_mean
        level = np.empty_like(price_rest)  # exponential average of the past price residual
        weight = 1.0 / self.level_memory_steps
        level[:, 0] = 0.0
        for t in range(1, problem.n_steps):
            level[:, t] = level[:, t - 1] + weight * (price_rest[:, t - 1] - level[:, t - 1])

        def forecast(scenario: int, t: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            k = np.arange(stop - t)
            lv = level[scenario, t]
            price = (
                price_mean[t:stop] + lv + self.price_persistence**k * (price_rest[scenario, t] - lv)
            )
            inflow = np.exp(
                inflow_mean[t:stop] + self.inflow_persistence**k * inflow_rest[scenario, t]
            )
            return price, inflow

        return forecast


_HARMONICS = 4


def _calendar(problem: Problem) -> np.ndarray:
    """(T, F): 1, season harmonics, time-of-day and weekday indicators (one of each left out)."""
    day, year = problem.time_angles()
    per_day = max(1, round(86_400.0 / problem.dt_s))
    columns = [np.ones(problem.n_steps)]
    for h in range(1, _HARMONICS + 1):
        columns += [np.cos(h * year), np.sin(h * year)]
    slot = np.minimum((day / (2 * np.pi) * per_day).astype(int), per_day - 1)
    weekday = np.minimum((problem.week_angle() / (2 * np.pi) * 7).astype(int), 6)
    columns += [(slot == i).astype(float) for i in range(1, per_day)]
    columns += [(weekday == i).astype(float) for i in range(1, 7)]
    return np.stack(columns, axis=1)


def _persistence(rest: np.ndarray) -> float:
    """Lag-one autocorrelation of residuals (S, T), pooled over scenarios."""
    a, b = rest[:, :-1].reshape(-1), rest[:, 1:].reshape(-1)
    return float(np.clip((a * b).sum() / max((a * a).sum(), 1e-12), 0.0, 0.9999))
