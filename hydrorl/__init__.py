"""HydroRL: reinforcement learning for scheduling hydropower cascades.

The handful of names a notebook needs::

    import hydrorl
    wb = hydrorl.connect()          # ~/.hydrorl/hydrorl.db, or $HYDRORL_DATABASE_URL
    wb.setup_demo()
    wb.forecast_data("Demo forecast")
"""

from hydrorl.errors import (
    AlreadyExistsError,
    DuplicateUploadError,
    ForecastValidationError,
    HydroRLError,
    NotFoundError,
    SystemValidationError,
    ValidationError,
)
from hydrorl.forecast import ForecastTable, read_forecast
from hydrorl.project import ALGORITHMS, TrainingSettings
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from hydrorl.workbench import ForecastInfo, ProjectInfo, Workbench, connect

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
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
    "Reservoir",
    "SystemValidationError",
    "TrainingSettings",
    "ValidationError",
    "Workbench",
    "connect",
    "read_forecast",
]
