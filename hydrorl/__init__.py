"""HydroRL: reinforcement learning for scheduling hydropower cascades.

The handful of names a notebook needs::

    import hydrorl
    wb = hydrorl.connect()          # $HYDRORL_DATABASE_URL (a database or a server), or
                                    # ~/.hydrorl/hydrorl.db
    # or hydrorl.connect("http://host:8000"): a HydroRL server, token from $HYDRORL_TOKEN
    wb.setup_demo()
    wb.forecast_data("Demo forecast")

The names are handed on lazily (PEP 562): ``import hydrorl`` imports none of
torch, Stable-Baselines3, pandas or SQLAlchemy (only gymnasium, to register the
environment's id), so that the CLI's
``--help``, an HTTP client and the physics start in a fraction of a second.
Each name's module is imported the first time the name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hydrorl.env import ENV_ID, CascadeEnv, CascadeVecEnv
    from hydrorl.errors import (
        AlreadyExistsError,
        DuplicateUploadError,
        ForecastValidationError,
        HydroRLError,
        InUseError,
        NotFoundError,
        SystemValidationError,
        ValidationError,
    )
    from hydrorl.evaluation import EvaluationResult, evaluate_policy
    from hydrorl.forecast import ForecastTable, read_forecast
    from hydrorl.physics import Cascade, Problem
    from hydrorl.physics.episode import EpisodeDesign
    from hydrorl.project import ALGORITHMS, TrainingSettings
    from hydrorl.protocol import WorkbenchVerbs
    from hydrorl.service.client import RemoteWorkbench
    from hydrorl.service.connect import connect
    from hydrorl.system import HydroSystem, PowerStation, Reservoir
    from hydrorl.workbench import ForecastInfo, ProjectInfo, Workbench
    from hydrorl.workbench_runs import RunInfo

__version__ = "0.1.0"

#: Where each public name lives (as in the imports above); the module is imported on first use.
_SOURCES: dict[str, tuple[str, ...]] = {
    "hydrorl.env": ("ENV_ID", "CascadeEnv", "CascadeVecEnv"),
    "hydrorl.errors": (
        "AlreadyExistsError",
        "DuplicateUploadError",
        "ForecastValidationError",
        "HydroRLError",
        "InUseError",
        "NotFoundError",
        "SystemValidationError",
        "ValidationError",
    ),
    "hydrorl.evaluation": ("EvaluationResult", "evaluate_policy"),
    "hydrorl.forecast": ("ForecastTable", "read_forecast"),
    "hydrorl.physics": ("Cascade", "Problem"),
    "hydrorl.physics.episode": ("EpisodeDesign",),
    "hydrorl.project": ("ALGORITHMS", "TrainingSettings"),
    "hydrorl.protocol": ("WorkbenchVerbs",),
    "hydrorl.system": ("HydroSystem", "PowerStation", "Reservoir"),
    "hydrorl.service.client": ("RemoteWorkbench",),
    "hydrorl.service.connect": ("connect",),
    "hydrorl.workbench": ("ForecastInfo", "ProjectInfo", "Workbench"),
    "hydrorl.workbench_runs": ("RunInfo",),
}
_LAZY = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "ALGORITHMS",
    "ENV_ID",
    "Cascade",
    "CascadeEnv",
    "CascadeVecEnv",
    "EpisodeDesign",
    "EvaluationResult",
    "Problem",
    "evaluate_policy",
    "AlreadyExistsError",
    "DuplicateUploadError",
    "ForecastInfo",
    "ForecastTable",
    "ForecastValidationError",
    "HydroRLError",
    "HydroSystem",
    "InUseError",
    "NotFoundError",
    "PowerStation",
    "ProjectInfo",
    "RemoteWorkbench",
    "RunInfo",
    "Reservoir",
    "SystemValidationError",
    "TrainingSettings",
    "ValidationError",
    "Workbench",
    "WorkbenchVerbs",
    "connect",
    "read_forecast",
]

# The gymnasium id, registered whatever the import order (gymnasium only, no torch).
importlib.import_module("hydrorl.env.registration")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hydrorl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
