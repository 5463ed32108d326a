"""The LP of a planning window, kept as one HiGHS model and re-solved warm as the window moves.

The window's LP is the perfect-foresight bound's (:mod:`hydrorl.baselines.bound`) on steps
``first`` to ``stop``.  Variables per step t: end volumes ``v[r, t+1]``, discharges
``q[s, t]`` and spills ``σ[r, t]``, flows in Mm³ per step so that every balance
coefficient is ±1; one last variable ``z`` is the value of a concave end-value table.
It maximises

    Σ_t price[t]·Σ_s q[s,t]·energy[s]  +  end value(v[·, T])  −  SPILL_COST·Σ σ

(``energy`` in MWh per Mm³) subject to the water balance of every reservoir and step.

A planner solves windows of one length thousands of times, each a day later than the
last.  Only numbers change between them, never the LP's shape: the prices (costs), the
inflows and the start volumes (the balance rows' bounds) and the end value (the costs of
the last volumes, or the slopes and levels of the table's rows).  :class:`WindowSolver`
builds the HiGHS model once and re-solves it with the dual simplex from the last optimal
basis, which stays dual feasible while only bounds change and needs a few dozen
iterations where a fresh solve takes hundreds after presolve and crash (measured in
``benchmarks/foresight.py --solver-speed``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import highspy
import numpy as np

from hydrorl.errors import HydroRLError
from hydrorl.physics import MM3_PER_M3, Problem
from hydrorl.physics.cascade import MWH_PER_MM3_PER_KWH_M3

#: A tiny cost on spill (EUR per Mm³) keeps the optimum from spilling water it could store; it
#: never changes the revenue by more than that times the spilled volume.
SPILL_COST_EUR_PER_MM3 = 1e-3
#: HiGHS' serial dual simplex: 1.5-2.5x faster than its interior point on these LPs, cold
#: (the 5-year bound included), and the one method that re-solves warm after bound changes.
_DUAL_SIMPLEX = 1
#: Devex pricing once a basis is there: the default (dual steepest edge) spends most of a
#: warm re-solve's few dozen iterations recomputing its weights (measured: 1.4x slower).
_DEVEX = 1


@dataclasses.dataclass(frozen=True)
class LinearEndValue:
    """The problem's own end value: each Mm³ above the minimum at its energy to the sea."""

    problem: Problem

    def eur_per_mm3(self) -> np.ndarray:
        return self.problem.cascade.water_value_eur_mm3(self.problem.water_price_eur_mwh)


@dataclasses.dataclass(frozen=True)
class ConcaveEndValue:
    """A concave value ``W(e)`` of the stored energy ``e = Σ energy_per_mm3·(v − min)``.

    Given at ``levels_mwh``; the LP takes the minimum of its segments' lines, so a
    table that is not quite concave is read as its lines' lower envelope.
    """

    levels_mwh: np.ndarray  # (E,)
    values_eur: np.ndarray  # (E,)
    energy_per_mm3: np.ndarray  # (R,)

    @property
    def n_segments(self) -> int:
        return int(np.size(self.levels_mwh)) - 1

    def lines(self, problem: Problem) -> tuple[np.ndarray, np.ndarray]:
        """``(slope (K,), intercept (K,))``: segment k is ``slope_k·Σ k_r·v_r + intercept_k``."""
        e, w, k = self.levels_mwh, self.values_eur, self.energy_per_mm3
        slope = np.diff(w) / np.diff(e)
        return slope, w[:-1] - slope * (e[:-1] + k @ problem.cascade.min_volume_mm3)


EndValue = LinearEndValue | ConcaveEndValue


def window_objective_eur(
    problem: Problem,
    scenario: int,
    first: int,
    stop: int,
    schedule: tuple[np.ndarray, np.ndarray, np.ndarray],
    end_value: EndValue,
    price_eur_mwh: np.ndarray | None = None,
) -> float:
    """The window LP's objective at ``schedule`` (volumes, discharges, spills in m³/s), EUR.

    Revenue at the window's prices plus the end value less the spill cost: what two
    solvers of the same LP must agree on, whatever ties their schedules break apart.
    """
    c = problem.cascade
    volume, discharge, spill = schedule
    price = problem.price_eur_mwh[scenario, first:stop] if price_eur_mwh is None else price_eur_mwh
    to_mm3 = problem.dt_s * MM3_PER_M3
    mwh = discharge * to_mm3 * (c.energy_equivalent_kwh_m3 * MWH_PER_MM3_PER_KWH_M3)
    revenue = float(np.asarray(price) @ mwh.sum(axis=1))
    if isinstance(end_value, LinearEndValue):
        end = float(volume[-1] @ end_value.eur_per_mm3())  # as the LP counts it: from zero
    else:
        slope, intercept = end_value.lines(problem)
        end = float(np.min(slope * (end_value.energy_per_mm3 @ volume[-1]) + intercept))
    return revenue + end - SPILL_COST_EUR_PER_MM3 * float(spill.sum()) * to_mm3


