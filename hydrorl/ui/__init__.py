"""Panel components of the workbench, built on :class:`hydrorl.Workbench` only."""

from hydrorl.ui.forecast_explorer import ForecastExplorer

__all__ = ["ForecastExplorer"]
