"""A component to browse systems and forecasts: tables of the cascade, price and inflow plots."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import pandas as pd
import panel as pn
import param

from hydrorl.errors import NotFoundError
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.system import HydroSystem
from hydrorl.ui.text import html_text
from hydrorl.workbench import ForecastInfo


def daily_means(data: pd.DataFrame) -> pd.DataFrame:
    """Daily means of price and inflow per scenario, from a long forecast frame."""
    if data.empty:
        return data
    grouped = data.set_index("time").groupby("scenario")[["price", "inflow"]]
    return grouped.resample("D").mean().reset_index()


def forecast_plot(daily: pd.DataFrame, title: str = "") -> hv.Layout:
    """Price over inflow, one curve per scenario."""
    # The key right of the plot, never over the lines (the width grows by the key's).
    opts = {"width": 860, "height": 230, "show_grid": True, "legend_position": "right"}
    if daily.empty:
        empty = hv.Curve([], "time", "value")
        return (empty + empty).cols(1)
    price = hv.Curve(daily, "time", ["price", "scenario"]).groupby("scenario").overlay()
    inflow = hv.Curve(daily, "time", ["inflow", "scenario"]).groupby("scenario").overlay()
    hover = {"tools": ["hover"]}
    return (
        price.map(lambda c: c.opts(**hover), hv.Curve).opts(
            ylabel="price (EUR/MWh)", title=title, **opts
        )
        + inflow.map(lambda c: c.opts(**hover), hv.Curve).opts(ylabel="inflow (m³/s)", **opts)
    ).cols(1)


def cascade_svg(system: HydroSystem) -> str:
    """The cascade as a static SVG: reservoirs left to right by depth, stations as arrows."""
    order = system.topological_order()
    depth = dict.fromkeys(order, 0)
    for name in order:
        for s in system.stations_from(name):
            if s.downstream is not None:
                depth[s.downstream] = max(depth[s.downstream], depth[name] + 1)
    column: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for name in [*order, "sea"]:
        d = max(depth.values()) + 1 if name == "sea" else depth[name]
        place[name] = (40 + 230 * d, 30 + 70 * column.get(d, 0))
        column[d] = column.get(d, 0) + 1
    width = max(x for x, _ in place.values()) + 170
    height = max(y for _, y in place.values()) + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="10" refY="4" '
        'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>',
    ]
    for s in system.power_stations:
        (x1, y1), (x2, y2) = place[s.upstream], place[s.downstream or "sea"]
        parts.append(
            f'<line x1="{x1 + 130}" y1="{y1 + 18}" x2="{x2}" y2="{y2 + 18}" '
            'stroke="#555" stroke-width="2" marker-end="url(#arrow)"/>'
        )
        parts.append(
            f'<text x="{(x1 + 130 + x2) / 2}" y="{(y1 + y2) / 2 + 10}" '
            f'text-anchor="middle">{html_text(s.name)}</text>'
        )
        parts.append(
            f'<text x="{(x1 + 130 + x2) / 2}" y="{(y1 + y2) / 2 + 40}" fill="#777" '
            f'text-anchor="middle">{s.max_discharge_m3s:g} m³/s</text>'
        )
    for name, (x, y) in place.items():
        fill = "#dde8f7" if name != "sea" else "#eeeeee"
        parts.append(
            f'<rect x="{x}" y="{y}" width="130" height="36" rx="8" fill="{fill}" stroke="#3b7dd8"/>'
        )
        parts.append(
            f'<text x="{x + 65}" y="{y + 22}" text-anchor="middle">{html_text(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(frame: pd.DataFrame) -> pn.pane.DataFrame:
    # A plain HTML table: it needs no JavaScript or CSS from the web, so it shows in Voila too.
    return pn.pane.DataFrame(frame.fillna("(sea)"), index=False, sizing_mode="stretch_width")


class ForecastExplorer(pn.viewable.Viewer):
    """Pick a system, a forecast and scenarios; see the cascade and the daily price and inflow."""

    system = param.Selector(objects=[], doc="Hydro system")  # type: ignore[var-annotated]
    forecast = param.Selector(objects=[], doc="Forecast of the system")  # type: ignore[var-annotated]
    scenarios = param.ListSelector(default=[], objects=[], doc="Scenarios to plot")

    def __init__(
        self,
        workbench: WorkbenchVerbs,
        forecast: str | ForecastInfo | None = None,
        system: str | None = None,
        **params: object,
    ) -> None:
        """``forecast``: the one to show first (a name, or what ``wb.forecast(...)`` or
        ``wb.setup_demo()["forecast"]`` returned: then on its system); default the first
        forecast of the first system."""
        self.workbench = workbench
        super().__init__(**params)
        if isinstance(forecast, ForecastInfo):
            system, forecast = system or forecast.system, forecast.name
        systems = list(workbench.systems()["name"])
        self.param.system.objects = systems
        if system is not None and system not in systems:
            raise NotFoundError(f"no hydro system {system!r}")
        if systems and self.system is None:
            self.system = system or systems[0]
        self._on_system()
        if forecast is not None:
            if forecast not in self.param.forecast.objects:
                raise NotFoundError(f"no forecast {forecast!r} of system {self.system!r}")
            self.forecast = forecast

    def reload(self) -> None:
        """Read the systems and forecasts again (after a rename or delete), keeping the choice
        where it is still there."""
        systems = list(self.workbench.systems()["name"])
        self.param.system.objects = systems
        if self.system not in systems:
            self.system = systems[0] if systems else None  # (its watcher reads the forecasts)
            return
        forecast = self.forecast
        names = list(self.workbench.forecasts(self.system)["name"])
        self.param.forecast.objects = names
        if forecast in names:
            return
        self.forecast = names[0] if names else None

    @param.depends("system", watch=True)
    def _on_system(self) -> None:
        names = [] if self.system is None else list(self.workbench.forecasts(self.system)["name"])
        self.param.forecast.objects = names
        self.forecast = names[0] if names else None
        self._on_forecast()

    @param.depends("forecast", watch=True)
    def _on_forecast(self) -> None:
        names: list[str] = []
        if self.forecast is not None:
            names = list(self.workbench.forecast(self.forecast, self.system).scenario_names)
        # MultiChoice shows its labels as HTML, and scenario names come from the file.
        self.param.scenarios.objects = {html_text(n): n for n in names}
        self.scenarios = names[:3]

    @param.depends("system")
    def cascade(self) -> pn.pane.SVG:
        if self.system is None:
            return pn.pane.SVG(None)
        return pn.pane.SVG(cascade_svg(self.workbench.system(self.system)))

    @param.depends("system")
    def reservoirs(self) -> pn.pane.DataFrame:
        frame = pd.DataFrame() if self.system is None else self.workbench.reservoirs(self.system)
        return _table(frame)

    @param.depends("system")
    def power_stations(self) -> pn.pane.DataFrame:
        frame = (
            pd.DataFrame() if self.system is None else self.workbench.power_stations(self.system)
        )
        return _table(frame)

    def data(self) -> pd.DataFrame:
        """The selected scenarios of the selected forecast, long format."""
        if self.forecast is None or not self.scenarios:
            return pd.DataFrame(columns=["time", "scenario", "price", "inflow"])
        return self.workbench.forecast_data(self.forecast, list(self.scenarios), self.system)

    @param.depends("forecast", "scenarios")
    def plot(self) -> pn.pane.HoloViews:
        return pn.pane.HoloViews(forecast_plot(daily_means(self.data()), f"{self.forecast or ''}"))

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Param(
            self.param,
            widgets={"scenarios": pn.widgets.MultiChoice},
            show_name=False,
            width=300,
        )
        return pn.Row(
            controls,
            pn.Column(
                pn.pane.Markdown("### Cascade"),
                self.cascade,
                pn.pane.Markdown("### Reservoirs"),
                self.reservoirs,
                pn.pane.Markdown("### Power stations"),
                self.power_stations,
                pn.pane.Markdown("### Forecast (daily means)"),
                self.plot,
                sizing_mode="stretch_width",
            ),
        )
