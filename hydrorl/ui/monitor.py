"""Live training curves: streamed from TrainStepValues, only the points newer than the last seen.

A run that validates opens on its validation curve (the policy's true value as a share of
the perfect-foresight bound), with the classical policies on the same episodes drawn as
reference lines; its other curves (imitation losses, rewards, SB3's losses) are one
choice away in the same selector.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
from scipy.signal import lfilter

from hydrorl.project import TrainingSettings
from hydrorl.training import validation
from hydrorl.training.recipe import ACTOR_LOSS, ANCHOR_LOSS, CRITIC_LOSS, IMITATION_EPOCHS
from hydrorl.ui.text import html_text
from hydrorl.workbench import Workbench

_COLUMNS = ["timestep", "wall_time", "value", "smooth"]

#: The curves the selector offers, by group, in the order shown: HydroRL's own and SB3's
#: (its ``train/`` values, recorded without the prefix, for every algorithm offered).
SERIES_GROUPS: dict[str, tuple[str, ...]] = {
    "validation": (validation.SHARE, validation.VALUE, validation.VERSUS),
    "imitation": (ACTOR_LOSS, CRITIC_LOSS, ANCHOR_LOSS),
    "training": (
        "episode_reward",
        "episode_value_eur",
        "episode_revenue_eur",
        *("loss", "entropy_loss", "policy_gradient_loss", "value_loss", "policy_loss"),
        *("actor_loss", "critic_loss", "ent_coef", "ent_coef_loss", "approx_kl"),
        *("clip_fraction", "clip_range", "clip_range_vf", "explained_variance", "std"),
        *("learning_rate", "n_updates"),
    ),
}
#: Curves whose x counts fitting epochs of the imitation, not environment steps.
EPOCH_SERIES = frozenset({ACTOR_LOSS, CRITIC_LOSS})
#: Reference lines of the validation curve: the label shown, the curve its points are in.
REFERENCE_LINES = {
    "SDP benchmark": validation.REFERENCES["sdp"],
    "planner": validation.REFERENCES["planner"],
}
_REFERENCE_COLORS = {"SDP benchmark": "black", "planner": "firebrick"}


def present_series(workbench: Workbench, run_id: int, names: list[str]) -> set[str]:
    """Those of ``names`` that the run has points of (a count each: cheap for a missing one)."""
    return {name for name in names if workbench.curve_points(run_id, name) > 0}


def default_series(present: set[str]) -> str:
    """The curve a run opens on: its validation when it has one, else the episode reward."""
    return validation.SHARE if validation.SHARE in present else "episode_reward"


def series_groups(present: set[str], current: str) -> dict[str, list[str]]:
    """The selector's options by group: the curves the run has, the one shown, and the episode
    reward (every agent records it: a run just started has it soon)."""
    shown = present | {current, "episode_reward"}
    groups = {g: [n for n in names if n in shown] for g, names in SERIES_GROUPS.items()}
    known = {n for names in SERIES_GROUPS.values() for n in names}
    groups["training"] += sorted(shown - known)
    return {g: names for g, names in groups.items() if names}


def x_label(series: str, x_axis: str) -> str:
    if x_axis == "wall_time":
        return "wall time"
    return "fitting epoch" if series in EPOCH_SERIES else "timesteps"


def y_label(series: str) -> str:
    return "% of the bound" if series == validation.SHARE else series


def smooth(values: np.ndarray, start: float | None, alpha: float) -> np.ndarray:
    """Exponential moving average continuing from ``start`` (the last smoothed value)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    first = values[0] if start is None else start
    out, _ = lfilter([alpha], [1.0, alpha - 1.0], values, zi=[(1.0 - alpha) * first])
    return out


