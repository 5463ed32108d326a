"""A scheduling problem as plain arrays: a cascade and the scenarios of one forecast."""

from __future__ import annotations

import dataclasses

import numpy as np

from hydrorl.physics.cascade import Cascade

_SECONDS_PER_DAY = 86_400.0
_DAYS_PER_YEAR = 365.25


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A cascade with S price/inflow scenarios of T steps of ``dt_s`` seconds.

    ``water_price_eur_mwh`` values the water left at the end (default: the mean
    forecast price); ``price_mean``/``price_std``/``inflow_mean`` normalise
    observations.  When an agent trained on one forecast is evaluated on another,
    pass the training problem's values so that both see the same scales
    (:meth:`with_reference`).
    """

    cascade: Cascade
    price_eur_mwh: np.ndarray  # (S, T)
    inflow_m3s: np.ndarray  # (S, T)
    dt_s: float
    start_time: np.datetime64
    scenario_names: tuple[str, ...]
    water_price_eur_mwh: float
    price_mean: float
    price_std: float
    inflow_mean: float

    @classmethod
    def create(
        cls,
        cascade: Cascade,
        price_eur_mwh: np.ndarray,
        inflow_m3s: np.ndarray,
        dt_s: float,
        start_time: np.datetime64 | str = "2000-01-01",
        scenario_names: tuple[str, ...] | None = None,
        water_price_eur_mwh: float | None = None,
    ) -> Problem:
        price = np.atleast_2d(np.asarray(price_eur_mwh, dtype=float))
        inflow = np.atleast_2d(np.asarray(inflow_m3s, dtype=float))
        if price.shape != inflow.shape:
            raise ValueError(f"price {price.shape} and inflow {inflow.shape} differ in shape")
        names = scenario_names or tuple(str(i + 1) for i in range(price.shape[0]))
        mean = float(price.mean())
        return cls(
            cascade=cascade,
            price_eur_mwh=price,
            inflow_m3s=inflow,
            dt_s=float(dt_s),
            start_time=np.datetime64(start_time, "s"),  # type: ignore[call-overload]
            scenario_names=tuple(names),
            water_price_eur_mwh=mean if water_price_eur_mwh is None else float(water_price_eur_mwh),
            price_mean=mean,
            price_std=float(price.std()) or 1.0,
            inflow_mean=float(inflow.mean()) or 1.0,
        )

    @property
    def n_scenarios(self) -> int:
        return int(self.price_eur_mwh.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.price_eur_mwh.shape[1])

    def with_reference(self, reference: Problem) -> Problem:
        """This problem's scenarios, seen with ``reference``'s scales and water price."""
        return self.with_scales(
            reference.water_price_eur_mwh,
            reference.price_mean,
            reference.price_std,
            reference.inflow_mean,
        )

    def with_scales(
        self, water_price_eur_mwh: float, price_mean: float, price_std: float, inflow_mean: float
    ) -> Problem:
        """This problem's scenarios, seen with these scales and water price (a training's)."""
        return dataclasses.replace(
            self,
            water_price_eur_mwh=water_price_eur_mwh,
            price_mean=price_mean,
            price_std=price_std,
            inflow_mean=inflow_mean,
        )

    def scenarios(self, indices: np.ndarray | list[int]) -> Problem:
        """A problem with only some scenarios (same scales)."""
        idx = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(
            self,
            price_eur_mwh=self.price_eur_mwh[idx],
            inflow_m3s=self.inflow_m3s[idx],
            scenario_names=tuple(self.scenario_names[i] for i in idx),
        )

    def horizon(self, n_steps: int) -> Problem:
        """The first ``n_steps`` of every scenario."""
        return dataclasses.replace(
            self,
            price_eur_mwh=self.price_eur_mwh[:, :n_steps],
            inflow_m3s=self.inflow_m3s[:, :n_steps],
        )

    def times(self) -> np.ndarray:
        """Start of every step, datetime64[s]."""
        return self.start_time + (np.arange(self.n_steps) * self.dt_s).astype("timedelta64[s]")

    def time_angles(self) -> tuple[np.ndarray, np.ndarray]:
        """(time of day, time of year) of every step as angles in [0, 2π)."""
        times = self.times()
        seconds_of_day = (times - times.astype("datetime64[D]")).astype(np.float64)
        day_of_year = (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(
            np.float64
        ) + seconds_of_day / _SECONDS_PER_DAY
        day_angle = 2 * np.pi * seconds_of_day / _SECONDS_PER_DAY
        year_angle = 2 * np.pi * (day_of_year / _DAYS_PER_YEAR % 1.0)
        return day_angle, year_angle

    def week_angle(self) -> np.ndarray:
        """Time of the week (Monday 00:00 is 0) of every step as an angle in [0, 2π)."""
        seconds = self.times().astype("datetime64[s]").astype(np.int64).astype(np.float64)
        days = seconds / _SECONDS_PER_DAY + 3.0  # 1970-01-01 was a Thursday
        return 2 * np.pi * (days % 7.0) / 7.0

    def default_start_volumes(self) -> np.ndarray:
        """Half-full reservoirs."""
        c = self.cascade
        return c.min_volume_mm3 + 0.5 * (c.max_volume_mm3 - c.min_volume_mm3)
