"""The composed workbench: every component on one page, for panel serve, Voila and JupyterLab."""

from __future__ import annotations

import panel as pn

from hydrorl.ui.episodes import EpisodeBrowser
from hydrorl.ui.forecast_explorer import ForecastExplorer
from hydrorl.ui.launcher import RunLauncher
from hydrorl.ui.monitor import TrainingMonitor
from hydrorl.ui.upload import ForecastUpload
from hydrorl.workbench import Workbench


class WorkbenchApp(pn.viewable.Viewer):
    """Systems and forecasts, upload, training with live curves, and evaluation episodes."""

    def __init__(self, workbench: Workbench, **params: object) -> None:
        super().__init__(**params)
        self.workbench = workbench
        self.explorer = ForecastExplorer(workbench)
        self.upload = ForecastUpload(workbench)
        self.launcher = RunLauncher(workbench)
        self.monitor = TrainingMonitor(workbench, run_id=self.launcher.run_id)
        self.episodes = EpisodeBrowser(workbench)
        # The monitor follows the run the launcher started.
        self.launcher.param.watch(lambda e: setattr(self.monitor, "run_id", e.new), "run_id")
        self.upload.param.watch(self._uploaded, "message")
        self.tabs = pn.Tabs(
            ("System & forecasts", self.explorer),
            ("Upload a forecast", self.upload),
            ("Train", pn.Column(self.launcher, self.monitor, sizing_mode="stretch_width")),
            ("Episodes", self.episodes),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        self.tabs.param.watch(self._on_tab, "active")

    def _uploaded(self, event) -> None:  # noqa: ANN001
        if event.new:
            self.launcher.reload()

    def _on_tab(self, event) -> None:  # noqa: ANN001
        # Hidden tabs do not poll the database (nor update panes no longer in the page).
        if event.new == 2:
            self.launcher.start_refresh()
            self.monitor.start()
        else:
            self.launcher.stop_refresh()
            self.monitor.stop()
        if event.new == 3:
            self.episodes.reload()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown("# HydroRL workbench"), self.tabs, sizing_mode="stretch_width"
        )
