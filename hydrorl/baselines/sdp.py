"""The classical benchmark: water values by stochastic dynamic programming.

As the field does for a cascade, the reservoirs are aggregated into one
equivalent reservoir holding energy: each Mm³ above a reservoir's minimum is
worth the energy it can still make on its way to the sea.  The year is cut into
stages of one forecast step; at each stage the forecast's scenarios (all
scenarios, all years) give equally likely (price, inflow) outcomes, observed
before the decision.  Backward recursion over a few years, until the
end-of-year values repeat, gives the value ``W[n, e]`` of holding ``e`` MWh at
the start of stage ``n``:

    W[n, e] = mean_k max_u ( p_k·u + W[n+1, min(e + a_k − u, E_max)] ),  0 ≤ u ≤ min(u_max, e + a_k)

The policy knows only the present: it reads volumes, price, inflow and the time
of year from the observation, releases the energy ``u`` that maximises
``p·u + W[n+1, e + a − u]`` (release when the price beats the water value), runs
every station at the same share of its capacity, and passes water through a
lower reservoir rather than spill it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from hydrorl.baselines.policy import Policy, pass_through_fractions
from hydrorl.physics import MM3_PER_M3, Problem
from hydrorl.physics.cascade import MWH_PER_MM3_PER_KWH_M3

_SECONDS_PER_YEAR = 365.25 * 86_400


@dataclasses.dataclass(frozen=True)
class WaterValues:
    """Values (EUR, relative) of stored energy per stage of the year and storage level."""

    levels_mwh: np.ndarray  # (E,)
    values_eur: np.ndarray  # (N, E): at the start of each stage
    energy_per_mm3: np.ndarray  # (R,) MWh per Mm³ above the minimum
    inflow_energy_per_m3s: float  # MWh per step for 1 m³/s of scenario inflow
    max_release_mwh: float  # per step, all stations at full discharge

    @property
    def n_stages(self) -> int:
        return int(self.values_eur.shape[0])

    def potential(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``Φ(t, volumes)``: the value of the stored energy at step ``t`` of ``problem``.

        For reward shaping (see :class:`~hydrorl.physics.episode.BatchedEpisodes`);
        ``t`` past the last step reads the stage after it.
        """
        _, year_angle = problem.time_angles()
        stages = _stage_of_year(year_angle / (2 * np.pi), self.n_stages)
        stages = np.append(stages, (stages[-1] + 1) % self.n_stages)
        minimum = problem.cascade.min_volume_mm3

        def phi(t: np.ndarray, volumes: np.ndarray) -> np.ndarray:
            stored = (np.maximum(volumes - minimum, 0.0) * self.energy_per_mm3).sum(axis=1)
            table = self.values_eur[stages[np.minimum(t, len(stages) - 1)]]  # (B, E)
            return _interp_rows(stored[:, None], self.levels_mwh, table)[:, 0]

        return phi

    def marginal(self, problem: Problem) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``(t, volumes) -> EUR/MWh``: the water value of the stored energy at step ``t``.

        The slope of ``W`` for the next stage, where a release now is weighed.
        """
        _, year_angle = problem.time_angles()
        stages = (_stage_of_year(year_angle / (2 * np.pi), self.n_stages) + 1) % self.n_stages
        slopes = np.gradient(self.values_eur, self.levels_mwh, axis=1)  # (N, E)
        minimum = problem.cascade.min_volume_mm3

        def value(t: np.ndarray, volumes: np.ndarray) -> np.ndarray:
            stored = (np.maximum(volumes - minimum, 0.0) * self.energy_per_mm3).sum(axis=1)
            table = slopes[stages[np.minimum(t, len(stages) - 1)]]
            return _interp_rows(stored[:, None], self.levels_mwh, table)[:, 0]

        return value

    def marginal_eur_mwh(self, stage: int) -> np.ndarray:
        """The water value (slope of W, EUR/MWh) at every storage level of a stage."""
        return np.gradient(self.values_eur[stage], self.levels_mwh)


def _stage_of_year(year_fraction: np.ndarray, n_stages: int) -> np.ndarray:
    return np.minimum((np.asarray(year_fraction) * n_stages).astype(np.int64), n_stages - 1)


def water_values(
    problem: Problem,
    *,
    levels: int = 41,
    decisions: int = 21,
    cycles: int = 3,
    progress: Callable[[float], None] | None = None,
) -> WaterValues:
    """Compute water values from the scenarios of ``problem`` (see the module docstring).

    ``progress`` is told the share done after every stage (it may raise to stop).
    """
    c = problem.cascade
    to_mm3 = problem.dt_s * MM3_PER_M3
    energy_per_mm3 = c.energy_to_sea_kwh_m3 * MWH_PER_MM3_PER_KWH_M3
    e_max = float(((c.max_volume_mm3 - c.min_volume_mm3) * energy_per_mm3).sum())
    k_in = float(to_mm3 * (c.inflow_factor * energy_per_mm3).sum())
    u_max = c.max_generation_mwh(problem.dt_s)
    n_stages = max(1, round(_SECONDS_PER_YEAR / problem.dt_s))

    # Outcomes per stage: every scenario and year that falls in it, padded to a rectangle.
    _, year_angle = problem.time_angles()
    stage = _stage_of_year(year_angle / (2 * np.pi), n_stages)
    order = np.argsort(np.tile(stage, problem.n_scenarios), kind="stable")
    prices = problem.price_eur_mwh.reshape(-1)[order]
    inflow_energy = problem.inflow_m3s.reshape(-1)[order] * k_in
    counts = np.bincount(np.tile(stage, problem.n_scenarios), minlength=n_stages)
    width = int(counts.max())
    offsets = np.concatenate([[0], np.cumsum(counts)])
    slot = np.arange(width)
    take = np.minimum(offsets[:-1, None] + slot, len(prices) - 1)
    weight = (slot[None, :] < counts[:, None]).astype(float)
    weight /= np.maximum(weight.sum(axis=1, keepdims=True), 1.0)
    stage_price, stage_inflow = prices[take], inflow_energy[take]  # (N, K)

    grid = np.linspace(0.0, e_max, levels)
    offers = np.linspace(0.0, 1.0, decisions) * u_max
    per_level = 1.0 / float(grid[1] - grid[0]) if levels > 1 and e_max > 0 else 0.0
    backup, best = _backup_kernel(), np.empty((width, levels))
    values = np.zeros((n_stages, levels))
    following = problem.water_price_eur_mwh * grid  # the end water value closes the first cycle
    for cycle in range(cycles):
        for n in range(n_stages - 1, -1, -1):
            if progress is not None:
                progress((cycle + (n_stages - 1 - n) / n_stages) / cycles)
            if counts[n] == 0:  # a stage no step falls in (e.g. a leap day): nothing happens
                values[n] = following
                continue
            backup(stage_price[n], stage_inflow[n], following, grid, offers, e_max, per_level, best)
            current = weight[n] @ best
            values[n] = current - current[0]  # relative values: only slopes matter
            following = values[n]
    return WaterValues(grid, values, energy_per_mm3, k_in, u_max)


class WaterValuePolicy(Policy):
    """Release when the price beats the water value of the stored energy (see the module)."""

    def __init__(
        self, problem: Problem, values: WaterValues, horizon: int = 0, decisions: int = 51
    ) -> None:
        super().__init__(problem, horizon)
        self.values = values
        self.shares = np.linspace(0.0, 1.0, decisions)

    def act(self, obs: np.ndarray) -> np.ndarray:
        wv, lay, p = self.values, self.layout, self.problem
        volumes = lay.volumes_mm3(obs, p)
        price = lay.price_eur_mwh(obs, p)
        inflow = np.maximum(lay.inflow_m3s(obs, p), 0.0)
        stage = _stage_of_year(lay.year_fraction(obs), wv.n_stages)
        following = wv.values_eur[(stage + 1) % wv.n_stages]  # (B, E)
        stored = (np.maximum(volumes - p.cascade.min_volume_mm3, 0.0) * wv.energy_per_mm3).sum(1)
        available = stored + inflow * wv.inflow_energy_per_m3s  # (B,)
        release = np.minimum(self.shares[None, :] * wv.max_release_mwh, available[:, None])
        after = np.minimum(available[:, None] - release, wv.levels_mwh[-1])  # (B, U)
        future = _interp_rows(after, wv.levels_mwh, following)
        best = np.argmax(price[:, None] * release + future, axis=1)
        share = release[np.arange(len(best)), best] / wv.max_release_mwh
        wanted = np.repeat(share[:, None], p.cascade.n_stations, axis=1)
        return pass_through_fractions(p, volumes, inflow, wanted)


def _backup_kernel() -> Callable[..., None]:
    """One stage's backup, compiled (numba; compiled once per machine, then cached): for each
    outcome ``k`` (price, inflow energy) and storage level ``e``, the best over the decisions
    of the revenue plus the following value of what is left, into ``out`` (K, E).

    ``max over u of p·r + interp(min(x - r, e_max), grid, following)`` with ``x = grid[e] +
    inflow[k]`` and ``r = min(offer[u], x)``, where the grid is uniform (a cell is found by a
    division).  Once an offer covers all that is available the later ones release the same:
    they are not evaluated.
    """
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def backup(price, inflow, following, grid, offers, e_max, per_level, out):  # noqa: ANN001, ANN202
            top = following.size - 2
            for k in range(price.size):
                p, a = price[k], inflow[k]
                for e in range(grid.size):
                    available = grid[e] + a
                    best = -np.inf
                    for u in range(offers.size):
                        release = min(offers[u], available)
                        left = min(available - release, e_max)
                        if per_level == 0.0:  # no storage: nothing is left
                            value = following[0]
                        else:
                            position = left * per_level
                            cell = min(int(position), top)
                            position -= cell
                            value = (following[cell + 1] - following[cell]) * position
                            value += following[cell]
                        value += release * p
                        best = max(best, value)
                        if offers[u] >= available:
                            break
                    out[k, e] = best

        _KERNEL = backup
    return _KERNEL


_KERNEL: Callable[..., None] | None = None


def _interp_rows(x: np.ndarray, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of x (B, U) on a shared grid (E,) in per-row tables (B, E)."""
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    w = (x - grid[i]) / (grid[i + 1] - grid[i])
    rows = np.arange(x.shape[0])[:, None]
    return values[rows, i] * (1.0 - w) + values[rows, i + 1] * w
