"""A seeded suite of hydro cases nobody tunes to: varied rivers, forecasts and step lengths.

The demo (:mod:`hydrorl.demo`) is one river and one kind of forecast; a method
tuned on it may fail elsewhere.  :func:`generate_case` draws a whole case from a
seed: a system, a forecast process, training scenarios from it and held-out
scenarios from the same process with another sub-seed (same start and steps).
:func:`suite` gathers the demo and generated cases that between them cover every
step length, topology and process kind; :func:`small_case` is a cheap one for tests.

Systems (1-6 reservoirs, named ``Lake A``, ``Lake B``… and ``A PS``, ``A PS 2``…):

* topologies: ``single`` (one reservoir, one station to the sea), ``chain``,
  ``fork`` (the top reservoir has two stations into two branches, or into a
  branch and the sea; its spill follows the first), ``join`` (two branches feed
  one lower reservoir) and ``two stations`` (a chain in which one reservoir has
  two stations side by side);
* the catchment's mean inflow M (15-400 m³/s) is shared out by inflow factors
  summing to 1; a reservoir holds 10-365 days of the mean flow reaching it when
  nothing is above it, 2-90 days otherwise; minimum volumes are 2-8 % of the maximum;
* a station passes 1-4 times the mean flow that reaches it (small reservoirs do
  spill in floods) and makes 0.1-1.5 kWh/m³.

Forecast processes (each ingredient and its parameters drawn from the seed):

* inflow: a base flow with a mild season, a snow melt (or none), a rain season
  (autumn rain, a monsoon… at a random time of year, or none), floods (sharp
  peaks decaying over hours to days, more of them in the rain season), weather
  noise (AR(1) in log), and dry and wet years (a multiplier per year);
* price: a level with a season, a drift over the years (trend), regimes (a
  Markov chain between cheap, normal and dear levels persisting weeks), spikes,
  daily and weekly shapes (no daily shape for daily steps), noise (AR(1)), and a
  negative link to inflow from none to strong.  Prices stay above 3 % of the level
  (a soft floor): the baselines' water values assume a release never costs money.

Step lengths and horizons (a case has about 1,800 to 8,800 steps): 1 h over 1
year, 3 h over 2-3 years, 1 day over 5-10 years.  Topology, step length and one
*featured* process kind (always present) go round-robin with the seed (seed mod
5, 3 and 7), so consecutive seeds cover them all; the rest is drawn from it.

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from hydrorl.demo import demo_forecast, demo_system
from hydrorl.errors import ValidationError
from hydrorl.forecast import ForecastTable, check_table
from hydrorl.system import HydroSystem, PowerStation, Reservoir

if TYPE_CHECKING:
    from hydrorl.physics import Problem

#: Step lengths (hours), picked by ``seed % 3``, and the horizons (years, inclusive) of each.
STEP_HOURS = (24, 3, 1)
HORIZON_YEARS = {1: (1, 1), 3: (2, 3), 24: (5, 10)}
#: Topologies, picked by ``seed % 5``, and the reservoirs (inclusive) each may have.
TOPOLOGIES = ("chain", "fork", "join", "single", "two stations")
RESERVOIRS = {
    "single": (1, 1),
    "two stations": (1, 3),
    "chain": (2, 6),
    "fork": (2, 5),
    "join": (3, 6),
}
#: Process kinds, one of them (``seed % 7``) always present in a generated case.
FEATURES = (
    "floods",
    "rain season",
    "snow melt",
    "price regimes",
    "price spikes",
    "price trend",
    "strong correlation",
)
DEMO_CASE_NAME = "demo"

_MM3_PER_M3S_DAY = 86_400 * 1e-6  # Mm³ that 1 m³/s brings in a day
_DAYS_PER_YEAR = 365.25
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    """A hydro system with training and held-out scenarios of one forecast process."""

    name: str
    system: HydroSystem
    training: ForecastTable
    held_out: ForecastTable
    description: str
    seed: int

    def problem(self, which: Literal["training", "held_out"] = "training") -> Problem:
        """The case as plain arrays; held-out scenarios seen with the training scales."""
        training = _problem(self.system, self.training)
        if which == "training":
            return training
        if which == "held_out":
            return _problem(self.system, self.held_out).with_reference(training)
        raise ValidationError(f"which must be 'training' or 'held_out', got {which!r}")


def generate_case(
    seed: int,
    *,
    step_hours: int | None = None,
    reservoirs: int | None = None,
    topology: str | None = None,
    years: int | None = None,
    scenarios: int | None = None,
    held_out_scenarios: int = 8,
    name: str | None = None,
) -> Case:
    """A case drawn from ``seed`` (see the module docstring); the keywords fix what they name.

    ``reservoirs`` without ``topology`` picks, round-robin by seed, a topology that can
    have that many; ``scenarios`` (training) defaults to 10-20 drawn from the seed;
    ``name`` (the case's and its system's) to ``case-<seed>``.
    """
    _check_whole("seed", seed, 0)
    _check_whole("held_out_scenarios", held_out_scenarios, 1)
    name = f"case-{seed}" if name is None else name
    for label, value in (("reservoirs", reservoirs), ("years", years), ("scenarios", scenarios)):
        if value is not None:
            _check_whole(label, value, 1)
    step_hours = STEP_HOURS[seed % 3] if step_hours is None else step_hours
    if step_hours not in HORIZON_YEARS:
        raise ValidationError(f"step_hours must be one of 1, 3 or 24, got {step_hours!r}")
    if topology is None:
        fits = [t for t in TOPOLOGIES if reservoirs is None or _fits(t, reservoirs)]
        if not fits:
            raise ValidationError(f"reservoirs must be 1 to 6, got {reservoirs!r}")
        topology = fits[seed % len(fits)]
    if topology not in RESERVOIRS:
        raise ValidationError(
            f"unknown topology {topology!r}; choose one of {', '.join(TOPOLOGIES)}"
        )
    if reservoirs is not None and not _fits(topology, reservoirs):
        low, high = RESERVOIRS[topology]
        raise ValidationError(
            f"a {topology!r} system has {low} to {high} reservoirs, got reservoirs={reservoirs}"
        )

    structure, training_seed, held_out_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(structure)
    low, high = RESERVOIRS[topology]
    # Drawn whether given or not, so that fixing one leaves the other draws as they were.
    drawn_n = low + int((high - low + 1) * rng.random() ** 1.5)  # mostly small
    low_years, high_years = HORIZON_YEARS[step_hours]
    drawn_years = int(rng.integers(low_years, high_years + 1))
    drawn_scenarios = int(rng.integers(10, 21))
    n, years = reservoirs or drawn_n, years or drawn_years
    scenarios = scenarios or drawn_scenarios
    start = pd.Timestamp(year=2027 + int(rng.integers(0, 4)), month=int(rng.integers(1, 13)), day=1)
    mean_inflow = float(np.exp(rng.uniform(np.log(15.0), np.log(400.0))))
    system, layout = _draw_system(rng, name, topology, n, mean_inflow)
    process = _draw_process(rng, FEATURES[seed % len(FEATURES)], step_hours, mean_inflow)
    grid = _Grid.of(start, years, step_hours)
    training = process.sample(training_seed, grid, scenarios, "S", f"{name} training")
    held_out = process.sample(held_out_seed, grid, held_out_scenarios, "H", f"{name} held-out")
    step = {1: "hourly", 3: "3-hourly", 24: "daily"}[step_hours]
    description = (
        f"{layout}, {step}, {years} year{'s' * (years > 1)}, {scenarios}+{held_out_scenarios} "
        f"scenarios from {start:%Y-%m}; {process.describe()}"
    )
    system = dataclasses.replace(system, description=description).validate()
    return Case(name, system, training, held_out, description, seed)


def small_case(seed: int = 0) -> Case:
    """A cheap case for tests: 1-2 reservoirs, daily over 2 years or 3-hourly over 1 year,
    4 training and 3 held-out scenarios (step by ``seed % 2``, reservoirs by ``seed // 2``)."""
    _check_whole("seed", seed, 0)
    step_hours = (24, 3)[seed % 2]
    return generate_case(
        seed,
        name=f"small-{seed}",
        step_hours=step_hours,
        reservoirs=1 + seed // 2 % 2,
        topology=None,
        years=2 if step_hours == 24 else 1,
        scenarios=4,
        held_out_scenarios=3,
    )


def demo_case(*, scenarios: int = 20, years: int = 3, held_out_scenarios: int = 8) -> Case:
    """The demo river and forecast (seed 0), held out with the demo's seed 1.

    Three years rather than the demo's five keep it the size of the generated cases.
    """
    training = demo_forecast(seed=0, scenarios=scenarios, years=years)
    held_out = demo_forecast(seed=1, scenarios=held_out_scenarios, years=years)
    return Case(
        name=DEMO_CASE_NAME,
        system=demo_system(),
        training=training,
        held_out=held_out,
        description=(
            f"the demo river: chain of 3 reservoirs, 3-hourly, {years} years, "
            f"{scenarios}+{held_out_scenarios} scenarios; snow melt, autumn rain, wet and dry "
            f"years; seasonal, weekly and daily prices, spikes, negative link to inflow"
        ),
        seed=0,
    )


def suite(n: int = 8, seed: int = 0, *, held_out_scenarios: int = 8) -> list[Case]:
    """The demo and ``n - 1`` generated cases (seeds ``1000·seed`` onwards).

    Seven consecutive seeds cover every step length, topology and featured process
    kind, so the default ``n = 8`` has them all.
    """
    _check_whole("n", n, 1)
    _check_whole("seed", seed, 0)
    cases = [demo_case(held_out_scenarios=held_out_scenarios)]
    for k in range(n - 1):
        cases.append(generate_case(1000 * seed + k, held_out_scenarios=held_out_scenarios))
    return cases


# ---------------------------------------------------------------- helpers


def _fits(topology: str, reservoirs: int) -> bool:
    low, high = RESERVOIRS[topology]
    return low <= reservoirs <= high


def _problem(system: HydroSystem, table: ForecastTable) -> Problem:
    from hydrorl.physics import Cascade, Problem

    return Problem.create(
        Cascade.from_system(system),
        table.price_eur_mwh,
        table.inflow_m3s,
        table.step.total_seconds(),
        np.datetime64(table.start_time.to_datetime64(), "s"),
        table.scenario_names,
    )


def _check_whole(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValidationError(f"{name} must be a whole number >= {least}, got {value!r}")


# ---------------------------------------------------------------- systems


def _draw_system(
    rng: np.random.Generator, name: str, topology: str, n: int, mean_inflow_m3s: float
) -> tuple[HydroSystem, str]:
    """The system and a phrase saying its layout."""
    letters = "ABCDEF"[:n]
    # Stations as (upstream, downstream or None: the sea, share of the upstream's water);
    # every station runs from a lower index to a higher one, so index order is upstream first.
    links: list[tuple[int, int | None, float]]
    if topology == "single":
        links, layout = [(0, None, 1.0)], "single reservoir"
    elif topology in ("chain", "two stations"):
        links = [(i, i + 1 if i + 1 < n else None, 1.0) for i in range(n)]
        layout = f"chain of {n} reservoirs"
        if topology == "two stations":
            j, share = int(rng.integers(n)), float(rng.uniform(0.3, 0.7))
            links[j : j + 1] = [(j, links[j][1], share), (j, links[j][1], 1.0 - share)]
            layout = f"two stations on Lake {letters[j]}" + (f" ({layout})" if n > 1 else "")
    elif topology == "fork":
        first = int(rng.integers(1, n))  # reservoirs 1..first: branch one; the rest: branch two
        share = float(rng.uniform(0.3, 0.7))
        second = first + 1 if first + 1 < n else None
        links = [(0, 1, share), (0, second, 1.0 - share)]
        for i in range(1, n):
            last = i in (first, n - 1)
            links.append((i, None if last else i + 1, 1.0))
        into = "the sea" if second is None else f"Lake {letters[second]}"
        layout = f"fork: Lake A into Lake B and {into} ({n} reservoirs)"
    else:  # join
        first = int(rng.integers(1, n - 1))
        second = int(rng.integers(1, n - first))
        lower = first + second
        links = [(i, lower if i in (first - 1, lower - 1) else i + 1, 1.0) for i in range(lower)]
        links += [(i, i + 1 if i + 1 < n else None, 1.0) for i in range(lower, n)]
        layout = f"join: two branches into Lake {letters[lower]} ({n} reservoirs)"

    factors = rng.dirichlet(np.full(n, 2.0))
    factors = np.maximum(factors, 0.03)
    factors = np.round(factors / factors.sum(), 3)
    factors[-1] = round(1.0 - factors[:-1].sum(), 3)
    reaching = mean_inflow_m3s * factors.copy()  # mean m³/s reaching each reservoir
    has_upstream = np.zeros(n, dtype=bool)
    stations: list[PowerStation] = []
    energy_of: dict[tuple[int, int | None], float] = {}
    for up, down, share in links:  # upstream first: reaching[up] is complete here
        flow = share * reaching[up]
        capacity = flow * float(np.exp(rng.uniform(0.0, np.log(4.0))))
        twin = energy_of.get((up, down))  # a station beside another: the same head, roughly
        energy = float(np.exp(rng.uniform(np.log(0.1), np.log(1.5))))
        if twin is not None:
            energy = min(max(twin * float(rng.uniform(0.6, 1.0)), 0.1), 1.5)
        energy_of.setdefault((up, down), energy)
        count = sum(s.upstream == f"Lake {letters[up]}" for s in stations)
        stations.append(
            PowerStation(
                f"{letters[up]} PS" + (f" {count + 1}" if count else ""),
                f"Lake {letters[up]}",
                None if down is None else f"Lake {letters[down]}",
                round(float(capacity), 1),
                round(energy, 3),
            )
        )
        if down is not None:
            reaching[down] += flow
            has_upstream[down] = True
    reservoirs = []
    for r in range(n):
        low_days, high_days = (2.0, 90.0) if has_upstream[r] else (10.0, 365.0)
        days = float(np.exp(rng.uniform(np.log(low_days), np.log(high_days))))
        max_volume = round(days * float(reaching[r]) * _MM3_PER_M3S_DAY, 3)
        reservoirs.append(
            Reservoir(
                f"Lake {letters[r]}",
                min_volume_mm3=round(max_volume * float(rng.uniform(0.02, 0.08)), 3),
                max_volume_mm3=max_volume,
                inflow_factor=float(factors[r]),
            )
        )
    system = HydroSystem(name=name, reservoirs=tuple(reservoirs), power_stations=tuple(stations))
    days_held = [
        r.max_volume_mm3 / (reaching[i] * _MM3_PER_M3S_DAY) for i, r in enumerate(reservoirs)
    ]
    held = f"{min(days_held):.0f}" + (f"-{max(days_held):.0f}" if n > 1 else "")
    layout += f", storage {held} days of inflow"
    return system, layout


# ---------------------------------------------------------------- forecast processes


@dataclasses.dataclass(frozen=True)
class _Bump:
    """A seasonal bump of inflow (snow melt, a rain season): its peak, width and size."""

    peak_day: float  # day of the year
    width_days: float
    size: float  # relative to the base flow
    shift_days: float  # year-to-year spread of the peak
    spread: float  # year-to-year spread of the size (log)


@dataclasses.dataclass(frozen=True)
class _Process:
    """The parameters of one case's forecast process (see the module docstring)."""

    mean_inflow_m3s: float
    base_season: float  # relative amplitude of the base flow's season
    base_peak_day: float
    melt: _Bump | None
    rain: _Bump | None
    floods_per_year: float
    flood_size: float  # mean peak, relative to the mean flow
    flood_days: float  # decay time
    weather_sigma: float
    weather_days: float
    year_sigma: float  # dry and wet years (log)
    level_eur_mwh: float
    price_season: float
    price_peak_day: float
    trend_per_year: float
    regimes: tuple[float, ...]  # price multipliers; () for none
    regime_weeks: float  # mean time in a regime
    spikes_per_year: float
    spike_size: float  # relative to the level
    spike_hours: float
    daily: float  # relative peak-to-trough of the daily shape
    weekly: float  # relative weekend discount
    noise_sigma: float
    noise_days: float
    inflow_link: float  # relative price change per unit of log inflow anomaly (negative)

    def describe(self) -> str:
        inflow = [f"inflow ~{self.mean_inflow_m3s:.0f} m3/s"]
        if self.melt:
            inflow.append(f"snow melt peaking in {_month(self.melt.peak_day)}")
        if self.rain:
            inflow.append(f"rain season peaking in {_month(self.rain.peak_day)}")
        if self.floods_per_year:
            inflow.append(f"floods ({self.floods_per_year:.0f}/year, {self.flood_days:.1f} d)")
        inflow.append(f"dry/wet years (sd {self.year_sigma:.2f})")
        price = [f"price ~{self.level_eur_mwh:.0f} EUR/MWh"]
        if self.regimes:
            price.append(f"{len(self.regimes)} regimes (~{self.regime_weeks:.0f} weeks)")
        if self.spikes_per_year:
            price.append(f"spikes ({self.spikes_per_year:.0f}/year)")
        if self.trend_per_year:
            price.append(f"trend {100 * self.trend_per_year:+.0f}%/year")
        shapes = [f"daily {self.daily:.2f}"] * (self.daily > 0) + [f"weekly {self.weekly:.2f}"]
        price.append("shape " + ", ".join(shapes))
        strength = (
            "none" if self.inflow_link == 0 else "strong" if self.inflow_link >= 0.25 else "weak"
        )
        price.append(
            f"inflow link {strength}" + f" ({-self.inflow_link:.2f})" * (strength != "none")
        )
        return ", ".join(inflow) + "; " + ", ".join(price)

    def sample(
        self, seed: np.random.SeedSequence, grid: _Grid, scenarios: int, prefix: str, source: str
    ) -> ForecastTable:
        """``scenarios`` price and inflow scenarios on ``grid``, validated."""
        rng = np.random.default_rng(seed)
        inflow = self._inflow(rng, grid, scenarios)
        price = self._price(rng, grid, scenarios, inflow)
        price, inflow = np.round(price, 3), np.round(inflow, 3)
        digest = hashlib.sha256(f"{grid.times[0]}|{grid.step_hours}".encode())
        digest.update(price.tobytes())
        digest.update(inflow.tobytes())
        table = ForecastTable(
            scenario_names=tuple(f"{prefix}{s + 1:02d}" for s in range(scenarios)),
            start_time=grid.times[0],
            step=pd.Timedelta(hours=grid.step_hours),
            price_eur_mwh=price,
            inflow_m3s=inflow,
            source_name=source,
            source_format="generated",
            content_hash=digest.hexdigest(),
        )
        return check_table(table)

    def _inflow(self, rng: np.random.Generator, grid: _Grid, n: int) -> np.ndarray:
        doy, years = grid.day_of_year, grid.year_index
        shape = 1.0 + self.base_season * np.cos(2 * np.pi * (doy - self.base_peak_day) / 365.25)
        shape = np.broadcast_to(shape, (n, grid.n_steps)).copy()
        for bump in (self.melt, self.rain):
            if bump is not None:
                peak = bump.peak_day + rng.normal(0.0, bump.shift_days, (n, grid.years))
                size = bump.size * rng.lognormal(0.0, bump.spread, (n, grid.years))
                distance = _circular(doy - peak[:, years])
                shape += size[:, years] * np.exp(-0.5 * (distance / bump.width_days) ** 2)
        phi = math.exp(-grid.step_days / self.weather_days)
        weather = _ar1(rng, (n, grid.n_steps), phi=phi, sigma=self.weather_sigma)
        shape *= np.exp(weather - 0.5 * self.weather_sigma**2)
        if self.floods_per_year:
            shape += self._floods(rng, grid, n)
        shape /= shape.mean(axis=1, keepdims=True)
        wetness = rng.lognormal(-0.5 * self.year_sigma**2, self.year_sigma, (n, grid.years))
        return self.mean_inflow_m3s * wetness[:, years] * shape

    def _floods(self, rng: np.random.Generator, grid: _Grid, n: int) -> np.ndarray:
        """Peaks that rise within hours and decay over ``flood_days``, likelier in the rain."""
        days = grid.mid_days
        horizon = float(days[-1]) + grid.step_days
        if self.rain is None:
            likelihood = np.ones_like(days)
        else:
            distance = _circular(grid.day_of_year - self.rain.peak_day)
            likelihood = 0.25 + 0.75 * np.exp(-0.5 * (distance / self.rain.width_days) ** 2)
        out = np.zeros((n, grid.n_steps))
        expected = self.floods_per_year * horizon / _DAYS_PER_YEAR / float(likelihood.mean())
        for s in range(n):
            onsets = rng.uniform(0.0, horizon, rng.poisson(expected))
            at = np.minimum(np.searchsorted(days, onsets), grid.n_steps - 1)
            onsets = onsets[rng.random(onsets.size) < likelihood[at]]  # thinning by season
            for t0 in onsets:
                decay = self.flood_days * rng.uniform(0.6, 1.5)
                # The shape below peaks at 0.58: the peak is flood_size on average.
                peak = self.flood_size * rng.lognormal(-0.125, 0.5) / 0.58
                lo, hi = np.searchsorted(days, [t0, t0 + 8 * decay])
                x = (days[lo:hi] - t0) / decay
                out[s, lo:hi] += peak * (1.0 - np.exp(-x / 0.2)) * np.exp(-x)
        return out

    def _price(
        self, rng: np.random.Generator, grid: _Grid, n: int, inflow: np.ndarray
    ) -> np.ndarray:
        years_in = grid.mid_days / _DAYS_PER_YEAR
        level = self.level_eur_mwh * rng.lognormal(0.0, 0.08, (n, 1))
        trend = self.trend_per_year + rng.normal(0.0, 0.01, (n, 1)) * (self.trend_per_year != 0)
        level = level * np.maximum(1.0 + trend * years_in, 0.3)
        season = self.price_season * np.cos(
            2 * np.pi * (grid.day_of_year - self.price_peak_day) / 365.25
        )
        weekend = grid.weekday >= 5
        weekly = np.where(weekend, -self.weekly, self.weekly * 2.0 / 5.0)
        relative = season + weekly + self.daily * grid.daily_shape
        phi = math.exp(-grid.step_days / self.noise_days)
        relative = relative + _ar1(rng, (n, grid.n_steps), phi=phi, sigma=self.noise_sigma)
        anomaly = np.clip(np.log(np.maximum(inflow, 1e-3) / self.mean_inflow_m3s), -2.0, 2.0)
        relative = relative - self.inflow_link * anomaly
        price = level * (1.0 + relative)
        if self.regimes:
            price *= self._regimes(rng, grid, n)
        if self.spikes_per_year:
            price += level * self._spikes(rng, grid, n)
        floor = 0.03 * level  # smooth: a price far above it is left as it is
        return floor + floor * np.logaddexp(0.0, (price - floor) / floor)

    def _regimes(self, rng: np.random.Generator, grid: _Grid, n: int) -> np.ndarray:
        """A Markov chain of price multipliers, switching on days, staying ~regime_weeks."""
        n_days = int(grid.day_index[-1]) + 1
        levels = np.asarray(self.regimes)
        k = len(levels)
        state = np.empty((n, n_days), dtype=np.int64)
        state[:, 0] = rng.integers(0, k, n)
        leave = rng.random((n, n_days)) < 1.0 / (7.0 * self.regime_weeks)
        jump = rng.integers(1, k, (n, n_days))  # to one of the other regimes
        for d in range(1, n_days):
            state[:, d] = np.where(leave[:, d], (state[:, d - 1] + jump[:, d]) % k, state[:, d - 1])
        return levels[state[:, grid.day_index]]

    def _spikes(self, rng: np.random.Generator, grid: _Grid, n: int) -> np.ndarray:
        """Short price spikes, relative to the level; a daily step sees a day's average."""
        out = np.zeros((n, grid.n_steps))
        steps = max(1, round(self.spike_hours / grid.step_hours))
        scale = min(1.0, self.spike_hours / grid.step_hours)
        expected = self.spikes_per_year * grid.n_steps * grid.step_days / _DAYS_PER_YEAR
        for s in range(n):
            for t in rng.integers(0, grid.n_steps, rng.poisson(expected)):
                out[s, t : t + steps] += self.spike_size * scale * rng.exponential(1.0)
        return out


def _draw_process(
    rng: np.random.Generator, featured: str, step_hours: int, mean_inflow_m3s: float
) -> _Process:
    """Every parameter is drawn, used or not, so that fixing one kind shifts no other draw."""

    def has(kind: str, chance: float) -> bool:
        return bool(rng.random() < chance) or kind == featured

    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    u = rng.uniform
    melt = _Bump(u(100.0, 200.0), u(15.0, 35.0), u(1.0, 4.0), u(5.0, 15.0), u(0.15, 0.4))
    rain = _Bump(u(0.0, 365.0), u(20.0, 60.0), u(0.5, 3.0), u(5.0, 25.0), u(0.2, 0.5))
    floods, spikes, trend = u(3.0, 25.0), u(5.0, 40.0), rng.choice([-1.0, 1.0]) * u(0.02, 0.1)
    two = (u(0.6, 0.85), u(1.2, 1.6))
    three = (u(0.5, 0.8), 1.0, u(1.3, 2.0))
    regimes = three if rng.random() < 0.6 else two
    strong, weak = u(0.25, 0.5), u(0.02, 0.2) * (rng.random() < 0.7)  # weak: or none
    return _Process(
        mean_inflow_m3s=mean_inflow_m3s,
        base_season=u(0.0, 0.5),
        base_peak_day=u(0.0, 365.0),
        melt=melt if has("snow melt", 0.45) else None,
        rain=rain if has("rain season", 0.5) else None,
        floods_per_year=floods if has("floods", 0.5) else 0.0,
        flood_size=u(1.5, 8.0),
        flood_days=log_uniform(0.3, 5.0),
        weather_sigma=u(0.1, 0.4),
        weather_days=u(1.0, 10.0),
        year_sigma=u(0.05, 0.35),
        level_eur_mwh=u(25.0, 90.0),
        price_season=u(0.0, 0.35),
        price_peak_day=u(0.0, 365.0),
        trend_per_year=float(trend) if has("price trend", 0.4) else 0.0,
        regimes=tuple(map(float, regimes)) if has("price regimes", 0.4) else (),
        regime_weeks=u(1.0, 8.0),
        spikes_per_year=spikes if has("price spikes", 0.5) else 0.0,
        spike_size=u(1.0, 4.0),
        spike_hours=u(1.0, 6.0),
        daily=u(0.0, 0.4) * (step_hours < 24),
        weekly=u(0.0, 0.15),
        noise_sigma=u(0.03, 0.12),
        noise_days=u(0.5, 3.0),
        inflow_link=strong if has("strong correlation", 0.3) else float(weak),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _Grid:
    """The time grid of a case and the calendar facts the processes read from it."""

    times: pd.DatetimeIndex
    years: int
    step_hours: int
    mid_days: np.ndarray  # middle of each step, days from the start
    day_of_year: np.ndarray  # of each step's middle, fractional, 0-based
    day_index: np.ndarray  # days from the start
    year_index: np.ndarray  # years from the start
    weekday: np.ndarray
    daily_shape: np.ndarray  # mean 0, peak-to-trough 1

    @classmethod
    def of(cls, start: pd.Timestamp, years: int, step_hours: int) -> _Grid:
        end = start + pd.DateOffset(years=years)
        times = pd.date_range(start, end, freq=f"{step_hours}h", inclusive="left")
        hour = times.hour.to_numpy()
        mid = (times - start).total_seconds().to_numpy() / 86_400 + step_hours / 48
        return cls(
            times=times,
            years=years,
            step_hours=step_hours,
            mid_days=mid,
            day_of_year=times.day_of_year.to_numpy() - 1 + (hour + step_hours / 2) / 24,
            day_index=np.floor(mid).astype(np.int64),
            year_index=np.minimum((mid // _DAYS_PER_YEAR).astype(np.int64), years - 1),
            weekday=times.day_of_week.to_numpy(),
            daily_shape=_daily_shape(hour, step_hours),
        )

    @property
    def n_steps(self) -> int:
        return len(self.times)

    @property
    def step_days(self) -> float:
        return self.step_hours / 24.0


def _daily_shape(hour: np.ndarray, step_hours: int) -> np.ndarray:
    """Morning and evening peaks, a night trough: averaged over each step's hours."""
    if step_hours >= 24:
        return np.zeros(hour.shape)
    h = np.arange(24) + 0.5
    curve = (
        0.8 * np.exp(-0.5 * ((h - 8.0) / 2.0) ** 2)
        + np.exp(-0.5 * ((h - 18.0) / 2.5) ** 2)
        - 0.6 * np.exp(-0.5 * ((h - 3.0) / 2.5) ** 2)
    )
    curve = (curve - curve.mean()) / (curve.max() - curve.min())
    per_step = np.array([curve[k : k + step_hours].mean() for k in range(24)])
    return per_step[hour]


def _circular(days: np.ndarray) -> np.ndarray:
    """Day differences folded into half a year either way."""
    return (days + _DAYS_PER_YEAR / 2) % _DAYS_PER_YEAR - _DAYS_PER_YEAR / 2


def _month(day_of_year: float) -> str:
    return _MONTHS[min(int(day_of_year % 365 / 365 * 12), 11)]


def _ar1(
    rng: np.random.Generator, shape: tuple[int, int], *, phi: float, sigma: float
) -> np.ndarray:
    """Stationary AR(1) rows with per-step persistence ``phi`` and marginal std ``sigma``."""
    n, steps = shape
    shocks = rng.normal(0.0, sigma * math.sqrt(1.0 - phi**2), shape)
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, sigma, n)
    for i in range(1, steps):  # over time, all scenarios at once: milliseconds
        out[:, i] = phi * out[:, i - 1] + shocks[:, i]
    return out
