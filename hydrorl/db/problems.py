"""Loading a forecast and its system from the database as a physics :class:`Problem`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.orm import Session

from hydrorl.db import forecasts as forecast_store
from hydrorl.db import models
from hydrorl.db import systems as system_store
from hydrorl.physics import Cascade, Problem


def load_problem(
    session: Session, forecast: models.Forecast, scenarios: Sequence[str | int] | None = None
) -> Problem:
    spec = system_store.to_spec(forecast.system)
    table = forecast_store.read_table(session, forecast, scenarios)
    return Problem.create(
        Cascade.from_system(spec),
        table.price_eur_mwh,
        table.inflow_m3s,
        table.step.total_seconds(),
        np.datetime64(table.start_time.to_datetime64(), "s"),
        table.scenario_names,
    )
