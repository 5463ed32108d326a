"""Panel components of the workbench, built on :class:`hydrorl.Workbench` only."""

from hydrorl.ui.app import WorkbenchApp
from hydrorl.ui.episodes import EpisodeBrowser
from hydrorl.ui.forecast_explorer import ForecastExplorer
from hydrorl.ui.launcher import RunLauncher
from hydrorl.ui.monitor import TrainingMonitor
from hydrorl.ui.resources import extension
from hydrorl.ui.runs_table import RunsTable
from hydrorl.ui.upload import ForecastUpload

__all__ = [
    "EpisodeBrowser",
    "ForecastExplorer",
    "ForecastUpload",
    "RunLauncher",
    "RunsTable",
    "TrainingMonitor",
    "WorkbenchApp",
    "extension",
]
