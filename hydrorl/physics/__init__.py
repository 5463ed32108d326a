"""The physics of DESIGN.md §2, written once and batched (numpy only).

Everything that reports a revenue (environment, bound, benchmark, evaluation)
goes through :func:`step` and :func:`end_water_value_eur`, so their numbers are
comparable.
"""

from hydrorl.physics.cascade import (
    MM3_PER_M3,
    Cascade,
    StepResult,
    end_water_value_eur,
    step,
)
from hydrorl.physics.problem import Problem

__all__ = ["MM3_PER_M3", "Cascade", "Problem", "StepResult", "end_water_value_eur", "step"]
