"""Live training curves: streamed from TrainStepValues, only the points newer than the last seen.

A run that validates opens on its validation curve (the policy's true value as a share of
the perfect-foresight bound), with the bound and the classical policies on the same
episodes drawn as reference lines; any other curve the run records (imitation losses,
rewards, SB3's losses) is one choice away in the same selector.

The curves are drawn as TensorBoard draws them: one colour per agent, its raw points
faint and its smoothed line solid, smoothed by a debiased exponential moving average
(0: raw, towards 1: smoother; :mod:`hydrorl.ui.curves`), with the y range set by the bulk
of the points rather than a few outliers.  A long curve is drawn at plot resolution (a few
points per pixel column, :mod:`hydrorl.ui.downsample`); new points stream to the browser as
they come.
"""

from __future__ import annotations

import io
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.palettes import Category10, Dark2

from hydrorl.project import TrainingSettings
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.training import validation
from hydrorl.training.recipe import IMITATION_EPOCHS
from hydrorl.ui.agent_table import UNKNOWN, agent_table
from hydrorl.ui.curves import (
    DRAWN_COLUMNS,
    EPOCH_SERIES,
    EXPORTED_COLUMNS,
    SERIES_GROUPS,
    RunCurves,
    default_series,
    forecast_warning,
    series_groups,
    x_label,
    y_label,
)
from hydrorl.ui.downsample import minmax_indices, robust_range
from hydrorl.ui.text import html_text, text_block

#: Reference lines of the validation curve: the label shown, the curve its points are in.
REFERENCE_LINES = {
    "SDP benchmark": validation.REFERENCES["sdp"],
    "planner": validation.REFERENCES["planner"],
}
#: Lines at a level fixed by a curve's definition: label -> value.
LEVEL_LINES = {
    validation.SHARE: {"bound (perfect foresight)": 100.0},
    validation.VERSUS: {"best classical policy": 1.0},
}
_LINE_COLORS = {
    "SDP benchmark": "black",
    "planner": "firebrick",
    "bound (perfect foresight)": "#555555",
    "best classical policy": "black",
}
#: One colour per agent (its raw points and smoothed line), another set for compared runs.
AGENT_COLORS = tuple(Category10[10])
RUN_COLORS = tuple(Dark2[8])
#: X axes offered: label -> column of the drawn points.
X_AXES = {"step": "timestep", "relative wall time": "relative_time", "wall time": "wall_time"}
PLOT_HEIGHT = 420
_RAW_ALPHA = 0.25


def present_series(workbench: WorkbenchVerbs, run_id: int, names: list[str]) -> set[str]:
    """Those of ``names`` that the run has points of (a count each: cheap for a missing one)."""
    return {name for name in names if workbench.curve_points(run_id, name) > 0}


