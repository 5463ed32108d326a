"""The composed workbench: every component on one page, for panel serve, Voila and JupyterLab."""

from __future__ import annotations

import panel as pn

from hydrorl.protocol import WorkbenchVerbs
from hydrorl.ui.episodes import EpisodeBrowser
from hydrorl.ui.forecast_explorer import ForecastExplorer
from hydrorl.ui.launcher import RunLauncher
from hydrorl.ui.monitor import TrainingMonitor
from hydrorl.ui.runs_table import RunsTable
from hydrorl.ui.upload import ForecastUpload

#: The tabs' positions (Tabs are dynamic: only the one shown is in the page).
TRAIN_TAB, EPISODES_TAB, RUNS_TAB = 2, 3, 4


class WorkbenchApp(pn.viewable.Viewer):
    """Systems and forecasts, upload, training with live curves, evaluation episodes, and the
    runs table (compare, rename, delete)."""

    def __init__(self, workbench: WorkbenchVerbs, **params: object) -> None:
        super().__init__(**params)
        self.workbench = workbench
        self.explorer = ForecastExplorer(workbench)
        self.upload = ForecastUpload(workbench)
        self.launcher = RunLauncher(workbench)
        self.monitor = TrainingMonitor(workbench, run_id=self.launcher.run_id)
        self.episodes = EpisodeBrowser(workbench)
        self.runs = RunsTable(workbench, embed_monitor=False)
        self.runs.param.watch(self._compare, "compared")
        self.runs.param.watch(self._changed, "changes")
        # The monitor follows the run the launcher started.
        self.launcher.param.watch(lambda e: setattr(self.monitor, "run_id", e.new), "run_id")
        self.upload.param.watch(self._uploaded, "message")
        self.tabs = pn.Tabs(
            ("System & forecasts", self.explorer),
            ("Upload a forecast", self.upload),
            ("Train", pn.Column(self.launcher, self.monitor, sizing_mode="stretch_width")),
            ("Episodes", self.episodes),
            ("Runs", self.runs),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        self.tabs.param.watch(self._on_tab, "active")

    def _uploaded(self, event) -> None:  # noqa: ANN001
        if event.new:
            self.launcher.reload()

    def _on_tab(self, event) -> None:  # noqa: ANN001
        # Hidden tabs do not poll the database (nor update panes no longer in the page).
        if event.new == TRAIN_TAB:
            self.launcher.start_refresh()
            self.monitor.start()
        else:
            self.launcher.stop_refresh()
            self.monitor.stop()
        if event.new == EPISODES_TAB:
            self.episodes.reload()  # an evaluation started since it was last shown is shown
            self.episodes.start()  # and its episodes come in as they finish
        else:
            self.episodes.stop()
        if event.new == RUNS_TAB:
            self.runs.reload()  # the runs started or ended since it was last shown
            self.runs.start()
        else:
            self.runs.stop()

    def _compare(self, event) -> None:  # noqa: ANN001
        """Open the runs compared in the runs table in the Train tab's monitor: the first is
        watched (and chosen in the launcher), the others drawn beside it."""
        if not event.new:
            return
        first, *others = event.new
        self.launcher.reload_runs()
        self.launcher.run_id = first  # (the monitor follows)
        self.monitor.reload_runs()
        self.monitor.compare = others
        self.tabs.active = TRAIN_TAB

    def _changed(self, event) -> None:  # noqa: ANN001
        """After a rename or delete in the runs table: every list of runs, forecasts and
        projects read again, and no page left on a run that is gone."""
        runs = self.workbench.runs()
        training = [int(i) for i in runs["id"][runs["kind"] == "train"]] if len(runs) else []
        if self.launcher.run_id is not None and self.launcher.run_id not in training:
            self.launcher.run_id = training[-1] if training else None
        self.launcher.reload_runs()
        self.launcher.reload()
        self.monitor.compare = [r for r in self.monitor.compare if r in training]
        self.monitor.reload_runs()
        self.episodes.reload()
        self.explorer.reload()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown("# HydroRL workbench"), self.tabs, sizing_mode="stretch_width"
        )
