"""Loading a forecast and its system from the database as a physics :class:`Problem`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import forecasts as forecast_store
from hydrorl.db import models
from hydrorl.db import systems as system_store
from hydrorl.physics import Problem
from hydrorl.problems import build_problem


def load_problem(
    session: Session, forecast: models.Forecast, scenarios: Sequence[str | int] | None = None
) -> Problem:
    """The problem of (some of) ``forecast``'s scenarios.

    The water left at the end is valued at the whole forecast's mean price, and
    observations are scaled by the whole forecast's statistics, whichever scenarios
    are read: S01's bound is the same asked alone, with S02 or with all of them.
    """
    spec = system_store.to_spec(forecast.system)
    table = forecast_store.read_table(session, forecast, scenarios)
    return build_problem(spec, table, forecast_statistics(session, forecast))


def forecast_statistics(session: Session, forecast: models.Forecast) -> dict[str, float]:
    """Mean and standard deviation of the price, mean of the inflow, over every scenario
    and step of ``forecast`` (computed by the database: nothing big is read)."""
    v, link = models.TimeDataValue, models.SeriesLink

    def moments(series_column: Any) -> tuple[float, float]:
        ids = sa.select(series_column).where(link.forecast_id == forecast.id)
        mean, square = session.execute(
            sa.select(sa.func.avg(v.value), sa.func.avg(v.value * v.value)).where(
                v.series_id.in_(ids)
            )
        ).one()
        mean, square = float(mean or 0.0), float(square or 0.0)
        return mean, float(np.sqrt(max(square - mean * mean, 0.0)))

    price_mean, price_std = moments(link.price_series_id)
    inflow_mean, _ = moments(link.inflow_series_id)
    return {
        "price_mean": price_mean,
        "price_std": price_std or 1.0,
        "inflow_mean": inflow_mean or 1.0,
    }
