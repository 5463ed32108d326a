"""The bound, the benchmark and the naive rules side by side, scenario by scenario."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hydrorl.baselines import (
    ConstantRelease,
    PriceThreshold,
    WaterValuePolicy,
    perfect_foresight_all,
    water_values,
)
from hydrorl.evaluation import evaluate_policy
from hydrorl.physics import Problem


def baseline_table(
    problem: Problem,
    start_volumes: np.ndarray | None = None,
    *,
    training: Problem | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Total value (revenue + end water value, EUR) of each baseline per scenario, and % of bound.

    Water values are computed on ``training`` (default: the problem itself).
    """
    values = water_values(training or problem)
    policies = {
        "benchmark (SDP water values)": WaterValuePolicy(problem, values),
        "naive: constant release": ConstantRelease(problem),
        "naive: release above mean price": PriceThreshold(problem),
    }
    bound = perfect_foresight_all(problem, start_volumes, progress=progress)
    table = pd.DataFrame({"scenario": problem.scenario_names})
    table["perfect-foresight bound"] = [b.total_eur for b in bound]
    for name, policy in policies.items():
        table[name] = evaluate_policy(policy, problem, start_volumes).totals["total_eur"].to_numpy()
    return table


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean total value and mean share of the bound of each column of :func:`baseline_table`."""
    bound = table["perfect-foresight bound"]
    rows = []
    for name in table.columns.drop("scenario"):
        rows.append(
            {
                "policy": name,
                "mean value (MEUR)": table[name].mean() / 1e6,
                "% of bound": 100 * (table[name] / bound).mean(),
            }
        )
    return pd.DataFrame(rows)
