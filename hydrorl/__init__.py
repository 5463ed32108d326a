"""HydroRL: reinforcement learning for scheduling hydropower cascades.

The handful of names a notebook needs::

    import hydrorl
    wb = hydrorl.connect()          # ~/.hydrorl/hydrorl.db, or $HYDRORL_DATABASE_URL
    wb.setup_demo()
    wb.forecast_data("Demo forecast")
"""

from hydrorl.env import ENV_ID, CascadeEnv, CascadeVecEnv
from hydrorl.errors import (
    AlreadyExistsError,
    DuplicateUploadError,
    ForecastValidationError,
    HydroRLError,
    NotFoundError,
    SystemValidationError,
    ValidationError,
)
from hydrorl.evaluation import EvaluationResult, evaluate_policy
from hydrorl.forecast import ForecastTable, read_forecast
from hydrorl.physics import Cascade, Problem
from hydrorl.physics.episode import EpisodeDesign
from hydrorl.project import ALGORITHMS, TrainingSettings
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from hydrorl.workbench import ForecastInfo, ProjectInfo, Workbench, connect
from hydrorl.workbench_runs import RunInfo

__version__ = "0.1.0"

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
    "NotFoundError",
    "PowerStation",
    "ProjectInfo",
    "RunInfo",
    "Reservoir",
    "SystemValidationError",
    "TrainingSettings",
    "ValidationError",
    "Workbench",
    "connect",
    "read_forecast",
]
