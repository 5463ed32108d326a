"""The embedded demo: a small Nordic-style cascade and a synthetic forecast for it.

The river has a large seasonal reservoir high in the mountains, a smaller one
below it and a small pond above the last station before the sea; each reservoir
has one station releasing into the next, and spill follows the same way.

The forecast generator makes 3-hourly scenarios of inflow (m³/s, for the whole
catchment; each reservoir gets its ``inflow_factor`` share) and price (EUR/MWh):

* inflow: low winter base flow, a snow-melt flood in late spring whose size and
  timing vary from year to year, autumn rain, and weather noise (AR(1) in log);
* price: seasonal level (high in winter), weekly shape (cheaper weekends), daily
  shape (morning and evening peaks), weather noise, and a negative link to
  inflow (a wet year or a melt flood pushes prices down).

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hydrorl.errors import ValidationError
from hydrorl.forecast import ForecastTable
from hydrorl.system import HydroSystem, PowerStation, Reservoir

if TYPE_CHECKING:
    from hydrorl.physics import Problem

DEMO_SYSTEM_NAME = "Demo river"
DEMO_FORECAST_NAME = "Demo forecast"
DEMO_PROJECT_NAME = "Demo project"
DEMO_START = pd.Timestamp("2027-01-01")
DEMO_MEAN_INFLOW_M3S = 60.0


def demo_system() -> HydroSystem:
    """Three reservoirs in a row, one station each; the last one releases to the sea."""
    return HydroSystem(
        name=DEMO_SYSTEM_NAME,
        description=(
            "A small Nordic-style river: a large seasonal mountain reservoir, a mid-valley "
            "reservoir and a small pond above the last station before the sea."
        ),
        reservoirs=(
            Reservoir("Hoegfjell", min_volume_mm3=40.0, max_volume_mm3=900.0, inflow_factor=0.6),
            Reservoir("Midtvatn", min_volume_mm3=5.0, max_volume_mm3=60.0, inflow_factor=0.25),
            Reservoir("Nedrevatn", min_volume_mm3=1.0, max_volume_mm3=12.0, inflow_factor=0.15),
        ),
        power_stations=(
            PowerStation("Hoegfjell PS", "Hoegfjell", "Midtvatn", 110.0, 1.15),
            PowerStation("Midtvatn PS", "Midtvatn", "Nedrevatn", 140.0, 0.55),
            PowerStation("Nedrevatn PS", "Nedrevatn", None, 170.0, 0.22),
        ),
    ).validate()


#: The most scenario-years a demo forecast has (memory and minutes grow with it).
MAX_SCENARIO_YEARS = 1000


def check_demo_arguments(*, seed: int, scenarios: int, years: int, step_hours: int = 3) -> None:
    """Refuse demo settings the generator cannot use, naming the argument and the fix."""
    for name, value, least in (
        ("seed", seed, 0),
        ("scenarios", scenarios, 1),
        ("years", years, 1),
        ("step_hours", step_hours, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValidationError(f"{name} must be a whole number >= {least}, got {value!r}")
    if 24 % step_hours:
        raise ValidationError(
            f"step_hours must divide a day (1, 2, 3, 4, 6, 8, 12 or 24), got {step_hours!r}"
        )
    if scenarios * years > MAX_SCENARIO_YEARS:
        raise ValidationError(
            f"scenarios x years = {scenarios} x {years} is more than the demo generates (at most "
            f"{MAX_SCENARIO_YEARS} scenario-years, the full demo is 20 x 5): upload a forecast "
            f"of your own for more"
        )


def count(number: int, noun: str) -> str:
    """``count(1, "year")`` is "1 year", ``count(5, "year")`` "5 years"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def demo_description(*, seed: int, scenarios: int, years: int) -> str:
    """What a generated demo forecast says of itself (its stored description)."""
    return f"demo forecast (seed {seed}, {count(scenarios, 'scenario')}, {count(years, 'year')})"


def legacy_description(*, seed: int, scenarios: int, years: int) -> str:
    """The description earlier versions stored ("1 years"): the same forecast."""
    return f"demo forecast (seed {seed}, {scenarios} scenarios, {years} years)"