class WindowSolver:
    """The LP of ``n_steps``-step windows of ``problem``, built once and re-solved warm.

    ``n_segments`` rows are kept for a :class:`ConcaveEndValue` of that many segments
    (its levels less one); a :class:`LinearEndValue` leaves them free.  Each
    :meth:`solve` changes costs, bounds and those rows only, and runs HiGHS' dual
    simplex from the last optimal basis.  One per process and thread: it holds a
    HiGHS instance, which does not pickle.
    """

    def __init__(self, problem: Problem, n_steps: int, n_segments: int = 0) -> None:
        if n_steps < 1:
            raise ValueError(f"a window needs at least one step, got n_steps={n_steps}")
        if n_segments < 0:
            raise ValueError(f"n_segments must be >= 0, got {n_segments}")
        c = problem.cascade
        self.problem = problem
        self.n_steps = n_steps
        self.n_segments = n_segments
        #: The objective of the last solve (revenue + end value − spill cost), EUR.
        self.objective_eur = float("nan")
        n_r, n_s = c.n_reservoirs, c.n_stations
        self._width = 2 * n_r + n_s  # variables per step: v(t+1), q(t), σ(t)
        self._n_x = n_steps * self._width + 1  # the last one is the end value z
        self._to_mm3 = problem.dt_s * MM3_PER_M3
        self._mwh_per_mm3 = c.energy_equivalent_kwh_m3 * MWH_PER_MM3_PER_KWH_M3  # (S,)
        # HiGHS indexes with 32-bit integers; indices of what changes between solves:
        t = np.arange(n_steps, dtype=np.int32)
        self._q_cols = (t[:, None] * self._width + n_r + np.arange(n_s, dtype=np.int32)).ravel()
        self._v_end_cols = (n_steps - 1) * self._width + np.arange(n_r, dtype=np.int32)
        self._z_col = np.array([self._n_x - 1], dtype=np.int32)
        self._balance_rows = np.arange(n_steps * n_r, dtype=np.int32)
        self._segment_rows = np.int32(n_steps * n_r) + np.arange(n_segments, dtype=np.int32)
        self._kind: type | None = None
        self._warm = False  # whether a basis is there to start from
        self._highs: Any = _QuietHighs()  # highspy's stubs lack changeRowsBounds
        self._highs.setOptionValue("simplex_strategy", _DUAL_SIMPLEX)
        self._check("build", self._highs.passModel(self._model()))

    def _model(self) -> highspy.HighsLp:
        """The LP at zero prices and inflows, the end value and its rows free."""
        c = self.problem.cascade
        n_r, n_s, n_t, width = c.n_reservoirs, c.n_stations, self.n_steps, self._width
        t = np.arange(n_t)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []

        def add(row: np.ndarray, col: np.ndarray | int, value: float) -> None:
            rows.append(row)
            cols.append(np.broadcast_to(col, row.shape))
            vals.append(np.full(row.shape, value))

        for r in range(n_r):
            volume, spill = t * width + r, t * width + n_r + n_s + r
            add(t * n_r + r, volume, 1.0)
            add(t[1:] * n_r + r, volume[:-1], -1.0)
            add(t * n_r + r, spill, 1.0)
            if c.spill_to[r] >= 0:
                add(t * n_r + c.spill_to[r], spill, -1.0)
        for s in range(n_s):
            discharge = t * width + n_r + s
            add(t * n_r + c.upstream[s], discharge, 1.0)
            if c.downstream[s] >= 0:
                add(t * n_r + c.downstream[s], discharge, -1.0)
        # Segment k: z − slope_k·Σ_r k_r·v_r(T) ≤ intercept_k; the slopes come with the table.
        add(self._segment_rows, self._z_col[0], 1.0)
        for v_end in self._v_end_cols.tolist():
            add(self._segment_rows, v_end, 0.0)
        row, col, val = (np.concatenate(x) for x in (rows, cols, vals))
        order = np.lexsort((row, col))  # column-wise, rows ascending within a column

        lower = np.zeros((n_t, width))
        upper = np.full((n_t, width), np.inf)
        lower[:, :n_r], upper[:, :n_r] = c.min_volume_mm3, c.max_volume_mm3
        upper[:, n_r : n_r + n_s] = c.max_discharge_m3s * self._to_mm3
        cost = np.zeros((n_t, width))
        cost[:, n_r + n_s :] = SPILL_COST_EUR_PER_MM3
        n_rows = n_t * n_r + self.n_segments
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self._n_x, n_rows
        lp.col_cost_ = np.append(cost.reshape(-1), 0.0)
        lp.col_lower_ = np.append(lower.reshape(-1), 0.0)
        lp.col_upper_ = np.append(upper.reshape(-1), 0.0)
        lp.row_lower_ = np.where(np.arange(n_rows) < n_t * n_r, 0.0, -np.inf)
        lp.row_upper_ = np.where(np.arange(n_rows) < n_t * n_r, 0.0, np.inf)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(col[order], np.arange(self._n_x + 1)).astype(np.int32)
        lp.a_matrix_.index_ = row[order].astype(np.int32)
        lp.a_matrix_.value_ = val[order]
        return lp

    def solve(
        self,
        scenario: int,
        first: int,
        stop: int,
        start_volumes: np.ndarray,
        end_value: EndValue,
        price_eur_mwh: np.ndarray | None = None,
        inflow_m3s: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The optimal schedule of steps ``first`` to ``stop``, as ``solve_window`` gives it.

        Volumes (T + 1, R) with the start first, discharges (T, S) and spills (T, R) in
        m³/s.  ``price_eur_mwh`` and ``inflow_m3s`` (T,) replace the scenario's own.
        """
        problem, c, h = self.problem, self.problem.cascade, self._highs
        n_r, n_s, n_t = c.n_reservoirs, c.n_stations, self.n_steps
        if stop - first != n_t:
            raise ValueError(f"this solver's windows have {n_t} steps, got steps {first} to {stop}")
        v0 = np.asarray(start_volumes, dtype=float)
        price = (
            problem.price_eur_mwh[scenario, first:stop] if price_eur_mwh is None else price_eur_mwh
        )
        inflow = problem.inflow_m3s[scenario, first:stop] if inflow_m3s is None else inflow_m3s

        cost = -(np.asarray(price, dtype=float)[:, None] * self._mwh_per_mm3).reshape(-1)
        h.changeColsCost(cost.size, self._q_cols, cost)
        rhs = (self._to_mm3 * np.asarray(inflow, dtype=float)[:, None] * c.inflow_factor).reshape(
            -1
        )
        rhs[:n_r] += v0
        h.changeRowsBounds(rhs.size, self._balance_rows, rhs, rhs)
        self._use(type(end_value))
        if isinstance(end_value, LinearEndValue):
            h.changeColsCost(n_r, self._v_end_cols, -end_value.eur_per_mm3())
        else:
            if end_value.n_segments != self.n_segments:
                raise ValueError(
                    f"this solver holds {self.n_segments} end-value segments, "
                    f"the table has {end_value.n_segments}"
                )
            slope, intercept = end_value.lines(problem)
            coef = -slope[:, None] * end_value.energy_per_mm3[None, :]  # (K, R)
            for k, row in enumerate(self._segment_rows.tolist()):
                for r, col in enumerate(self._v_end_cols.tolist()):
                    h.changeCoeff(row, col, float(coef[k, r]))
            below = np.full(intercept.size, -np.inf)
            h.changeRowsBounds(intercept.size, self._segment_rows, below, intercept)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            self._rescue()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise HydroRLError(
                f"the perfect-foresight LP of scenario {problem.scenario_names[scenario]!r} "
                f"(steps {first} to {stop}) failed: {h.modelStatusToString(status)}"
            )
        if not self._warm:
            h.setOptionValue("simplex_dual_edge_weight_strategy", _DEVEX)
            self._warm = True
        self.objective_eur = -float(h.getObjectiveValue())
        x = np.asarray(h.getSolution().col_value)[:-1].reshape(n_t, self._width)
        volume = np.vstack([v0[None, :], x[:, :n_r]])
        discharge = np.clip(x[:, n_r : n_r + n_s] / self._to_mm3, 0.0, c.max_discharge_m3s)
        spill = np.maximum(x[:, n_r + n_s :] / self._to_mm3, 0.0)
        return volume, discharge, spill

    def _rescue(self) -> None:
        """Solve again where the warm dual simplex gave up (its status "Unknown": numerical
        trouble on a basis it started from): from scratch, then with the interior-point
        method; the warm settings come back for the next window."""
        h = self._highs
        h.clearSolver()
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            return
        _, solver = h.getOptionValue("solver")
        h.setOptionValue("solver", "ipm")
        h.clearSolver()
        h.run()
        h.setOptionValue("solver", solver)

    def _use(self, kind: type) -> None:
        """Switch the end value between the last volumes' costs and the table's rows."""
        if kind is self._kind:
            return
        h, n_r, n_k = self._highs, self._v_end_cols.size, self.n_segments
        if kind is LinearEndValue:
            h.changeColsBounds(1, self._z_col, np.zeros(1), np.zeros(1))
            h.changeColsCost(1, self._z_col, np.zeros(1))
            h.changeRowsBounds(n_k, self._segment_rows, np.full(n_k, -np.inf), np.full(n_k, np.inf))
        else:
            h.changeColsBounds(1, self._z_col, np.full(1, -np.inf), np.full(1, np.inf))
            h.changeColsCost(1, self._z_col, np.full(1, -1.0))
            h.changeColsCost(n_r, self._v_end_cols, np.zeros(n_r))
        self._kind = kind

    def _check(self, what: str, status: highspy.HighsStatus) -> None:
        if status == highspy.HighsStatus.kError:
            raise HydroRLError(f"HiGHS refused the window LP ({what}, {self.n_steps} steps)")


class _QuietHighs(highspy.Highs):  # type: ignore[misc]
    """A HiGHS instance that prints nothing, its banner included."""

    def enableCallbacks(self) -> None:
        # highspy's constructor enables callbacks, which logs the banner unless the output
        # is off by then; nothing here uses callbacks.
        self.setOptionValue("output_flag", False)
        super().enableCallbacks()
