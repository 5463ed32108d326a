"""Episodes over a problem, batched: windows, start volumes, observations and rewards.

The gymnasium environment (one row) and the SB3 VecEnv (many rows) are thin
adapters over :class:`BatchedEpisodes`; the evaluation plays every scenario as
one row each.  Numpy only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from hydrorl.physics.cascade import MM3_PER_M3, end_water_value_eur, step
from hydrorl.physics.problem import Problem


@dataclasses.dataclass(frozen=True)
class EpisodeDesign:
    """How episodes are cut from the scenarios.

    Attributes:
        episode_steps: window length in steps; 0 plays the whole horizon.
        random_start: start each window at a random step (else at step 0).
        random_start_volumes: start from uniformly random volumes (else the given ones).
        forecast_horizon_steps: future steps of price and inflow shown in the observation.
        reward_scale_eur: rewards are EUR divided by this (default: one step of every
            station at full discharge at the mean price), so they are of order one.
        spill_guard: stations run harder where a reservoir would otherwise spill
            (see :func:`~hydrorl.physics.cascade.step`).
        context_features: show the day of the week and what the recent past was like:
            exponential averages of the price (over about a week) and of the inflow
            (about four weeks), computed from each scenario's own past only.
        forecast_features: show what a forecast learned from the training forecast expects
            (the ``expected`` array given to :class:`BatchedEpisodes`: e.g. mean prices over
            the next day, week and month), computed from each scenario's own past only.
        bootstrap_window_ends: the end of a window is a cut, not an end: the learner is told
            it was truncated (SB3 then adds the discounted value of the last state) and the
            window's progress is not shown (always 0), so one stationary policy is learnt
            for any point of a long horizon.
        residual_scale: with a ``guide`` given to :class:`BatchedEpisodes` (a policy that
            knows what to do, e.g. the forecast planner), the guide's discharge fractions are
            shown in the observation and an action ``a`` in [-1, 1] is read as a correction
            of them: the stations discharge ``clip(guide + residual_scale * a, 0, 1)``, so
            ``a = 0`` plays the guide.
    """

    episode_steps: int = 0
    random_start: bool = False
    random_start_volumes: bool = False
    forecast_horizon_steps: int = 0
    reward_scale_eur: float | None = None
    spill_guard: bool = False
    context_features: bool = False
    bootstrap_window_ends: bool = False
    forecast_features: bool = False
    residual_scale: float = 0.0


#: Time constants (in days) of the recent-past averages among the context features.
PRICE_MEMORY_DAYS = 7.0
INFLOW_MEMORY_DAYS = 28.0

#: The value (EUR) of holding ``volumes`` (B, R) at steps ``t`` (B,): a shaping potential.
Potential = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: What a guide would discharge (fractions (B, S)) in ``scenarios`` (B,) at steps ``t`` (B,)
#: holding ``volumes`` (B, R).  It may remember its plans: it is asked at every step.
Guide = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ObservationLayout:
    """Where each feature sits in an observation vector, and how to read it back.

    ``[volume fraction × R, price, inflow, sin/cos time of day, sin/cos time of
    year, progress, future prices × H, future inflows × H, (sin/cos day of week,
    recent price, recent inflow), (expected prices × P, expected inflows × Q),
    (water value), (the guide's discharge fractions × S)]``, with volume fractions
    ``(v − min)/(max − min)``, prices and the water value ``(p − mean)/std`` and inflows
    ``i/mean``.
    """

    n_reservoirs: int
    horizon: int = 0
    value_feature: bool = False
    context: bool = False
    #: How many expected prices, then expected inflows, are shown (forecast features).
    expected: tuple[int, int] = (0, 0)
    #: How many guided discharge fractions are shown (one per station, or none).
    guided: int = 0

    @property
    def size(self) -> int:
        return (
            self.n_reservoirs
            + 7
            + 2 * self.horizon
            + 4 * int(self.context)
            + sum(self.expected)
            + int(self.value_feature)
            + self.guided
        )

    @property
    def guidance(self) -> slice:
        """The guide's discharge fractions, if shown."""
        return slice(self.size - self.guided, self.size)

    @property
    def expectation(self) -> slice:
        """The forecast features (expected prices, then inflows), if shown."""
        first = self.n_reservoirs + 7 + 2 * self.horizon + 4 * int(self.context)
        return slice(first, first + sum(self.expected))

    @property
    def context_features(self) -> slice:
        """Day of week (sin, cos), recent price and recent inflow, if shown."""
        if not self.context:
            raise IndexError("this layout shows no context features")
        first = self.n_reservoirs + 7 + 2 * self.horizon
        return slice(first, first + 4)

    @property
    def water_value(self) -> int:
        """Where the marginal water value (EUR/MWh, standardised like prices) sits, if shown."""
        if not self.value_feature:
            raise IndexError("this layout shows no water value")
        return self.size - self.guided - 1

    @property
    def price(self) -> int:
        return self.n_reservoirs

    @property
    def inflow(self) -> int:
        return self.n_reservoirs + 1

    @property
    def time_of_day(self) -> slice:
        return slice(self.n_reservoirs + 2, self.n_reservoirs + 4)

    @property
    def time_of_year(self) -> slice:
        return slice(self.n_reservoirs + 4, self.n_reservoirs + 6)

    @property
    def progress(self) -> int:
        return self.n_reservoirs + 6

    def volumes_mm3(self, obs: np.ndarray, problem: Problem) -> np.ndarray:
        c = problem.cascade
        share = np.asarray(obs, dtype=float)[..., : self.n_reservoirs]
        return c.min_volume_mm3 + share * (c.max_volume_mm3 - c.min_volume_mm3)

    def price_eur_mwh(self, obs: np.ndarray, problem: Problem) -> np.ndarray:
        return (
            np.asarray(obs, dtype=float)[..., self.price] * problem.price_std + problem.price_mean
        )

    def inflow_m3s(self, obs: np.ndarray, problem: Problem) -> np.ndarray:
        return np.asarray(obs, dtype=float)[..., self.inflow] * problem.inflow_mean

    def year_fraction(self, obs: np.ndarray) -> np.ndarray:
        """Time of year in [0, 1), read from its sine and cosine."""
        o = np.asarray(obs, dtype=float)[..., self.time_of_year]
        return (np.arctan2(o[..., 0], o[..., 1]) / (2 * np.pi)) % 1.0


class BatchedEpisodes:
    """``n`` independent episodes advanced together.

    ``scenarios`` pins each row to one scenario (evaluation) and ``starts`` to a first
    step; without them every reset samples them (or starts at step 0).  ``start_volumes``
    (R,) or (n, R) are used unless the design asks for random ones; by default reservoirs
    start half full.

    ``potential`` shapes the reward for training: each step pays its revenue plus
    the change of the potential ``Φ(t+1, v') − Φ(t, v)``, and the end of a window
    pays nothing more, so a window's rewards sum to its revenue plus ``Φ`` at its
    end (less ``Φ`` at its start, which no action changes).  With the water values
    of the benchmark as ``Φ``, a short window stands for the long horizon.  The
    true value of an episode (revenue plus the end water value) stays in ``info``.
    ``marginal`` (same signature, EUR/MWh) adds the water value of the stored energy
    to the observation, to be compared with the price.  ``expected`` (prices (S, T, P) in
    EUR/MWh, inflows (S, T, Q) in m³/s: what a forecast expected at each step, reading
    only the past) adds the forecast features when the design asks for them.  ``guide``
    (with the design's ``residual_scale``) makes actions corrections of what it would do.
    """

    def __init__(
        self,
        problem: Problem,
        n: int,
        design: EpisodeDesign = EpisodeDesign(),
        *,
        scenarios: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        start_volumes: np.ndarray | None = None,
        seed: int | None = None,
        potential: Potential | None = None,
        marginal: Potential | None = None,
        expected: tuple[np.ndarray, np.ndarray] | None = None,
        guide: Guide | None = None,
    ) -> None:
        self.problem = problem
        self.n = n
        self.design = design
        self.potential = potential
        self.marginal = marginal
        c = problem.cascade
        if (guide is None) != (design.residual_scale <= 0):
            raise ValueError(
                "a guide and a positive residual_scale go together: "
                f"guide {'given' if guide is not None else 'missing'}, "
                f"residual_scale {design.residual_scale}"
            )
        self.guide = guide
        self.guided = np.zeros((n, c.n_stations))  # the guide's fractions at the present step
        if design.forecast_features and expected is None:
            raise ValueError(
                "forecast_features needs the expected (prices, inflows) of the problem"
            )
        shown = (0, 0)
        if design.forecast_features and expected is not None:
            prices, inflows = expected  # (S, T, P) EUR/MWh and (S, T, Q) m³/s
            shown = (prices.shape[-1], inflows.shape[-1])
            self._expected = np.concatenate(
                [
                    (prices - problem.price_mean) / problem.price_std,
                    inflows / problem.inflow_mean,
                ],
                axis=-1,
            ).astype(np.float32)
        self.layout = ObservationLayout(
            c.n_reservoirs,
            design.forecast_horizon_steps,
            marginal is not None,
            design.context_features,
            shown,
            c.n_stations if guide is not None else 0,
        )
        self.rng = np.random.default_rng(seed)
        self.fixed_scenarios = None if scenarios is None else np.asarray(scenarios, np.int64)
        self.fixed_starts = None if starts is None else np.asarray(starts, np.int64)
        volumes = problem.default_start_volumes() if start_volumes is None else start_volumes
        self.start_volumes = np.broadcast_to(np.asarray(volumes, float), (n, c.n_reservoirs))
        t_total = problem.n_steps
        self.window = t_total if design.episode_steps <= 0 else min(design.episode_steps, t_total)
        self.reward_scale = design.reward_scale_eur or (
            c.max_generation_mwh(problem.dt_s) * problem.price_mean or 1.0
        )
        # Features of every scenario and step, computed once.
        self._price = ((problem.price_eur_mwh - problem.price_mean) / problem.price_std).astype(
            np.float32
        )
        self._inflow = (problem.inflow_m3s / problem.inflow_mean).astype(np.float32)
        day, year = problem.time_angles()
        self._clock = np.stack(
            [np.sin(day), np.cos(day), np.sin(year), np.cos(year)], axis=1
        ).astype(np.float32)
        self._span = np.maximum(c.max_volume_mm3 - c.min_volume_mm3, 1e-12)
        if design.context_features:
            per_day = 86_400.0 / problem.dt_s
            self._context = np.stack(
                [
                    np.broadcast_to(np.sin(problem.week_angle()), self._price.shape),
                    np.broadcast_to(np.cos(problem.week_angle()), self._price.shape),
                    _past_average(self._price, PRICE_MEMORY_DAYS * per_day),
                    _past_average(self._inflow, INFLOW_MEMORY_DAYS * per_day),
                ],
                axis=2,
            ).astype(np.float32)  # (S, T, 4)

        self.scenario = np.zeros(n, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.volume = np.array(self.start_volumes, dtype=float)
        self.reset()

    @property
    def end(self) -> np.ndarray:
        return self.start + self.window

    def reset(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in ``rows`` (all by default); return every row's observation."""
        idx = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        if idx.size:
            p, c = self.problem, self.problem.cascade
            if self.fixed_scenarios is not None:
                self.scenario[idx] = self.fixed_scenarios[idx]
            else:
                self.scenario[idx] = self.rng.integers(0, p.n_scenarios, idx.size)
            if self.fixed_starts is not None:
                self.start[idx] = self.fixed_starts[idx]
            elif self.design.random_start:
                self.start[idx] = self.rng.integers(0, p.n_steps - self.window + 1, idx.size)
            else:
                self.start[idx] = 0
            self.t[idx] = self.start[idx]
            if self.design.random_start_volumes:
                u = self.rng.random((idx.size, c.n_reservoirs))
                self.volume[idx] = c.min_volume_mm3 + u * (c.max_volume_mm3 - c.min_volume_mm3)
            else:
                self.volume[idx] = self.start_volumes[idx]
        return self.observe()

    def observe(self) -> np.ndarray:
        """Observations of every row at its current step."""
        p, lay = self.problem, self.layout
        t = np.minimum(self.t, p.n_steps - 1)
        obs = np.empty((self.n, lay.size), dtype=np.float32)
        r = lay.n_reservoirs
        obs[:, :r] = (self.volume - p.cascade.min_volume_mm3) / self._span
        obs[:, lay.price] = self._price[self.scenario, t]
        obs[:, lay.inflow] = self._inflow[self.scenario, t]
        obs[:, r + 2 : r + 6] = self._clock[t]
        if self.design.bootstrap_window_ends:
            obs[:, lay.progress] = 0.0
        else:
            obs[:, lay.progress] = (self.t - self.start) / self.window
        if lay.horizon:
            ahead = np.minimum(t[:, None] + np.arange(1, lay.horizon + 1), p.n_steps - 1)
            obs[:, r + 7 : r + 7 + lay.horizon] = self._price[self.scenario[:, None], ahead]
            obs[:, r + 7 + lay.horizon : r + 7 + 2 * lay.horizon] = self._inflow[
                self.scenario[:, None], ahead
            ]
        if lay.context:
            obs[:, lay.context_features] = self._context[self.scenario, t]
        if sum(lay.expected):
            obs[:, lay.expectation] = self._expected[self.scenario, t]
        if self.marginal is not None:
            value = self.marginal(t, self.volume)
            obs[:, lay.water_value] = (value - p.price_mean) / p.price_std
        if self.guide is not None:
            self.guided = np.clip(self.guide(self.scenario, t, self.volume), 0.0, 1.0)
            obs[:, lay.guidance] = self.guided
        return obs

    def discharge(self, action: np.ndarray) -> np.ndarray:
        """The discharge fractions an action stands for (itself, or a correction of the guide's)."""
        if self.guide is None:
            return action
        correction = self.design.residual_scale * np.clip(action, -1.0, 1.0)
        return np.clip(self.guided + correction, 0.0, 1.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Apply actions (n, S): discharge fractions, or corrections of the guide's (see
        :meth:`discharge`); return (obs, reward, done, info).

        ``done`` rows have reached the end of their window: their reward includes
        the end water value, and they stay where they are until :meth:`reset`.
        """
        p = self.problem
        fraction = self.discharge(np.asarray(action, dtype=float))
        price = p.price_eur_mwh[self.scenario, self.t]
        inflow = p.inflow_m3s[self.scenario, self.t]
        before = self.potential(self.t, self.volume) if self.potential else None
        result = step(
            p.cascade, self.volume, fraction, inflow, price, p.dt_s, self.design.spill_guard
        )
        self.volume = result.volume_mm3
        self.t = self.t + 1
        done = self.t >= self.end
        end_value = np.where(
            done, end_water_value_eur(p.cascade, self.volume, p.water_price_eur_mwh), 0.0
        )
        reward_eur = result.revenue_eur + end_value
        shaped_eur = reward_eur
        if self.potential is not None:
            shaped_eur = result.revenue_eur + self.potential(self.t, self.volume) - before
        info = {
            "revenue_eur": result.revenue_eur,
            "end_value_eur": end_value,
            "reward_eur": reward_eur,
            "spill_mm3": result.spill_m3s.sum(axis=1) * p.dt_s * MM3_PER_M3,
            "generation_mwh": result.generation_mwh.sum(axis=1),
            "price_eur_mwh": price,
            "inflow_m3s": inflow,
            "result": result,
        }
        return self.observe(), shaped_eur / self.reward_scale, done, info


def _past_average(series: np.ndarray, steps: float) -> np.ndarray:
    """Exponential average of each row (S, T) over about ``steps`` past steps, this one included."""
    weight = 1.0 / max(steps, 1.0)
    out = np.empty(series.shape, dtype=np.float64)
    out[:, 0] = series[:, 0]
    for t in range(1, series.shape[1]):
        out[:, t] = out[:, t - 1] + weight * (series[:, t] - out[:, t - 1])
    return out
