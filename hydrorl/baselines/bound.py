"""The perfect-foresight bound: one linear programme per scenario, the whole future known.

Same physics as :mod:`hydrorl.physics.cascade` (water balance with same-step
routing, volume and discharge limits, spill routed like the station's water) and
the same end water value, so no policy can earn more on the same scenario.

Variables per step t: end volumes ``v[r, t+1]``, discharges ``q[s, t]`` and
spills ``σ[r, t]``.  A tiny cost on spill (``SPILL_COST_EUR_PER_MM3``) keeps the
optimum from spilling water it could store; it never changes the revenue by
more than that cost times the spilled volume, and it makes the optimal schedule
replay exactly through the physics, where spill is forced only.

The LP is built and solved by :class:`~hydrorl.baselines.window.WindowSolver`
(HiGHS' dual simplex through ``highspy``); :func:`solve_window_linprog`, the same
LP through ``scipy.optimize.linprog``'s interior point, is kept as the yardstick
the benchmarks measure it against.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from hydrorl.baselines.window import (
    SPILL_COST_EUR_PER_MM3,
    ConcaveEndValue,
    EndValue,
    LinearEndValue,
    WindowSolver,
)
from hydrorl.errors import HydroRLError
from hydrorl.physics import MM3_PER_M3, Problem
from hydrorl.physics.cascade import MWH_PER_MM3_PER_KWH_M3

__all__ = [
    "SPILL_COST_EUR_PER_MM3",
    "BoundResult",
    "ConcaveEndValue",
    "LinearEndValue",
    "perfect_foresight",
    "perfect_foresight_all",
    "solve_window",
    "solve_window_linprog",
]


@dataclasses.dataclass(frozen=True)
class BoundResult:
    """The optimal schedule of one scenario and what it earns."""

    scenario: int
    revenue_eur: float
    end_value_eur: float
    volume_mm3: np.ndarray  # (T + 1, R), start volumes first
    discharge_m3s: np.ndarray  # (T, S)
    spill_m3s: np.ndarray  # (T, R)
    generation_mwh: np.ndarray  # (T, S)
    solve_seconds: float

    @property
    def total_eur(self) -> float:
        return self.revenue_eur + self.end_value_eur

    def fractions(self, problem: Problem) -> np.ndarray:
        """The schedule as discharge fractions, the physics' action."""
        return self.discharge_m3s / problem.cascade.max_discharge_m3s


def perfect_foresight(
    problem: Problem, scenario: int, start_volumes: np.ndarray | None = None
) -> BoundResult:
    """Solve the scenario's LP with HiGHS and return the optimal schedule."""
    import time

    c = problem.cascade
    v0 = problem.default_start_volumes() if start_volumes is None else np.asarray(start_volumes)
    started = time.perf_counter()
    volume, discharge, spill = solve_window(
        problem, scenario, 0, problem.n_steps, v0, LinearEndValue(problem)
    )
    elapsed = time.perf_counter() - started
    to_mm3 = problem.dt_s * MM3_PER_M3
    mwh_per_mm3 = c.energy_equivalent_kwh_m3 * MWH_PER_MM3_PER_KWH_M3
    generation = discharge * to_mm3 * mwh_per_mm3
    revenue = float((problem.price_eur_mwh[scenario] * generation.sum(axis=1)).sum())
    water_value = c.water_value_eur_mm3(problem.water_price_eur_mwh)
    end_value = float(np.maximum(volume[-1] - c.min_volume_mm3, 0.0) @ water_value)
    return BoundResult(scenario, revenue, end_value, volume, discharge, spill, generation, elapsed)


