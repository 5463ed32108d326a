"""A component to browse systems and forecasts: tables of the cascade, price and inflow plots."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import pandas as pd
import panel as pn
import param

from hydrorl.system import HydroSystem
from hydrorl.workbench import Workbench


def daily_means(data: pd.DataFrame) -> pd.DataFrame:
    """Daily means of price and inflow per scenario, from a long forecast frame."""
    if data.empty:
        return data
    grouped = data.set_index("time").groupby("scenario")[["price", "inflow"]]
    return grouped.resample("D").mean().reset_index()


def forecast_plot(daily: pd.DataFrame, title: str = "") -> hv.Layout:
    """Price over inflow, one curve per scenario."""
    opts = {"width": 760, "height": 230, "show_grid": True}
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


def cascade_graph(system: HydroSystem) -> hv.Overlay:
    """The cascade as a drawing: reservoirs (and the sea) as nodes, stations as arrows."""
    order = system.topological_order()
    depth = dict.fromkeys(order, 0)
    for name in order:
        for s in system.stations_from(name):
            if s.downstream is not None:
                depth[s.downstream] = max(depth[s.downstream], depth[name] + 1)
    sea_depth = max(depth.values()) + 1
    names = [*order, "the sea"]
    rows: dict[int, int] = {}
    xs, ys = [], []
    for name in names:
        d = sea_depth if name == "the sea" else depth[name]
        xs.append(float(d))
        ys.append(-float(rows.get(d, 0)))
        rows[d] = rows.get(d, 0) + 1
    index = {n: i for i, n in enumerate(names)}
    nodes = hv.Nodes((xs, ys, list(range(len(names))), names), vdims="name")
    edges = [
        (index[s.upstream], index[s.downstream or "the sea"], s.name) for s in system.power_stations
    ]
    graph = hv.Graph((edges, nodes), vdims="station").opts(
        directed=True,
        arrowhead_length=0.04,
        node_size=28,
        node_color="#3b7dd8",
        edge_line_width=3,
        tools=["hover"],
        xaxis=None,
        yaxis=None,
        height=220,
        responsive=True,
        padding=0.3,
    )
    labels = hv.Labels((xs, ys, names), ["x", "y"], "name").opts(
        yoffset=-0.25, text_font_size="10pt"
    )
    mid = [((xs[a] + xs[b]) / 2, (ys[a] + ys[b]) / 2 + 0.12, n) for a, b, n in edges]
    stations = hv.Labels(mid, ["x", "y"], "station").opts(text_font_size="9pt", text_color="grey")
    return (graph * labels * stations).opts(
        title="Cascade: stations draw from a reservoir and release into the next"
    )


def _table(frame: pd.DataFrame) -> pn.pane.DataFrame:
    # A plain HTML table: it needs no JavaScript or CSS from the web, so it shows in Voila too.
    return pn.pane.DataFrame(frame.fillna("(sea)"), index=False, sizing_mode="stretch_width")


class ForecastExplorer(pn.viewable.Viewer):
    """Pick a system, a forecast and scenarios; see the cascade and the daily price and inflow."""

    system = param.Selector(objects=[], doc="Hydro system")  # type: ignore[var-annotated]
    forecast = param.Selector(objects=[], doc="Forecast of the system")  # type: ignore[var-annotated]
    scenarios = param.ListSelector(default=[], objects=[], doc="Scenarios to plot")

    def __init__(self, workbench: Workbench, **params: object) -> None:
        self.workbench = workbench
        super().__init__(**params)
        systems = list(workbench.systems()["name"])
        self.param.system.objects = systems
        if systems and self.system is None:
            self.system = systems[0]
        self._on_system()

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
        self.param.scenarios.objects = names
        self.scenarios = names[:3]

    @param.depends("system")
    def cascade(self) -> pn.pane.HoloViews:
        if self.system is None:
            return pn.pane.HoloViews(None)
        return pn.pane.HoloViews(
            cascade_graph(self.workbench.system(self.system)), sizing_mode="stretch_width"
        )

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