def demo_forecast(
    *,
    seed: int = 0,
    scenarios: int = 20,
    years: int = 5,
    step_hours: int = 3,
    start: pd.Timestamp | str = DEMO_START,
) -> ForecastTable:
    """Synthetic price and inflow scenarios (see the module docstring)."""
    check_demo_arguments(seed=seed, scenarios=scenarios, years=years, step_hours=step_hours)
    start = pd.Timestamp(start)
    times = pd.date_range(
        start, start + pd.DateOffset(years=years), freq=f"{step_hours}h", inclusive="left"
    )
    rng = np.random.default_rng(seed)
    n_t = len(times)
    doy = times.day_of_year.to_numpy() - 1 + times.hour.to_numpy() / 24.0  # fractional day of year
    hour = times.hour.to_numpy()
    weekday = times.day_of_week.to_numpy()
    year_index = (times.year - start.year).to_numpy()
    steps_per_day = 24 // step_hours

    inflow = np.empty((scenarios, n_t))
    price = np.empty((scenarios, n_t))
    for s in range(scenarios):
        # --- inflow: base flow + melt flood + autumn rain, all varying by year
        wetness = rng.lognormal(0.0, 0.25, size=years)[year_index]
        melt_peak_day = (145.0 + rng.normal(0.0, 12.0, size=years))[year_index]
        melt_width = (22.0 + rng.normal(0.0, 4.0, size=years))[year_index]
        melt_size = (3.2 * rng.lognormal(0.0, 0.3, size=years))[year_index]
        melt = melt_size * np.exp(-0.5 * ((doy - melt_peak_day) / melt_width) ** 2)
        autumn = 0.7 * np.exp(-0.5 * ((doy - 285.0) / 30.0) ** 2)
        base = 0.22 + 0.08 * np.cos(2 * np.pi * (doy - 15.0) / 365.25)
        weather = _ar1(rng, n_t, phi=1.0 - 1.0 / (4 * steps_per_day), sigma=0.06)
        shape = (base + melt + autumn) * np.exp(weather)
        shape /= shape.mean()
        inflow[s] = DEMO_MEAN_INFLOW_M3S * wetness * shape

        # --- price: level, season, week, day, noise, and the hydro link
        level = 42.0 + rng.normal(0.0, 4.0)
        season = 14.0 * np.cos(2 * np.pi * (doy - 20.0) / 365.25)
        weekly = np.where(weekday >= 5, -7.0, 1.5)
        daily = (
            7.0 * np.exp(-0.5 * ((hour - 8.0) / 2.0) ** 2)
            + 9.0 * np.exp(-0.5 * ((hour - 18.0) / 2.5) ** 2)
            - 5.0 * np.exp(-0.5 * ((hour - 3.0) / 2.5) ** 2)
        )
        hydro_link = -9.0 * (wetness - 1.0) - 4.0 * (shape - 1.0).clip(-1.0, 3.0)
        noise = _ar1(rng, n_t, phi=1.0 - 1.0 / (2 * steps_per_day), sigma=1.2)
        spikes = rng.exponential(12.0, n_t) * (rng.random(n_t) < 0.004)
        price[s] = level + season + weekly + daily + hydro_link + noise + spikes

    price, inflow = np.round(price, 3), np.round(inflow, 3)
    digest = hashlib.sha256(f"{times[0]}|{step_hours}".encode())
    digest.update(price.tobytes())
    digest.update(inflow.tobytes())
    return ForecastTable(
        scenario_names=tuple(f"S{s + 1:02d}" for s in range(scenarios)),
        start_time=times[0],
        step=pd.Timedelta(hours=step_hours),
        price_eur_mwh=price,
        inflow_m3s=inflow,
        source_name=demo_description(seed=seed, scenarios=scenarios, years=years),
        source_format="generated",
        content_hash=digest.hexdigest(),
    )


def _ar1(rng: np.random.Generator, n: int, *, phi: float, sigma: float) -> np.ndarray:
    """A stationary AR(1) path with per-step persistence ``phi`` and marginal std ``sigma``."""
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    # A loop over 15k steps costs milliseconds; scipy.signal.lfilter would hide the recursion.
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def demo_problem(*, seed: int = 0, scenarios: int = 20, years: int = 5) -> Problem:
    """The demo cascade and forecast as plain arrays, without a database."""
    from hydrorl.physics import Cascade, Problem

    table = demo_forecast(seed=seed, scenarios=scenarios, years=years)
    return Problem.create(
        Cascade.from_system(demo_system()),
        table.price_eur_mwh,
        table.inflow_m3s,
        table.step.total_seconds(),
        np.datetime64(table.start_time.to_datetime64(), "s"),
        table.scenario_names,
    )
