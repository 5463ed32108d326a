"""Upload a forecast file: preview and validate first, then store it."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io

import pandas as pd
import panel as pn
import param

from hydrorl.errors import HydroRLError
from hydrorl.forecast import ForecastTable
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.ui.forecast_explorer import daily_means, forecast_plot
from hydrorl.ui.text import alert
from hydrorl.workbench import ForecastInfo

EXAMPLE_DAYS = 14


def step_text(step: pd.Timedelta) -> str:
    """A time step as people write it: ``3 h``, ``1 day``, ``30 min``."""
    seconds = int(step.total_seconds())
    for size, one, many in ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min")):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {one if n == 1 else many}"
    return f"{seconds} s"


@functools.cache
def example_csv() -> str:
    """A small forecast in the format the upload expects: two weeks of two demo scenarios."""
    from hydrorl.demo import demo_forecast

    table = demo_forecast(seed=0, scenarios=2, years=1)
    steps = int(pd.Timedelta(days=EXAMPLE_DAYS) / table.step)
    short = dataclasses.replace(
        table, price_eur_mwh=table.price_eur_mwh[:, :steps], inflow_m3s=table.inflow_m3s[:, :steps]
    )
    return short.to_frame().to_csv(index=False, date_format="%Y-%m-%d %H:%M")


def summary(table: ForecastTable) -> pd.DataFrame:
    """What a file holds, scenario by scenario."""
    return pd.DataFrame(
        {
            "scenario": table.scenario_names,
            "steps": table.n_steps,
            "start": table.start_time,
            "step": step_text(table.step),
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

    def __init__(self, workbench: WorkbenchVerbs, **params: object) -> None:
        self.workbench = workbench
        self.table: ForecastTable | None = None
        self._file = ""  # the file whose name the name field follows
        self._suggested = ""  # the name filled in from it (a name typed over it is kept)
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
        self.example_download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(example_csv()),
            filename="example-forecast.csv",
            label="Example CSV",
            align="center",
            color="light",
            width=160,
        )

    def preview(self, data: bytes | None = None, filename: str | None = None) -> None:
        """Read and validate the chosen file; show it or say what is wrong."""
        data = data if data is not None else self.file_input.value
        filename = filename or self.file_input.filename
        self.table, self.error, self.message = None, "", ""
        self.commit_button.disabled = True
        if filename and filename != self._file:
            self._follow(filename)
        if not data or not filename:
            return  # (the file's name tells its format; it comes with or just after the bytes)
        try:
            self.table = self.workbench.read_forecast(data, name=filename)
        except HydroRLError as e:
            self.error = str(e)
            self._preview[:] = []
            return
        self._preview[:] = [
            pn.pane.DataFrame(summary(self.table), index=False, sizing_mode="stretch_width"),
            pn.pane.HoloViews(
                forecast_plot(daily_means(self.table.to_frame()), filename),
                sizing_mode="stretch_width",
                linked_axes=False,  # its own time range, not the stored forecasts'
            ),
        ]
        self.commit_button.disabled = False

    def _follow(self, filename: str) -> None:
        """The name field follows the newly chosen file, unless a name was typed over it."""
        self._file = filename
        if self.forecast_name in ("", self._suggested):
            self._suggested = self.forecast_name = filename.rsplit(".", 1)[0]

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
        return pn.pane.Markdown(
            "Columns: `time, scenario, price, inflow` (EUR/MWh, m³/s), one row per scenario "
            "and time step, as in the example file."
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.system),
                self.name_input,
            ),
            pn.Row(self.file_input, self.example_download),
            self._status,
            pn.Row(self.commit_button, self.progress),
            self._preview,
            sizing_mode="stretch_width",
        )