class RunCurves:
    """The smoothed curves of one run's agents, kept so that a refresh costs only the new points.

    Each agent's smoothed values are also summed into fixed timestep bins (the run's
    target split in ``bins``), so the mean ± std band across agents is computed from
    ``agents x bins`` numbers however many points are stored.
    """

    def __init__(self, horizon: float, alpha: float, bins: int = 60) -> None:
        self.alpha, self.bins = alpha, bins
        self.width = max(float(horizon), 1.0) / bins
        #: The last point id seen per agent (see ``Workbench.curves``: exact on every backend).
        self.watermark: dict[int, int] = {}
        self.last_smooth: dict[int, float] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.counts: dict[int, np.ndarray] = {}

    def add(self, new: pd.DataFrame, every: int = 1) -> dict[int, pd.DataFrame]:
        """Take points newer than the last seen; return them per agent with their smoothed value.

        ``every`` > 1 says the points are one in ``every`` of a long history: the
        smoothing weight is raised so that the curve keeps the same time constant.
        """
        alpha = 1.0 - (1.0 - self.alpha) ** every
        if new.empty:
            return {}
        self.watermark = dict(new.attrs.get("watermark") or self.watermark)
        for agent, last in new.groupby("agent")["id"].max().items():
            self.watermark[int(agent)] = max(int(last), self.watermark.get(int(agent), 0))
        out = {}
        for agent, points in new.groupby("agent"):
            agent = int(agent)
            values = points["value"].to_numpy(dtype=float)
            smoothed = smooth(values, self.last_smooth.get(agent), alpha)
            self.last_smooth[agent] = float(smoothed[-1])
            timesteps = points["timestep"].to_numpy(dtype=float)
            index = np.clip((timesteps // self.width).astype(int), 0, self.bins - 1)
            sums = self.sums.setdefault(agent, np.zeros(self.bins))
            counts = self.counts.setdefault(agent, np.zeros(self.bins))
            np.add.at(sums, index, smoothed)
            np.add.at(counts, index, 1)
            out[agent] = pd.DataFrame(
                {
                    "timestep": timesteps,
                    "wall_time": points["wall_time"].to_numpy(),
                    "value": values,
                    "smooth": smoothed,
                }
            )
        return out

    def band(self, min_agents: int = 2) -> pd.DataFrame:
        """Mean ± std across agents of their bin means, over the bins every agent has reached."""
        if len(self.sums) < min_agents:
            return pd.DataFrame(columns=["timestep", "mean", "std"])
        sums = np.array(list(self.sums.values()))
        counts = np.array(list(self.counts.values()))
        reached = (counts > 0).all(axis=0)
        means = sums[:, reached] / counts[:, reached]
        centres = (np.arange(self.bins)[reached] + 0.5) * self.width
        return pd.DataFrame({"timestep": centres, "mean": means.mean(0), "std": means.std(0)})


class TrainingMonitor(pn.viewable.Viewer):
    """Learning curves of a run's agents, refreshed from the database about once a second.

    Each refresh asks only for points newer than the last one seen and streams
    them into one HoloViews ``Buffer`` per agent, so the browser receives the new
    points, not the whole curve.  It starts from the database, so a reloaded page
    shows the whole run again.  Other runs can be drawn beside it (``compare``) as
    the mean curve of their agents.

    A run opens on its validation curve once it has one (until a curve is chosen),
    with the SDP benchmark and the planner as reference lines at the mean of each
    agent's latest reference point; validation points are exact scores, drawn
    unsmoothed.
    """

    run_id = param.Integer(default=None, allow_None=True, doc="Training run to watch")
    compare = param.ListSelector(default=[], objects=[], doc="Other runs drawn as their mean")
    series = param.String(default="episode_reward", doc="Curve to plot")
    x_axis = param.Selector(default="timestep", objects=["timestep", "wall_time"])
    smoothing = param.Number(default=0.1, bounds=(0.01, 1.0), doc="EMA weight of a new point")
    period_ms = param.Integer(default=1000, bounds=(200, None))
    history_points = param.Integer(
        default=50_000, bounds=(1000, None), doc="Most points read when a long run is opened"
    )

    def __init__(self, workbench: Workbench, **params: object) -> None:
        self.workbench = workbench
        self.curves = RunCurves(1, 0.1)
        self.buffers: dict[int, hv.streams.Buffer] = {}
        self.statuses: dict[int, str] = {}
        self.others: dict[int, RunCurves] = {}
        self.other_pipes: dict[int, hv.streams.Pipe] = {}
        self.band_stream = hv.streams.Pipe(data=self.curves.band())
        #: Reference lines drawn (label -> pipe of a two-point line across the points' x).
        self.reference_pipes: dict[str, hv.streams.Pipe] = {}
        self._reference_values: dict[str, dict[int, float]] = {}
        self._reference_marks: dict[str, dict[int, int]] = {}
        self._x_extent: dict[str, tuple[Any, Any]] = {}
        self._present: set[str] = set()
        self._chosen = "series" in params  # a curve asked for is kept; else the run's default
        self._defaulting = False
        self._received = 0
        self._agents_pane = pn.pane.DataFrame(
            pd.DataFrame(), index=False, sizing_mode="stretch_width"
        )
        self._plot_pane = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=350)
        self._callback: pn.io.PeriodicCallback | None = None
        self._refreshes = 0
        self._options: dict[str, int] = {}
        super().__init__(**params)
        # (Select shows its options as plain text, and they are names of ours.)
        self.series_select = pn.widgets.Select(
            label="Curve", groups=series_groups(set(), self.series), value=self.series, width=260
        )
        self.series_select.param.watch(lambda e: setattr(self, "series", e.new), "value")
        self.download = pn.widgets.FileDownload(
            callback=self._csv, filename="curves.csv", label="Export points as CSV"
        )
        self.reload_runs()
        self._open()

    def reload_runs(self) -> None:
        """Offer every other training run for comparison."""
        runs = self.workbench.runs()
        runs = runs[runs["kind"] == "train"] if not runs.empty else runs
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
        """The reference lines drawn: label -> mean of the agents' latest points (% of bound)."""
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

    @param.depends("x_axis", "smoothing", watch=True)
    def _reset(self) -> None:
        self.curves = self._new_curves(self.run_id)
        self.buffers, self.statuses = {}, {}
        self.others, self.other_pipes = {}, {}
        self.reference_pipes, self._reference_values, self._reference_marks = {}, {}, {}
        self._x_extent = {}
        self.reload_runs()
        self.refresh()
        self._plot_pane.object = self._plot()

    @param.depends("compare", watch=True)
    def _on_compare(self) -> None:
        self.others = {r: self.others.get(r) or self._new_curves(r) for r in self.compare}
        self.other_pipes = {
            r: self.other_pipes.get(r) or hv.streams.Pipe(data=RunCurves(1, 0.1).band())
            for r in self.compare
        }
        self.refresh()
        self._plot_pane.object = self._plot()

    def _new_curves(self, run_id: int | None) -> RunCurves:
        alpha = 1.0 if self.series.startswith("validation/") else self.smoothing
        if run_id is None:
            return RunCurves(1, alpha)
        settings = self.workbench.run(run_id).settings
        if self.series in EPOCH_SERIES:  # all the fitting epochs the imitation will do
            rounds = settings.get("imitation_rounds", TrainingSettings.imitation_rounds)
            return RunCurves(float((int(rounds) + 1) * IMITATION_EPOCHS), alpha)
        return RunCurves(float(settings.get("timesteps") or 1), alpha)

    def refresh(self) -> int:
        """Fetch points newer than the last seen; stream them; return how many came."""
        if self.run_id is None:
            return 0
        self._refreshes += 1
        if self._refreshes % 5 == 0:
            self.reload_runs()
        if self._discover():
            return self._received  # it switched to the run's default curve and read it all
        new, every = self._read(self.run_id, self.curves)
        agents = self.workbench.agents(self.run_id)
        self._agents_pane.object = self._agent_table(agents)
        statuses = dict(zip(agents["index"].astype(int), agents["status"], strict=True))
        rebuild = statuses != self.statuses
        self.statuses = statuses
        for agent, frame in self.curves.add(new, every).items():
            self._extend_x(frame)
            if agent in self.buffers:
                self.buffers[agent].send(frame)
            else:
                self.buffers[agent] = hv.streams.Buffer(frame, length=10**7, index=False)
                rebuild = True
        if len(new):
            self.band_stream.send(self.curves.band())
        if self.series == validation.SHARE:
            rebuild = self._read_references(moved=len(new) > 0) or rebuild
        for run, curves in self.others.items():
            more, every = self._read(run, curves)
            if curves.add(more, every):
                self.other_pipes[run].send(curves.band(min_agents=1))
        if rebuild:
            self._plot_pane.object = self._plot()
        self._received = len(new)
        return len(new)

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
            every = -(-self.workbench.curve_points(run_id, self.series) // self.history_points)
        new = self.workbench.curves(run_id, self.series, after_id=curves.watermark, every=every)
        return new, max(every, 1)

    def _extend_x(self, frame: pd.DataFrame) -> None:
        """Widen the x extent the reference lines span to take in ``frame``'s points."""
        for column in ("timestep", "wall_time"):
            values = frame[column]
            lo, hi = values.min(), values.max()
            if column in self._x_extent:
                old_lo, old_hi = self._x_extent[column]
                lo, hi = min(lo, old_lo), max(hi, old_hi)
            self._x_extent[column] = (lo, hi)

    def _read_references(self, moved: bool) -> bool:
        """Read new reference points and send the lines again if anything changed (the
        line spans the x of the points seen); whether a line is new."""
        assert self.run_id is not None
        for label, name in REFERENCE_LINES.items():
            marks = self._reference_marks.get(label, {})
            points = self.workbench.curves(self.run_id, name, after_id=marks)
            self._reference_marks[label] = dict(points.attrs.get("watermark") or marks)
            if len(points):
                moved = True
                self._extend_x(points)
                latest = points.groupby("agent")["value"].last()  # (oldest first)
                values = self._reference_values.setdefault(label, {})
                values.update({int(a): float(v) for a, v in latest.items()})
        if not moved:
            return False
        new_line = False
        for label, value in self.references().items():
            line = self._reference_line(value)
            if label in self.reference_pipes:
                self.reference_pipes[label].send(line)
            else:
                self.reference_pipes[label] = hv.streams.Pipe(data=line)
                new_line = True
        return new_line

    def _reference_line(self, value: float) -> pd.DataFrame:
        """A line at ``value`` across the x extent of the points seen, in both x units."""
        return pd.DataFrame(
            {
                "timestep": list(self._x_extent["timestep"]),
                "wall_time": list(self._x_extent["wall_time"]),
                "value": [value, value],
            }
        )

    def _plot(self) -> hv.Overlay:
        x = self.x_axis
        exact = self.series.startswith("validation/")  # few points, each an exact score
        layers = []
        for agent, buffer in sorted(self.buffers.items()):
            status = self.statuses.get(agent, "running")
            label = f"agent {agent}" + ("" if status == "running" else f" ({status})")
            dash = "dashed" if status in ("failed", "stopped") else "solid"
            if exact:
                raw = hv.DynamicMap(
                    lambda data, x=x: hv.Scatter(data, x, "value"), streams=[buffer]
                ).opts(size=6)
            else:
                raw = hv.DynamicMap(
                    lambda data, x=x: hv.Curve(data, x, "value"), streams=[buffer]
                ).opts(alpha=0.25, line_width=1)
            line = hv.DynamicMap(
                lambda data, x=x, label=label: hv.Curve(data, x, "smooth", label=label),
                streams=[buffer],
            ).opts(line_width=2, line_dash=dash, tools=["hover"])
            layers += [raw, line]
        for label, pipe in self.reference_pipes.items():
            layers.append(
                hv.DynamicMap(
                    lambda data, x=x, label=label: hv.Curve(data, x, "value", label=label),
                    streams=[pipe],
                ).opts(
                    color=_REFERENCE_COLORS[label],
                    line_dash="dotted",
                    line_width=2,
                    tools=["hover"],
                )  # fmt: skip
            )
        if x == "timestep":
            layers.insert(
                0,
                hv.DynamicMap(
                    lambda data: hv.Spread(data, "timestep", ["mean", "std"], label="mean ± std"),
                    streams=[self.band_stream],
                ).opts(alpha=0.15, color="grey"),
            )
            for run, pipe in sorted(self.other_pipes.items()):
                layers.append(
                    hv.DynamicMap(
                        lambda data, run=run: hv.Curve(
                            data, "timestep", "mean", label=f"run {run} (mean)"
                        ),
                        streams=[pipe],
                    ).opts(line_width=3, line_dash="dotdash")
                )
        # (An overlay of DynamicMaps takes its axis labels from its layers, not its own opts.)
        labels = {"xlabel": x_label(self.series, x), "ylabel": y_label(self.series)}
        if not layers:
            return hv.Overlay([hv.Curve([], x, self.series).opts(**labels)])
        return hv.Overlay([layer.opts(**labels) for layer in layers]).opts(
            responsive=True, min_height=350, legend_position="right"
        )

    def _agent_table(self, agents: pd.DataFrame) -> pd.DataFrame:
        if agents.empty:
            return agents
        now = pd.Timestamp.now("UTC").tz_localize(None)
        elapsed = (now - pd.to_datetime(agents["started_at"])).dt.total_seconds()
        done = pd.to_numeric(agents["timesteps_done"]).astype(float)
        rate = done / elapsed.where(elapsed > 0)
        left = (pd.to_numeric(agents["timesteps"]).astype(float) - done).clip(lower=0)
        eta = (left / rate.where(rate > 0)).where(agents["status"] == "running")
        return pd.DataFrame(
            {
                "agent": agents["index"],
                "status": agents["status"],
                "progress (%)": (100 * pd.to_numeric(agents["progress"])).round(1),
                "ETA (s)": eta.round(0),
                "best peak reward": pd.to_numeric(agents["best_peak_reward"]).round(2),
                "best validation (% of bound)": (
                    100 * pd.to_numeric(agents["best_validation"]).astype(float)
                ).round(1),
                "reason": agents["status_reason"],
            }
        )

    def _csv(self):  # noqa: ANN202
        """Every stored point of the run (not only those drawn), with its smoothed value."""
        import io

        points = pd.DataFrame(columns=["agent", *_COLUMNS])
        if self.run_id is not None:
            curves = RunCurves(1, self.smoothing)
            frames = curves.add(self.workbench.curves(self.run_id, self.series))
            if frames:
                points = pd.concat([f.assign(agent=a) for a, f in sorted(frames.items())])
        return io.StringIO(points[["agent", *_COLUMNS]].to_csv(index=False))

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
        controls = pn.Row(
            self.series_select,
            pn.widgets.Select.from_param(self.param.x_axis, width=150),
            pn.widgets.FloatSlider.from_param(self.param.smoothing, width=200),
            pn.widgets.MultiChoice.from_param(
                self.param.compare, name="Compare with runs", width=320
            ),
            self.download,
        )
        return pn.Column(controls, self._plot_pane, self._agents_pane, sizing_mode="stretch_width")