def solve_window(
    problem: Problem,
    scenario: int,
    first: int,
    stop: int,
    start_volumes: np.ndarray,
    end_value: EndValue,
    price_eur_mwh: np.ndarray | None = None,
    inflow_m3s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optimal schedule of steps ``first`` to ``stop`` (excluded), their future known.

    Returns volumes (T + 1, R) with the start first, discharges (T, S) and spills
    (T, R) in m³/s.  The water left at the end is worth ``end_value``.  ``price_eur_mwh``
    and ``inflow_m3s`` (T,) replace the scenario's own values: a plan on a forecast.
    Solved cold; a planner that moves a window re-solves a :class:`WindowSolver` warm.
    """
    n_segments = end_value.n_segments if isinstance(end_value, ConcaveEndValue) else 0
    solver = WindowSolver(problem, stop - first, n_segments)
    return solver.solve(scenario, first, stop, start_volumes, end_value, price_eur_mwh, inflow_m3s)


def solve_window_linprog(
    problem: Problem,
    scenario: int,
    first: int,
    stop: int,
    start_volumes: np.ndarray,
    end_value: EndValue,
    price_eur_mwh: np.ndarray | None = None,
    inflow_m3s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`solve_window` through ``scipy.optimize.linprog``'s interior point: the yardstick.

    The same LP as :func:`solve_window`, built as scipy sparse matrices and solved
    cold with ``highs-ipm``, as the planner did before the warm HiGHS model: kept
    so that benchmarks and tests measure the new solver against it.

    Returns volumes (T + 1, R) with the start first, discharges (T, S) and spills
    (T, R) in m³/s.  The water left at the end is worth ``end_value``.  ``price_eur_mwh``
    and ``inflow_m3s`` (T,) replace the scenario's own values: a plan on a forecast.
    """
    c = problem.cascade
    n_r, n_s, n_t = c.n_reservoirs, c.n_stations, stop - first
    v0 = np.asarray(start_volumes, dtype=float)
    to_mm3 = problem.dt_s * MM3_PER_M3
    width = 2 * n_r + n_s  # variables per step: v(t+1), q(t), σ(t)
    t = np.arange(n_t)

    def col_v(r: int, tt: np.ndarray) -> np.ndarray:
        return tt * width + r

    def col_q(s: int, tt: np.ndarray) -> np.ndarray:
        return tt * width + n_r + s

    def col_spill(r: int, tt: np.ndarray) -> np.ndarray:
        return tt * width + n_r + n_s + r

    rows, cols, vals = [], [], []

    def add(row: np.ndarray, col: np.ndarray, value: float) -> None:
        rows.append(row)
        cols.append(col)
        vals.append(np.full(row.shape, value))

    # Flows are Mm³ per step inside the LP, so that every coefficient is ±1: a well
    # scaled matrix takes HiGHS' interior point far fewer iterations.
    for r in range(n_r):
        add(t * n_r + r, col_v(r, t), 1.0)
        add(t[1:] * n_r + r, col_v(r, t[:-1]), -1.0)
        add(t * n_r + r, col_spill(r, t), 1.0)
        if c.spill_to[r] >= 0:
            add(t * n_r + c.spill_to[r], col_spill(r, t), -1.0)
    for s in range(n_s):
        add(t * n_r + c.upstream[s], col_q(s, t), 1.0)
        if c.downstream[s] >= 0:
            add(t * n_r + c.downstream[s], col_q(s, t), -1.0)
    n_x = n_t * width + 1  # the last variable is the end value of the concave table
    a_eq = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_t * n_r, n_x),
    )
    inflow = problem.inflow_m3s[scenario, first:stop] if inflow_m3s is None else inflow_m3s
    b_eq = (to_mm3 * inflow[:, None] * c.inflow_factor[None, :]).reshape(-1)
    b_eq[:n_r] += v0

    price = problem.price_eur_mwh[scenario, first:stop] if price_eur_mwh is None else price_eur_mwh
    mwh_per_mm3 = c.energy_equivalent_kwh_m3 * MWH_PER_MM3_PER_KWH_M3  # (S,)
    cost = np.zeros((n_t, width))
    cost[:, n_r : n_r + n_s] = -price[:, None] * mwh_per_mm3[None, :]
    cost[:, n_r + n_s :] = SPILL_COST_EUR_PER_MM3
    lower = np.zeros((n_t, width))
    upper = np.full((n_t, width), np.inf)
    lower[:, :n_r], upper[:, :n_r] = c.min_volume_mm3, c.max_volume_mm3
    upper[:, n_r : n_r + n_s] = c.max_discharge_m3s * to_mm3
    bounds = np.stack([lower.reshape(-1), upper.reshape(-1)], axis=1)
    a_ub = b_ub = None
    if isinstance(end_value, LinearEndValue):
        cost[-1, :n_r] -= end_value.eur_per_mm3()
        bounds = np.vstack([bounds, [0.0, 0.0]])
        end_cost = 0.0
    else:
        # z ≤ W_k + slope_k·(e − e_k) for every segment k, with e linear in the end volumes.
        e, w, k = end_value.levels_mwh, end_value.values_eur, end_value.energy_per_mm3
        slope = np.diff(w) / np.diff(e)
        a_ub = np.zeros((slope.size, n_x))
        a_ub[:, (n_t - 1) * width : (n_t - 1) * width + n_r] = -slope[:, None] * k[None, :]
        a_ub[:, -1] = 1.0
        b_ub = w[:-1] - slope * (e[:-1] + k @ c.min_volume_mm3)
        a_ub = sp.csr_matrix(a_ub)
        bounds = np.vstack([bounds, [None, None]])
        end_cost = -1.0
    solution = scipy.optimize.linprog(
        np.append(cost.reshape(-1), end_cost),
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=bounds,
        method="highs-ipm",  # interior point: ~15x faster than simplex on these banded LPs
    )
    if solution.status != 0:
        raise HydroRLError(
            f"the perfect-foresight LP of scenario {problem.scenario_names[scenario]!r} "
            f"(steps {first} to {stop}) failed: {solution.message}"
        )
    x = solution.x[:-1].reshape(n_t, width)
    volume = np.vstack([v0[None, :], x[:, :n_r]])
    discharge = np.clip(x[:, n_r : n_r + n_s] / to_mm3, 0.0, c.max_discharge_m3s)
    spill = np.maximum(x[:, n_r + n_s :] / to_mm3, 0.0)
    return volume, discharge, spill


def perfect_foresight_all(
    problem: Problem, start_volumes: np.ndarray | None = None, *, progress: bool = False
) -> list[BoundResult]:
    """The bound of every scenario, in order (with a progress bar if asked)."""
    from tqdm.auto import tqdm

    scenarios = range(problem.n_scenarios)
    if progress:
        scenarios = tqdm(scenarios, desc="perfect-foresight LPs", unit="scenario")
    return [perfect_foresight(problem, s, start_volumes) for s in scenarios]
