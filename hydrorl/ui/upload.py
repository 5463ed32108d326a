"""Upload a forecast file: preview and validate first, then store it."""

from __future__ import annotations

import asyncio

import pandas as pd
import panel as pn
import param

from hydrorl.errors import HydroRLError
from hydrorl.forecast import ForecastTable
from hydrorl.ui.forecast_explorer import daily_means, forecast_plot
from hydrorl.ui.text import alert
from hydrorl.workbench import ForecastInfo, Workbench


def summary(table: ForecastTable) -> pd.DataFrame:
    """What a file holds, scenario by scenario."""
    return pd.DataFrame(
        {
            "scenario": table.scenario_names,
            "steps": table.n_steps,
            "start": table.start_time,
            "step": str(table.step),
            "mean price (EUR/MWh)": table.price_eur_mwh.mean(axis=1).round(2),
            "mean inflow (m³/s)": table.inflow_m3s.mean(axis=1).round(2),
        }
    )


class ForecastUpload(pn.viewable.Viewer):
    """Choose a CSV, Parquet or Excel file: see it, read what is wrong with it, or store it."""

    system = param.Selector(objects=[], doc="Hydro system the forecast is for")
    forecast_name = param.String(default="", doc="Forecast name (default: the file name)")
    message = param.String(default="")
    error = param.String(default="")

    def __init__(self, workbench: Workbench, **params: object) -> None:
        self.workbench = workbench
        self.table: ForecastTable | None = None
        self.file_input = pn.widgets.FileInput(accept=".csv,.parquet,.xlsx")
        self.commit_button = pn.widgets.Button(
            name="Store forecast", button_type="primary", disabled=True
        )
        self._preview = pn.Column(sizing_mode="stretch_width")
        super().__init__(**params)
        self.name_input = pn.widgets.TextInput(name="Forecast name", placeholder="the file name")
        self.name_input.link(self, value="forecast_name", bidirectional=True)
        self.param.system.objects = list(workbench.systems()["name"])
        if self.param.system.objects and self.system is None:
            self.system = self.param.system.objects[0]
        # Inside Voila the file's bytes and its name can arrive as two separate updates.
        self.file_input.param.watch(lambda *_: self.preview(), ["value", "filename"])
        self.progress = pn.indicators.Progress(
            active=True, visible=False, width=200, bar_color="primary"
        )
        self.commit_button.on_click(self._store)

    def preview(self, data: bytes | None = None, filename: str | None = None) -> None:
        """Read and validate the chosen file; show it or say what is wrong."""
        data = data if data is not None else self.file_input.value
        filename = filename or self.file_input.filename
        self.table, self.error, self.message = None, "", ""
        self.commit_button.disabled = True
        if not data or not filename:
            return  # (the file's name tells its format; it comes with or just after the bytes)
        try:
            self.table = self.workbench.read_forecast(data, name=filename)
        except HydroRLError as e:
            self.error = str(e)
            self._preview[:] = []
            return
        self.forecast_name = self.forecast_name or filename.rsplit(".", 1)[0]
        self._preview[:] = [
            pn.pane.DataFrame(summary(self.table), index=False, sizing_mode="stretch_width"),
            pn.pane.HoloViews(
                forecast_plot(daily_means(self.table.to_frame()), filename),
                sizing_mode="stretch_width",
                linked_axes=False,  # its own time range, not the stored forecasts'
            ),
        ]
        self.commit_button.disabled = False

    def commit(self) -> bool:
        """Store the previewed forecast in one transaction; say how it went."""
        return self._report(self._upload())

    async def _store(self, _event: object = None) -> bool:
        """The button: store in a worker thread while the page shows that it is busy."""
        if self.table is None:
            return False
        self.commit_button.disabled, self.progress.visible = True, True
        self.message = f"Storing {self.table.n_scenarios} scenarios x {self.table.n_steps} steps…"
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(None, self._upload)
        finally:
            self.progress.visible = False
        return self._report(outcome)

    def _upload(self) -> ForecastInfo | HydroRLError | None:
        if self.table is None:
            return None
        try:
            return self.workbench.upload_forecast(
                self.system, self.table, self.forecast_name or None
            )
        except HydroRLError as e:
            return e

    def _report(self, outcome: ForecastInfo | HydroRLError | None) -> bool:
        if outcome is None:
            return False
        if isinstance(outcome, HydroRLError):
            self.message, self.error = "", str(outcome)
            self.commit_button.disabled = False
            return False
        self.message = (
            f"Stored forecast {outcome.name!r}: {len(outcome.scenario_names)} scenarios x "
            f"{outcome.n_steps} steps."
        )
        self.commit_button.disabled = True
        return True

    @param.depends("message", "error")
    def _status(self) -> pn.viewable.Viewable:
        if self.error:
            return alert(self.error, "danger")  # it quotes the file's name and cells
        if self.message:
            return alert(self.message, "success")
        return pn.pane.Markdown("Columns: `time, scenario, price, inflow` (EUR/MWh, m³/s).")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.system),
                self.name_input,
            ),
            self.file_input,
            self._status,
            pn.Row(self.commit_button, self.progress),
            self._preview,
            sizing_mode="stretch_width",
        )
