"""Browse the episodes of an evaluation run: a table, then one scenario's trajectories.

What a scheduler reads at a glance: one small panel per reservoir (its volume between its
limits) and per power station (its discharge, and the spill of the reservoir it draws
from), then the price, the inflow and the revenue per day, all on the episode's own time
range, with linked time axes.  Every policy keeps one colour and one dash in every panel
(:data:`POLICIES`); one key above the panels names them, so no legend covers any data, and
hovering a line names its series, time and value.
"""

from __future__ import annotations

import dataclasses
import io
import re

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import NumeralTickFormatter

from hydrorl.errors import HydroRLError
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.system import HydroSystem
from hydrorl.ui.text import alert, html_text, text_pane
from hydrorl.ui.width import WidthProbe


@dataclasses.dataclass(frozen=True)
class Policy:
    """How one policy is drawn in every panel: its name, colour and dash."""

    label: str
    color: str
    dash: str = "solid"


# Okabe-Ito colours (distinct for colour-blind readers), and a dash each for greyscale prints.
POLICIES = {
    "agent": Policy("Agent", "#0072B2"),
    "bound": Policy("Bound (perfect foresight)", "#009E73", "dashed"),
    "benchmark": Policy("SDP benchmark", "#E69F00", "dashdot"),
    "planner": Policy("Forecast planner", "#CC79A7", "dotted"),
}
SPILL = Policy("Agent spill (of the reservoir above)", "#0072B2", "dotted")
LIMITS = Policy("Reservoir limits", "#999999", "dotted")
NEUTRAL = "#444444"  # price and inflow: the same for every policy

#: A stored series' quantity: what it is called on the page and its unit.
QUANTITIES = {
    "volume_mm3": ("volume", "Mm³"),
    "discharge_m3s": ("discharge", "m³/s"),
    "spill_m3s": ("spill", "m³/s"),
    "generation_mwh": ("generation", "MWh"),
    "price_eur_mwh": ("price", "EUR/MWh"),
    "inflow_m3s": ("inflow", "m³/s"),
    "revenue_eur": ("revenue", "EUR"),
    "reward_eur": ("reward", "EUR"),
}
MAX_POINTS = 2000  # more steps than this are drawn as daily means (the CSV keeps them all)
# Over a longer episode, discharge and spill are drawn as daily means: an hour-by-hour
# on/off schedule of three policies on one panel reads as a solid block.
FLOWS_DAILY_FROM = pd.Timedelta(days=14)
FLOWS = ("discharge_m3s", "spill_m3s")
PANEL_HEIGHT = 190
PANEL_MIN_WIDTH = 260  # narrower, a panel's frame is too small to read
COLUMNS = 3  # at most: one per reservoir, each station's panel under its reservoir's


@dataclasses.dataclass(frozen=True)
class SeriesName:
    """A stored series name: ``quantity``, ``quantity:part`` or ``policy:quantity:part``.

    ``part`` is a reservoir's or a station's name (which may hold colons of its own).
    """

    policy: str
    quantity: str
    part: str = ""

    @classmethod
    def parse(cls, column: str) -> SeriesName:
        head, _, rest = column.partition(":")
        if head in QUANTITIES:
            return cls("agent", head, rest)
        quantity, _, part = rest.partition(":")
        if head in POLICIES and quantity in QUANTITIES:
            return cls(head, quantity, part)
        return cls("agent", column)

    @property
    def unit(self) -> str:
        return QUANTITIES.get(self.quantity, ("", ""))[1]

    @property
    def label(self) -> str:
        """``Hoegfjell PS discharge (m³/s)``, ``Price (EUR/MWh)``."""
        if self.quantity not in QUANTITIES:
            return self.quantity
        what, unit = QUANTITIES[self.quantity]
        text = f"{self.part} {what}" if self.part else what.capitalize()
        return f"{text} ({unit})"


