"""A forecast and its system as a physics :class:`~hydrorl.physics.Problem`: one function for the
local workbench (from its database) and the remote one (from a server's answers)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hydrorl.forecast import ForecastTable
from hydrorl.physics import Cascade, Problem
from hydrorl.system import HydroSystem


def build_problem(
    system: HydroSystem, table: ForecastTable, statistics: Mapping[str, float]
) -> Problem:
    """The problem of ``table``'s scenarios on ``system``, seen with the whole forecast's
    ``statistics`` (``price_mean``, ``price_std``, ``inflow_mean``): the water left at the end
    is valued at the whole forecast's mean price and observations are scaled by the whole
    forecast, whichever scenarios the table holds."""
    problem = Problem.create(
        Cascade.from_system(system),
        table.price_eur_mwh,
        table.inflow_m3s,
        table.step.total_seconds(),
        np.datetime64(table.start_time.to_datetime64(), "s"),
        table.scenario_names,
    )
    return problem.with_scales(
        water_price_eur_mwh=statistics["price_mean"],
        price_mean=statistics["price_mean"],
        price_std=statistics["price_std"],
        inflow_mean=statistics["inflow_mean"],
    )