def _hover(series: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Tooltips of an agent's line: agent, where (step and time), raw and smoothed value."""
    step = "epoch" if series in EPOCH_SERIES else "step"
    tooltips = [
        ("agent", "@{agent}"),
        (step, "@{timestep}{0,0}"),
        ("wall time", "@{wall_time}{%F %T}"),
        ("relative (min)", "@{relative_time}{0,0.0}"),
        ("raw", "@{value}{%.5g}"),
        ("smoothed", "@{smooth}{%.5g}"),
    ]
    formatters = {"@{wall_time}": "datetime", "@{value}": "printf", "@{smooth}": "printf"}
    return tooltips, formatters


class TrainingMonitor(pn.viewable.Viewer):
    """Learning curves of a run's agents, refreshed from the database about once a second.

    Each refresh asks only for points newer than the last one seen and streams
    them into one HoloViews ``Buffer`` per agent, so the browser receives the new
    points, not the whole curve; once an agent's drawn points pass twice what the plot
    resolves, its curve is drawn again from a few points per pixel column.  It starts
    from the database, so a reloaded page shows the whole run again.  Other runs can be
    drawn beside it (``compare``) as the mean curve of their agents, with a warning when
    they learnt on another forecast.

    A run opens on its validation curve once it has one (until a curve is chosen),
    with the bound, the SDP benchmark and the planner as reference lines (each recorded
    one at the mean of the agents' latest points); validation points are exact scores,
    drawn unsmoothed.  Changing the run, the curve, the x axis, the smoothing or the
    compared runs draws everything again from the database.
    """

    run_id = param.Integer(default=None, allow_None=True, doc="Training run to watch")
    compare = param.ListSelector(default=[], objects=[], doc="Other runs drawn as their mean")
    series = param.String(default="episode_reward", doc="Curve to plot")
    x_axis = param.Selector(default="timestep", objects=X_AXES, doc="What the x axis counts")
    smoothing = param.Number(
        default=0.6, bounds=(0.0, 0.99), step=0.01, doc="TensorBoard's smoothing: 0 raw, 0.99 most"
    )
    period_ms = param.Integer(default=1000, bounds=(200, None))
    history_points = param.Integer(
        default=50_000, bounds=(1000, None), doc="Most points read when a long run is opened"
    )
    resolution = param.Integer(
        default=600, bounds=(10, None), doc="Pixel columns a long curve is drawn at"
    )

    def __init__(self, workbench: WorkbenchVerbs, **params: object) -> None:
        self.workbench = workbench
        self.curves = RunCurves(1, 0.0)
        self.buffers: dict[int, hv.streams.Buffer] = {}
        self.statuses: dict[int, str] = {}
        self.others: dict[int, RunCurves] = {}
        self.other_pipes: dict[int, hv.streams.Pipe] = {}
        self.band_stream = hv.streams.Pipe(data=self.curves.band())
        #: Recorded reference lines (label -> pipe of a line across the points' x).
        self.reference_pipes: dict[str, hv.streams.Pipe] = {}
        #: Lines at a level the curve's definition fixes (the bound: 100 % of itself).
        self.level_pipes: dict[str, hv.streams.Pipe] = {}
        self._reference_values: dict[str, dict[int, float]] = {}
        self._reference_marks: dict[str, dict[int, int]] = {}
        self._x_extent: dict[str, tuple[Any, Any]] = {}
        #: The y range drawn (None: Bokeh's own), and the figures it is set on.
        self.y_range: tuple[float, float] | None = None
        self._figures: list[Any] = []
        self._present: set[str] = set()
        self._chosen = "series" in params  # a curve asked for is kept; else the run's default
        self._defaulting = self._resetting = False
        self._received = 0
        self._forecasts: dict[int, str] = {}
        self._note = ""
        self._agents_pane = pn.pane.DataFrame(
            agent_table(pd.DataFrame()), index=False, na_rep=UNKNOWN, sizing_mode="stretch_width"
        )
        self._plot_pane = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=PLOT_HEIGHT)
        self._note_pane = pn.pane.Alert(
            "", alert_type="warning", visible=False, sizing_mode="stretch_width"
        )
        self._callback: pn.io.PeriodicCallback | None = None
        self._refreshes = 0
        self._options: dict[str, int] = {}
        super().__init__(**params)
        # (Select shows its options as plain text, and they are names of ours.)
        self.series_select = pn.widgets.Select(
            label="Curve", groups=series_groups(set(), self.series), value=self.series, width=260
        )
        self.series_select.param.watch(lambda e: setattr(self, "series", e.new), "value")
        self.smoothing_slider = pn.widgets.FloatSlider.from_param(
            self.param.smoothing, name="Smoothing", step=0.01, width=200
        )
        self.download = pn.widgets.FileDownload(
            callback=self._csv, filename="curves.csv", label="Export points as CSV"
        )
        self.reload_runs()
        self._open()

    @property
    def note(self) -> str:
        """The warning shown above the plot (another forecast, a compared run not drawn)."""
        return self._note if self._note_pane.visible else ""

    def reload_runs(self) -> None:
        """Offer every other training run for comparison."""
        runs = self.workbench.runs()
        runs = runs[runs["kind"] == "train"] if not runs.empty else runs
        self._forecasts = {int(r.id): str(r.forecast) for r in runs.itertuples()}
        options = {  # (MultiChoice shows its labels as HTML: the project's name is escaped)
            html_text(f"run {r.id} · {r.project} · {r.status}"): int(r.id)
            for r in runs.itertuples()
            if r.id != self.run_id
        }
        if options != self._options:  # (param's list proxy cannot be compared with a dict)
            self._options = options
            self.param.compare.objects = options
            self.compare = [c for c in self.compare if c in options.values()]

    def references(self) -> dict[str, float]:
        """The recorded reference lines: label -> mean of the agents' latest points."""
        return {
            label: float(np.mean(list(values.values())))
            for label, values in self._reference_values.items()
            if values
        }

    @param.depends("run_id", watch=True)
    def _on_run(self) -> None:
        self._chosen = False  # another run opens on its own default curve
        self._open()

    def _open(self) -> None:
        """Find the run's curves, show its default one (unless one was chosen), read it all."""
        self._present = set()
        if self.run_id is not None:
            names = [n for names in SERIES_GROUPS.values() for n in names]
            self._present = present_series(self.workbench, self.run_id, names)
        if not self._show_default():
            self._update_selector()
            self._reset()

    def _show_default(self) -> bool:
        """Switch to the run's default curve unless one was chosen; whether it switched."""
        default = default_series(self._present)
        if self._chosen or default == self.series:
            return False
        self._defaulting = True
        try:
            self.series = default  # (its watcher resets the plot)
        finally:
            self._defaulting = False
        return True

    def _update_selector(self) -> None:
        # (A validation point is an exact score: drawn unsmoothed, the slider does nothing.)
        self.smoothing_slider.disabled = self.series.startswith("validation/")
        groups = series_groups(self._present, self.series)
        if groups != self.series_select.groups:
            self.series_select.groups = groups
        self.series_select.value = self.series

    @param.depends("series", watch=True)
    def _on_series(self) -> None:
        if not self._defaulting:
            self._chosen = True
        self._update_selector()
        self._reset()

    @param.depends("x_axis", "smoothing", "resolution", watch=True)
    def _reset(self) -> None:
        """Draw everything again from the database: the run, its lines, the compared runs."""
        self._resetting = True
        try:
            self.reload_runs()  # (drops a compared run that is now the one watched)
        finally:
            self._resetting = False
        self.curves = self._new_curves(self.run_id)
        self.buffers, self.statuses = {}, {}
        self.band_stream = hv.streams.Pipe(data=self.curves.band())
        self.others = {r: self._new_curves(r) for r in self.compare}
        self.other_pipes = {r: hv.streams.Pipe(data=self.curves.band()) for r in self.compare}
        self.reference_pipes, self._reference_values, self._reference_marks = {}, {}, {}
        self.level_pipes, self._x_extent, self.y_range = {}, {}, None
        self.refresh()
        self._plot_pane.object = self._plot()

    @param.depends("compare", watch=True)
    def _on_compare(self) -> None:
        if self._resetting:
            return  # (the reset draws the compared runs itself)
        self.others = {r: self.others.get(r) or self._new_curves(r) for r in self.compare}
        self.other_pipes = {
            r: self.other_pipes.get(r) or hv.streams.Pipe(data=RunCurves(1, 0.0).band())
            for r in self.compare
        }
        self.refresh()
        self._plot_pane.object = self._plot()

    def _new_curves(self, run_id: int | None) -> RunCurves:
        weight = 0.0 if self.series.startswith("validation/") else self.smoothing
        if run_id is None:
            return RunCurves(1, weight)
        run = self.workbench.run(run_id)
        origin = run.started_at or run.created_at  # (naive UTC, as the points' wall time)
        settings = run.settings
        if self.series in EPOCH_SERIES:  # all the fitting epochs the imitation will do
            rounds = settings.get("imitation_rounds", TrainingSettings.imitation_rounds)
            return RunCurves(float((int(rounds) + 1) * IMITATION_EPOCHS), weight, origin=origin)
        return RunCurves(float(settings.get("timesteps") or 1), weight, origin=origin)

    def refresh(self) -> int:
        """Fetch points newer than the last seen; stream them; return how many came."""
        if self.run_id is None:
            self._update_note()
            return 0
        self._refreshes += 1
        if self._refreshes % 5 == 0:
            self.reload_runs()
            if self.run_id not in self._forecasts:  # deleted in another page or session
                self.run_id = None
                self._update_note()
                return 0
        if self._discover():
            return self._received  # it switched to the run's default curve and read it all
        new, every = self._read(self.run_id, self.curves)
        agents = self.workbench.agents(self.run_id)
        self._agents_pane.object = agent_table(agents)
        statuses = dict(zip(agents["index"].astype(int), agents["status"], strict=True))
        rebuild = statuses != self.statuses
        self.statuses = statuses
        for agent, frame in self.curves.add(new, every).items():
            self._extend_x(frame)
            rebuild = self._draw(agent, frame) or rebuild
        if len(new):
            self.band_stream.send(self.curves.band())
        moved = len(new) > 0
        if self.series == validation.SHARE:
            moved = self._read_references() or moved
        for run, curves in self.others.items():
            more, every = self._read(run, curves)
            if curves.add(more, every):
                self.other_pipes[run].send(curves.band(min_agents=1))
                moved = True
        if moved:
            rebuild = self._send_lines() or rebuild
            self._fit_y_range()
        if rebuild:
            self._plot_pane.object = self._plot()
        self._update_note()
        self._received = len(new)
        return len(new)

    def _draw(self, agent: int, frame: pd.DataFrame) -> bool:
        """Stream an agent's new points, or draw its curve again at plot resolution once its
        drawn points pass twice what the plot resolves; whether its buffer is new."""
        buffer = self.buffers.get(agent)
        if buffer is None:
            drawn = self._at_resolution(self.curves.history(agent))
            self.buffers[agent] = hv.streams.Buffer(drawn, length=10**9, index=False)
            return True
        if len(buffer.data) + len(frame) > 8 * self.resolution:
            buffer.clear()
            buffer.send(self._at_resolution(self.curves.history(agent)))
        else:
            buffer.send(frame)
        return False

    def _at_resolution(self, points: pd.DataFrame) -> pd.DataFrame:
        """The points that draw the curve as all of them would, ``resolution`` columns wide."""
        keep = minmax_indices(points["timestep"], points["value"], self.resolution)
        return points.iloc[keep].reset_index(drop=True) if len(keep) < len(points) else points

    def _discover(self) -> bool:
        """Look for curves the run did not have yet; whether it switched to its default one.

        Every fifth refresh looks for all of them (while an agent runs); the others only
        for the validation curve, while the run would open on it.
        """
        assert self.run_id is not None
        missing = [n for names in SERIES_GROUPS.values() for n in names if n not in self._present]
        running = not self.statuses or "running" in self.statuses.values()
        if self._refreshes % 5 == 0 and running:
            wanted = missing
        elif not self._chosen and validation.SHARE in missing:
            wanted = [validation.SHARE]
        else:
            return False
        found = present_series(self.workbench, self.run_id, wanted)
        if not found:
            return False
        self._present |= found
        if self._show_default():
            return True
        self._update_selector()
        return False

    def _read(self, run_id: int, curves: RunCurves) -> tuple[pd.DataFrame, int]:
        """Points newer than the last seen; a long history is first read one point in k."""
        every = 1
        if not curves.watermark:
            points = self.workbench.curve_points(run_id, self.series)
            every = max(1, -(-points // self.history_points))
        new = self.workbench.curves(run_id, self.series, after_id=curves.watermark, every=every)
        return new, every

    def _extend_x(self, frame: pd.DataFrame) -> None:
        """Widen the x extent the reference lines span to take in ``frame``'s points."""
        for column in ("timestep", "wall_time"):
            values = frame[column]
            lo, hi = values.min(), values.max()
            if column in self._x_extent:
                old_lo, old_hi = self._x_extent[column]
                lo, hi = min(lo, old_lo), max(hi, old_hi)
            self._x_extent[column] = (lo, hi)

    def _read_references(self) -> bool:
        """Read the reference curves' new points; whether any came."""
        assert self.run_id is not None
        came = False
        for label, name in REFERENCE_LINES.items():
            marks = self._reference_marks.get(label, {})
            points = self.workbench.curves(self.run_id, name, after_id=marks)
            self._reference_marks[label] = dict(points.attrs.get("watermark") or marks)
            if len(points):
                came = True
                self._extend_x(points)
                latest = points.groupby("agent")["value"].last()  # (oldest first)
                values = self._reference_values.setdefault(label, {})
                values.update({int(a): float(v) for a, v in latest.items()})
        return came

    def _levels(self) -> dict[str, float]:
        """Every horizontal line of the curve shown: the recorded references and fixed levels."""
        return {**LEVEL_LINES.get(self.series, {}), **self.references()}

    def _send_lines(self) -> bool:
        """Send the horizontal lines across the x extent of the points seen; whether one is new."""
        if "timestep" not in self._x_extent:
            return False
        new_line = False
        recorded = self.references()
        for label, value in self._levels().items():
            pipes = self.reference_pipes if label in recorded else self.level_pipes
            line = self._reference_line(value)
            if label in pipes:
                pipes[label].send(line)
            else:
                pipes[label] = hv.streams.Pipe(data=line)
                new_line = True
        return new_line

    def _reference_line(self, value: float) -> pd.DataFrame:
        """A line at ``value`` across the x extent of the points seen, in every x unit."""
        wall_time = pd.to_datetime(pd.Series(self._x_extent["wall_time"]))
        origin = self.curves.origin if self.curves.origin is not None else wall_time.iloc[0]
        return pd.DataFrame(
            {
                "timestep": list(self._x_extent["timestep"]),
                "wall_time": wall_time.tolist(),
                "relative_time": ((wall_time - origin).dt.total_seconds() / 60.0).tolist(),
                "value": [value, value],
            }
        )

    def _fit_y_range(self) -> None:
        """Set the y range from the bulk of the drawn points (1st to 99th percentile), every
        reference line in view."""
        drawn = [b.data[c] for b in self.buffers.values() for c in ("value", "smooth")]
        drawn += [p.data["mean"] for p in self.other_pipes.values() if len(p.data)]
        if self.x_axis == "timestep" and len(self.band_stream.data):
            band = self.band_stream.data
            drawn += [band["mean"] - band["std"], band["mean"] + band["std"]]
        self.y_range = robust_range(drawn, keep=self._levels().values())
        for figure in self._figures:
            self._set_y_range(figure)

    def _set_y_range(self, figure: Any) -> None:
        if self.y_range is not None:
            figure.y_range.start, figure.y_range.end = self.y_range

    def _figure_hook(self, plot: Any, element: Any) -> None:
        """Keep the robust y range on the figure (HoloViews sets its own at every update) and
        the legend beside the plot, where it hides no curve."""
        figure = plot.state
        if figure not in self._figures:
            self._figures.append(figure)
        self._set_y_range(figure)
        for legend in list(figure.legend):
            if legend in figure.center:
                figure.center.remove(legend)
                figure.add_layout(legend, "right")

    def _update_note(self) -> None:
        """Warn of what a comparison does not show: another forecast, a run with no points."""
        lines = []
        if self.compare and self.run_id is not None:
            warning = forecast_warning(self.run_id, self.compare, self._forecasts)
            if warning:
                lines.append(warning)
            if self.x_axis != "timestep":
                lines.append("Compared runs are drawn against timesteps only (x axis: step).")
            empty = [r for r in self.compare if r in self.others and not self.others[r].watermark]
            if empty:
                runs = ", ".join(f"run {r}" for r in empty)
                lines.append(f"No points of {self.series} yet in {runs}.")
        self._note = "\n".join(lines)
        if self._note_pane.visible != bool(lines) or self._note_pane.object != self._note_html():
            self._note_pane.object = self._note_html()
            self._note_pane.visible = bool(lines)

    def _note_html(self) -> str:
        return text_block(html_text(self._note))

    def _plot(self) -> hv.Overlay | hv.DynamicMap:
        self._figures = []
        x = self.x_axis
        exact = self.series.startswith("validation/")  # few points, each an exact score
        tooltips, formatters = _hover(self.series)
        layers = []
        if x == "timestep" and len(self.buffers) > 1:
            layers.append(
                hv.DynamicMap(
                    lambda data: hv.Spread(data, "timestep", ["mean", "std"], label="mean ± std"),
                    streams=[self.band_stream],
                ).opts(alpha=0.1, color="grey", line_alpha=0)
            )
        for agent, buffer in sorted(self.buffers.items()):
            status = self.statuses.get(agent, "running")
            label = f"agent {agent}" + ("" if status == "running" else f" ({status})")
            color = AGENT_COLORS[agent % len(AGENT_COLORS)]
            dash = "dashed" if status in ("failed", "stopped") else "solid"
            hover = [c for c in DRAWN_COLUMNS if c not in (x, "value")]
            # Raw and smoothed share the label: one legend entry, which hides both.
            if exact:
                raw = hv.DynamicMap(
                    lambda data, x=x, label=label: hv.Scatter(data, x, "value", label=label),
                    streams=[buffer],
                ).opts(size=6, color=color)
            else:
                raw = hv.DynamicMap(
                    lambda data, x=x, label=label: hv.Curve(data, x, "value", label=label),
                    streams=[buffer],
                ).opts(alpha=_RAW_ALPHA, line_width=1, color=color)
            line = hv.DynamicMap(
                lambda data, x=x, label=label, hover=hover: hv.Curve(
                    data, x, ["smooth", "value", *hover], label=label
                ),
                streams=[buffer],
            ).opts(
                line_width=2,
                line_dash=dash,
                color=color,
                tools=["hover"],
                hover_tooltips=tooltips,
                hover_formatters=formatters,
                hover_mode="vline",  # (every agent at the step under the mouse, as TensorBoard)
            )
            layers += [raw, line]
        lines = {**self.level_pipes, **self.reference_pipes}
        for label, pipe in lines.items():
            layers.append(
                hv.DynamicMap(
                    lambda data, x=x, label=label: hv.Curve(data, x, "value", label=label),
                    streams=[pipe],
                ).opts(
                    color=_LINE_COLORS.get(label, "black"),
                    line_dash="dashed" if label in self.level_pipes else "dotted",
                    line_width=2,
                    tools=["hover"],
                    hover_tooltips=[(label, "@{value}{%.4g}")],
                    hover_formatters={"@{value}": "printf"},
                )
            )
        if x == "timestep":
            for k, (run, pipe) in enumerate(sorted(self.other_pipes.items())):
                label = f"run {run} (mean)"
                if self._forecasts.get(run) != self._forecasts.get(self.run_id or -1):
                    label += f" · other forecast: {self._forecasts.get(run)}"
                layers.append(
                    hv.DynamicMap(
                        lambda data, label=label: hv.Curve(data, "timestep", "mean", label=label),
                        streams=[pipe],
                    ).opts(
                        line_width=3,
                        line_dash="dotdash",
                        color=RUN_COLORS[k % len(RUN_COLORS)],
                        tools=["hover"],
                        hover_tooltips=[
                            ("run", str(run)),
                            ("step", "@{timestep}{0,0}"),
                            ("mean of agents", "@{mean}{%.5g}"),
                        ],
                        hover_formatters={"@{mean}": "printf"},
                    )
                )
        # An overlay of three or more DynamicMaps drops its own options when drawn (HoloViews
        # 1.23): size, labels and hooks go on every layer, the legend is moved by the hook.
        common = {
            "xlabel": x_label(self.series, x),
            "ylabel": y_label(self.series),
            "responsive": True,
            "height": PLOT_HEIGHT,
            "show_grid": True,
            "hooks": [self._figure_hook],
        }
        if not layers:
            empty = hv.Curve(pd.DataFrame({x: [], "value": []}), x, "value")
            return hv.Overlay([empty.opts(**common)])
        # Collated here as HoloViews' plotting would (one DynamicMap of overlays, following
        # every layer's stream), without the warning it prints for each plot on the terminal.
        return hv.Overlay([layer.opts(**common) for layer in layers]).collate()

    def _csv(self) -> io.StringIO:
        """Every stored point of the run (not only those drawn), with its smoothed value."""
        points = pd.DataFrame(columns=["agent", *EXPORTED_COLUMNS])
        if self.run_id is not None:
            curves = RunCurves(1, self.curves.weight)
            frames = curves.add(self.workbench.curves(self.run_id, self.series))
            if frames:
                points = pd.concat(frames.values())
        return io.StringIO(points[["agent", *EXPORTED_COLUMNS]].to_csv(index=False))

    def start(self) -> None:
        """Refresh periodically (about once a second) while shown."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.period_ms)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self) -> pn.viewable.Viewable:
        self.start()
        controls = pn.FlexBox(  # wraps on a narrow page
            self.series_select,
            pn.widgets.Select.from_param(self.param.x_axis, name="X axis", width=170),
            self.smoothing_slider,
            pn.widgets.MultiChoice.from_param(
                self.param.compare, name="Compare with runs", width=320
            ),
            self.download,
        )
        return pn.Column(
            controls,
            self._note_pane,
            self._plot_pane,
            self._agents_pane,
            sizing_mode="stretch_width",
        )