def episode_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """The episodes as users read them, in MEUR and %, with a ``mean`` row last.

    The mean row's shares are those of the mean values (the mean agent over the mean
    bound), so that the row reads as one average scenario.
    """
    if episodes.empty:
        return episodes
    mean = episodes[["total_eur", "bound_eur", "benchmark_eur", "planner_eur"]].mean()
    best = max(mean["benchmark_eur"], mean["planner_eur"])
    if np.isnan(mean["planner_eur"]):
        best = mean["benchmark_eur"]
    rows = pd.concat(
        [
            episodes.assign(agent=episodes["agent"].astype(object)),
            pd.DataFrame(
                [
                    {
                        "scenario": "mean",
                        "agent": "",
                        **mean,
                        "share_of_bound": mean["total_eur"] / mean["bound_eur"],
                        "vs_benchmark": mean["total_eur"] / mean["benchmark_eur"],
                        "vs_best_classical": mean["total_eur"] / best,
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    return pd.DataFrame(
        {
            "scenario": rows["scenario"],
            "agent": rows["agent"],
            "value (MEUR)": (rows["total_eur"] / 1e6).round(2),
            "bound (MEUR)": (rows["bound_eur"] / 1e6).round(2),
            "benchmark (MEUR)": (rows["benchmark_eur"] / 1e6).round(2),
            "planner (MEUR)": (rows["planner_eur"] / 1e6).round(2),
            "% of bound": (100 * rows["share_of_bound"]).round(1),
            "vs benchmark (%)": (100 * rows["vs_benchmark"]).round(1),
            "vs best classical (%)": (100 * rows["vs_best_classical"]).round(1),
        }
    )


def _formatters(table: pd.DataFrame) -> dict[str, object]:
    """Thousands separators and fixed decimals: never ``1.2e+05``."""
    return {
        c: ("{:,.2f}" if "MEUR" in c else "{:,.1f}").format
        for c in table.columns
        if "MEUR" in c or "%" in c
    }


def columns_for(width: int) -> int:
    """How many panels fit side by side in ``width`` pixels (each at least
    :data:`PANEL_MIN_WIDTH`, beside the pane's margins): :data:`COLUMNS` at most, and
    while the width is unknown (0)."""
    if width <= 0:
        return COLUMNS
    return max(1, min(COLUMNS, (width - 20) // PANEL_MIN_WIDTH))


def episode_plots(
    series: pd.DataFrame, system: HydroSystem | None = None, columns: int = COLUMNS
) -> hv.Layout:
    """Small multiples of one episode (see the module docstring) in at most ``columns``
    columns; ``system`` adds the reservoirs' limits and puts each station's panel under its
    reservoir's or, in fewer columns than reservoirs (a narrow page), right after it."""
    if series.empty:
        return hv.Layout([hv.Curve([], "time", "value")])
    names = {c: SeriesName.parse(c) for c in series.columns}
    step = series.index[1] - series.index[0] if len(series) > 1 else pd.Timedelta(hours=1)
    drawn = series if len(series) <= MAX_POINTS else series.resample("D").mean()
    xlim = (series.index[0], series.index[-1] + step)
    daily = len(series) * step > FLOWS_DAILY_FROM and step < pd.Timedelta(days=1)
    flows = series.resample("D").mean() if daily else drawn
    panels = _Panels(drawn, flows if daily else None, names, xlim)

    reservoirs = _parts(names, "volume_mm3")
    stations = _parts(names, "discharge_m3s")
    limits: dict[str, tuple[float, float]] = {}
    upstream: dict[str, str] = {}
    if system is not None:
        # Upstream first, and each station's panel in the row below its reservoir's.
        order = system.topological_order()
        reservoirs.sort(key=lambda r: order.index(r) if r in order else len(order))
        limits = {r.name: (r.min_volume_mm3, r.max_volume_mm3) for r in system.reservoirs}
        upstream = {s.name: s.upstream for s in system.power_stations}
        place = {r: i for i, r in enumerate(reservoirs)}
        stations.sort(key=lambda s: place.get(upstream.get(s, ""), len(place)))
    for name in reservoirs:
        panels.add("volume_mm3", name, limits=limits.get(name), owner=name)
    spilt: set[str] = set()
    for name in stations:
        spill = upstream.get(name)
        if spill is not None and spill not in spilt:  # with the first station it feeds
            spilt.add(spill)
            panels.add("discharge_m3s", name, spill=spill, owner=spill)
        else:
            panels.add("discharge_m3s", name, owner=spill)
    for name in _parts(names, "spill_m3s"):
        if name not in spilt and series[f"spill_m3s:{name}"].abs().max() > 0:
            panels.add("spill_m3s", name)
    for quantity in ("price_eur_mwh", "inflow_m3s"):
        if quantity in drawn.columns:
            panels.add(quantity, "")
    if "revenue_eur" in series.columns:
        daily = series["revenue_eur"].resample("D").sum() / 1e3
        panels.revenue(daily)
    shown = max(1, min(columns, COLUMNS, len(reservoirs) or 1))
    plots = panels.plots
    if shown < len(reservoirs):  # each reservoir with its stations, then the rest
        owned = list(zip(plots, panels.owners, strict=True))
        plots = [p for r in reservoirs for p, o in owned if o == r]
        plots += [p for p, o in owned if o not in reservoirs]
    return hv.Layout(plots).cols(shown)


def _parts(names: dict[str, SeriesName], quantity: str) -> list[str]:
    """The reservoirs or stations that have a ``quantity`` series, in stored order."""
    return list(dict.fromkeys(n.part for n in names.values() if n.quantity == quantity and n.part))


class _Panels:
    """Builds the panels: one y dimension each (no shared y axis), one shared time axis."""

    def __init__(
        self,
        data: pd.DataFrame,
        daily_flows: pd.DataFrame | None,
        names: dict[str, SeriesName],
        xlim: tuple[object, object],
    ) -> None:
        self.data, self.daily_flows, self.names, self.xlim = data, daily_flows, names, xlim
        self.plots: list[hv.Overlay] = []
        self.owners: list[str | None] = []  # the reservoir each panel belongs to, if any

    def _dimension(self) -> hv.Dimension:
        # A label of its own keeps HoloViews from sharing the y axis between panels; it is no
        # user text (it reaches the page in the ranges' tags), the axis shows ``ylabel``.
        i = len(self.plots)
        return hv.Dimension(f"y{i}", label=f"y{i}")

    def _curve(
        self, values: pd.Series, y: hv.Dimension, series: str, unit: str, style: Policy, fmt: str
    ) -> hv.Curve:
        frame = pd.DataFrame({"time": values.index, y.name: values.to_numpy(), "series": series})
        return hv.Curve(frame, "time", [y, "series"]).opts(
            color=style.color,
            line_dash=style.dash,
            line_width=2 if style.dash == "solid" else 1.6,
            tools=["hover"],
            hover_tooltips=[
                ("series", "@{series}"),
                ("time", "@{time}{%Y-%m-%d %H:%M}"),
                ("value", f"@{{{y.name}}}{{{fmt}}} {unit}"),
            ],
            hover_formatters={"@{time}": "datetime"},
        )

    def _finish(
        self, layers: list[hv.Element], title: str, owner: str | None = None, **opts: object
    ) -> None:
        self.owners.append(owner)
        self.plots.append(
            hv.Overlay(layers).opts(
                title=title,
                ylabel="",  # the unit is in the title: the narrow panels keep their width
                xlabel="",
                xticks=5,
                active_tools=["pan"],  # no wheel zoom: the wheel scrolls the page
                xlim=self.xlim,
                show_legend=False,
                show_grid=True,
                responsive=True,
                height=PANEL_HEIGHT,
                min_width=PANEL_MIN_WIDTH,
                **opts,
            )
        )

    def add(
        self,
        quantity: str,
        part: str,
        limits: tuple[float, float] | None = None,
        spill: str | None = None,
        owner: str | None = None,
    ) -> None:
        y = self._dimension()
        what = SeriesName("agent", quantity, part)
        shown = [(c, n) for c, n in self.names.items() if (n.quantity, n.part) == (quantity, part)]
        layers: list[hv.Element] = []
        fmt = "0,0.0"
        daily = quantity in FLOWS and self.daily_flows is not None
        data = self.daily_flows if daily and self.daily_flows is not None else self.data
        unit = f"{what.unit}, daily mean" if daily else what.unit
        if quantity in ("price_eur_mwh", "inflow_m3s"):
            column, _ = shown[0]
            neutral = Policy(what.label, NEUTRAL)
            layers.append(self._curve(data[column], y, what.label, unit, neutral, fmt))
        for policy, style in POLICIES.items():
            for column, name in shown:
                if name.policy == policy and quantity not in ("price_eur_mwh", "inflow_m3s"):
                    series = f"{style.label}: {what.label}"
                    layers.append(self._curve(data[column], y, series, unit, style, fmt))
        if spill is not None and f"spill_m3s:{spill}" in data.columns:
            label = f"Agent: {SeriesName('agent', 'spill_m3s', spill).label}"
            layers.append(self._curve(data[f"spill_m3s:{spill}"], y, label, unit, SPILL, fmt))
        title = f"{what.label[:-1]}, daily)" if daily else what.label
        opts: dict[str, object] = {}
        if limits is not None:
            low, high = limits
            for level in limits:
                layers.append(
                    hv.HLine(level).opts(color=LIMITS.color, line_dash=LIMITS.dash, line_width=1)
                )
            pad = 0.04 * (high - low or 1.0)
            opts["ylim"] = (low - pad, high + pad)
            title = f"{what.label}, {low:,.0f}–{high:,.0f}"
        elif quantity in ("discharge_m3s", "spill_m3s", "inflow_m3s"):
            opts["ylim"] = (0, None)
        self._finish(layers, title, owner, **opts)

    def revenue(self, daily_keur: pd.Series) -> None:
        y = self._dimension()
        label = f"{POLICIES['agent'].label}: revenue per day"
        curve = self._curve(daily_keur, y, label, "kEUR", POLICIES["agent"], "0,0")
        total = daily_keur.sum() / 1e3
        self._finish(
            [curve],
            f"Revenue (kEUR/day), {total:,.2f} MEUR",
            yformatter=NumeralTickFormatter(format="0,0"),
        )


def legend_html(series: pd.DataFrame, limits: bool = False) -> str:
    """The key of every panel: one line sample per policy drawn (outside the data)."""
    names = [SeriesName.parse(c) for c in series.columns]
    policies = {n.policy for n in names if n.quantity in ("volume_mm3", "discharge_m3s")}
    styles = [style for policy, style in POLICIES.items() if policy in policies]
    if any(n.quantity == "spill_m3s" for n in names):
        styles.append(SPILL)
    if limits:
        styles.append(LIMITS)
    dashes = {"solid": "solid", "dashed": "dashed", "dashdot": "dashed", "dotted": "dotted"}
    items = [  # (each sample with its label: a narrow page wraps between items only)
        f'<span style="white-space:nowrap"><span style="display:inline-block;width:28px;'
        f'margin:0 6px 3px 14px;border-top:3px {dashes[s.dash]} {s.color}"></span>'
        f"{html_text(s.label)}</span> "
        for s in styles
    ]
    return '<div class="hydrorl-episode-key">' + "".join(items) + "</div>"


def file_part(text: object, fallback: str) -> str:
    """``text`` as a piece of a file name, or ``fallback`` where it holds more than letters,
    digits, spaces, dots, dashes and underscores (a name of markup or a path)."""
    text = str(text).strip()
    if re.fullmatch(r"[A-Za-z0-9._ -]{1,80}", text) and not text.startswith("."):
        return text.replace(" ", "-")
    return fallback


def system_of_run(workbench: WorkbenchVerbs, run_id: int) -> HydroSystem | None:
    """The hydro system an evaluation run played (None where its names are ambiguous)."""
    try:
        info = workbench.run(run_id)
        forecasts = workbench.forecasts()
        projects = workbench.projects()
        systems = set(forecasts.loc[forecasts["name"] == info.forecast, "system"]) & set(
            projects.loc[projects["name"] == info.project, "system"]
        )
        return workbench.system(systems.pop()) if len(systems) == 1 else None
    except HydroRLError:
        return None


class EpisodeBrowser(pn.viewable.Viewer):
    """Pick an evaluation run and a scenario; compare the agent with the bound and the benchmark."""

    run_id = param.Selector(objects=[], doc="Evaluation run")
    scenario = param.Selector(objects=[], doc="Scenario")

    def __init__(self, workbench: WorkbenchVerbs, **params: object) -> None:
        self.workbench = workbench
        self.episodes = pd.DataFrame()
        self.series = pd.DataFrame()
        self.system: HydroSystem | None = None
        self._table = pn.pane.DataFrame(
            pd.DataFrame(),
            index=False,
            na_rep="–",
            sizing_mode="stretch_width",
            styles={"overflow-x": "auto"},  # a page narrower than the table scrolls the table
        )
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._key = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 5))
        self._plots = pn.pane.HoloViews(
            sizing_mode="stretch_width",
            linked_axes=False,  # the episode's own time range, not the forecasts' beside it
        )
        self.table_download = pn.widgets.FileDownload(
            callback=self._table_csv,
            filename="episodes.csv",
            label="Table as CSV",
            color="light",
            width=180,
        )
        self.series_download = pn.widgets.FileDownload(
            callback=self._series_csv,
            filename="episode.csv",
            label="Episode series as CSV",
            color="light",
            width=200,
        )
        self._status = pn.Column(sizing_mode="stretch_width")
        self._known: set[int] | None = None  # the evaluations seen at the last reload
        self._callback: pn.io.PeriodicCallback | None = None
        self._active = False  # the run shown still writes episodes
        self._drawn: int | None = None  # the episode the plots show
        self._width = WidthProbe()  # the room the page gives the panels: how many columns
        self._columns = COLUMNS
        self._width.param.watch(self._on_width, "px")
        super().__init__(**params)
        self.reload()

    def reload(self) -> None:
        """Read the evaluation runs again: one started since the last look is shown (its
        episodes appear as they finish); a deleted one leaves the page."""
        runs = self.workbench.runs()
        evaluations = runs[runs["kind"] == "evaluate"] if len(runs) else runs
        ids = [int(i) for i in evaluations["id"]] if len(evaluations) else []
        new = [] if self._known is None else [i for i in ids if i not in self._known]
        self._known = set(ids)
        self.param.run_id.objects = ids
        if ids and (new or self.run_id not in ids):
            self.run_id = (new or ids)[-1]
        elif not ids and self.run_id is not None:  # its run was deleted
            self.run_id = None
            self.episodes, self.series = pd.DataFrame(), pd.DataFrame()
            self._table.object = pd.DataFrame()
            self._summary.object = self._key.object = ""
            self._plots.object, self._drawn = None, None
        self._show_status()

    def refresh(self) -> None:
        """The periodic look while shown: new evaluations, and the episodes of the one shown
        as they are written; errors from the database are shown, not raised."""
        try:
            running = self._active
            self.reload()
            if (running or self._active) and self.run_id is not None:
                self._on_run()  # (once more after it ended: its last episodes)
        except HydroRLError as e:
            self._status.objects = [alert(f"Could not read the evaluations: {e}")]

    def start(self) -> None:
        """Look again every two seconds while shown."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=2000)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def _show_status(self) -> None:
        """What to do first, or how far the evaluation shown is (and why it failed)."""
        if self.run_id is None:
            self._active = False
            self._status.objects = [
                text_pane(
                    "No evaluation yet. In the <strong>Train</strong> tab, pick a run and press "
                    "<strong>Evaluate best agent</strong> (or call <code>wb.evaluate(run)</code>): "
                    "its episodes appear here as they finish, beside the perfect-foresight "
                    "bound, the SDP benchmark and the forecast planner."
                )
            ]
            return
        info = self.workbench.run(self.run_id)
        self._active = not info.done
        if info.status == "completed":
            self._status.objects = []
        elif info.status == "failed":
            said = f"Evaluation {info.id} failed: {info.status_reason or ''}"
            self._status.objects = [alert(f"{said}\n\n{info.error}" if info.error else said)]
        else:
            reason = f": {html_text(info.status_reason)}" if info.status_reason else ""
            self._status.objects = [
                text_pane(
                    f"Evaluation {info.id} <strong>{html_text(info.status)}</strong>{reason}. "
                    "Its episodes appear below as they finish."
                )
            ]

    @param.depends("run_id", watch=True, on_init=True)
    def _on_run(self) -> None:
        if self.run_id is None:
            return
        self._show_status()
        episodes = self.workbench.episodes(self.run_id)
        if (
            len(episodes) == len(self.episodes)
            and len(episodes)
            and episodes["id"].tolist() == self.episodes["id"].tolist()
        ):
            return  # nothing new (a look while it runs)
        self.episodes = episodes
        self.system = system_of_run(self.workbench, self.run_id)
        table = episode_table(self.episodes)
        self._table.formatters = _formatters(table)
        self._table.object = table
        self._table.visible = not self.episodes.empty  # (not a header alone while none is in)
        self.table_download.filename = f"evaluation-{self.run_id}-episodes.csv"
        names = list(self.episodes["scenario"])
        self.param.scenario.objects = names
        if self.scenario in names:
            self._on_scenario()  # another run's episode of the same name
        else:
            self.scenario = names[0] if names else None

    @param.depends("scenario", watch=True)
    def _on_scenario(self) -> None:
        if self.scenario is None or self.episodes.empty:
            return
        row = self.episodes[self.episodes["scenario"] == self.scenario].iloc[0]
        if int(row["id"]) == self._drawn:
            return  # drawn already (new episodes of a running evaluation came in)
        self._drawn = int(row["id"])
        self.series = self.workbench.episode_series(int(row["id"]))
        number = list(self.episodes["scenario"]).index(self.scenario) + 1
        scenario = file_part(self.scenario, f"scenario-{number}")
        self.series_download.filename = f"evaluation-{self.run_id}-{scenario}-series.csv"
        self._summary.object = _summary(row)
        self._key.object = legend_html(self.series, limits=self.system is not None)
        self._plots.object = episode_plots(self.series, self.system, self._columns)

    def _on_width(self, event: param.parameterized.Event) -> None:
        """The page laid the browser out anew: draw the panels again where fewer or more
        columns fit (not at every pixel)."""
        columns = columns_for(event.new)
        if columns == self._columns:
            return
        self._columns = columns
        if self._drawn is not None and not self.series.empty:
            self._plots.object = episode_plots(self.series, self.system, columns)

    def _table_csv(self) -> io.StringIO:
        return io.StringIO(episode_table(self.episodes).to_csv(index=False))

    def _series_csv(self) -> io.StringIO:
        """Every step of the episode, as stored (one column per series, units in the names)."""
        return io.StringIO(self.series.to_csv(date_format="%Y-%m-%d %H:%M"))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self._width,
            pn.FlexBox(  # wraps on a narrow page
                pn.widgets.Select.from_param(self.param.run_id, name="Evaluation run", width=220),
                pn.widgets.Select.from_param(self.param.scenario, width=220),
                pn.Column(pn.Spacer(height=18), self.table_download),
                pn.Column(pn.Spacer(height=18), self.series_download),
            ),
            self._status,
            self._table,
            self._summary,
            self._key,
            self._plots,
            sizing_mode="stretch_width",
        )


def _summary(row: pd.Series) -> str:
    """One line on the chosen episode: its value against the bound and the classical policies."""
    meur = "{:,.2f} MEUR".format
    parts = [
        f"<strong>{html_text(row['scenario'])}</strong>, agent {html_text(row['agent'])}: "
        f"{meur(row['total_eur'] / 1e6)}",
        f"{100 * row['share_of_bound']:.1f} % of the bound ({meur(row['bound_eur'] / 1e6)})",
        f"{100 * (row['vs_benchmark'] - 1):+.1f} % against the SDP benchmark "
        f"({meur(row['benchmark_eur'] / 1e6)})",
    ]
    if not np.isnan(row["planner_eur"]):
        parts.append(f"forecast planner {meur(row['planner_eur'] / 1e6)}")
    return text_pane(" · ".join(parts)).object
