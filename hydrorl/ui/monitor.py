"""Live training curves: streamed from TrainStepValues, only the points newer than the last seen."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param

from hydrorl.workbench import Workbench

_COLUMNS = ["timestep", "wall_time", "value", "smooth"]


def smooth(values: np.ndarray, start: float | None, alpha: float) -> np.ndarray:
    """Exponential moving average continuing from ``start`` (the last smoothed value)."""
    out = np.empty(len(values))
    last = start
    for i, v in enumerate(values):
        last = v if last is None else alpha * v + (1.0 - alpha) * last
        out[i] = last
    return out


def band(frames: dict[int, pd.DataFrame], bins: int = 60) -> pd.DataFrame:
    """Mean ± std across agents of the smoothed curves, on a common timestep grid."""
    frames = {a: f for a, f in frames.items() if len(f) > 1}
    if len(frames) < 2:
        return pd.DataFrame(columns=["timestep", "mean", "std"])
    top = min(f["timestep"].max() for f in frames.values())
    grid = np.linspace(0, top, bins)
    curves = np.array([np.interp(grid, f["timestep"], f["smooth"]) for f in frames.values()])
    return pd.DataFrame({"timestep": grid, "mean": curves.mean(0), "std": curves.std(0)})


class TrainingMonitor(pn.viewable.Viewer):
    """Reward curves of a run's agents, refreshed from the database about once a second.

    Each refresh asks only for points newer than the last one seen and streams
    them into one HoloViews ``Buffer`` per agent, so the browser receives the new
    points, not the whole curve.  It starts from the database, so a reloaded page
    shows the whole run again.
    """

    run_id = param.Integer(default=None, allow_None=True, doc="Training run to watch")
    series = param.String(default="episode_reward", doc="Curve to plot")
    x_axis = param.Selector(default="timestep", objects=["timestep", "wall_time"])
    smoothing = param.Number(default=0.1, bounds=(0.01, 1.0), doc="EMA weight of a new point")
    period_ms = param.Integer(default=1000, bounds=(200, None))

    def __init__(self, workbench: Workbench, **params: object) -> None:
        self.workbench = workbench
        self.buffers: dict[int, hv.streams.Buffer] = {}
        self.last_id = 0
        self._last_smooth: dict[int, float] = {}
        self._frames: dict[int, pd.DataFrame] = {}
        self.band_stream = hv.streams.Pipe(data=band({}))
        self._agents_pane = pn.pane.DataFrame(
            pd.DataFrame(), index=False, sizing_mode="stretch_width"
        )
        self._plot_pane = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=350)
        self._callback: pn.io.PeriodicCallback | None = None
        super().__init__(**params)
        self.download = pn.widgets.FileDownload(
            callback=self._csv, filename="curves.csv", label="Export points as CSV"
        )
        self._reset()

    @param.depends("run_id", "series", "x_axis", watch=True)
    def _reset(self) -> None:
        self.buffers, self._last_smooth, self._frames, self.last_id = {}, {}, {}, 0
        self.refresh()
        self._plot_pane.object = self._plot()

    def refresh(self) -> int:
        """Fetch points newer than the last seen; stream them; return how many came."""
        if self.run_id is None:
            return 0
        new = self.workbench.curves(self.run_id, self.series, after_id=self.last_id)
        agents = self.workbench.agents(self.run_id)
        self._agents_pane.object = self._agent_table(agents)
        if new.empty:
            return 0
        self.last_id = int(new["id"].max())
        created = False
        for agent, points in new.groupby("agent"):
            agent = int(agent)
            values = points["value"].to_numpy(dtype=float)
            smoothed = smooth(values, self._last_smooth.get(agent), self.smoothing)
            self._last_smooth[agent] = float(smoothed[-1])
            frame = pd.DataFrame(
                {
                    "timestep": points["timestep"].to_numpy(dtype=float),
                    "wall_time": points["wall_time"].to_numpy(),
                    "value": values,
                    "smooth": smoothed,
                }
            )
            self._frames[agent] = pd.concat([self._frames.get(agent), frame], ignore_index=True)
            if agent not in self.buffers:
                self.buffers[agent] = hv.streams.Buffer(frame, length=10**7, index=False)
                created = True
            else:
                self.buffers[agent].send(frame)
        self.band_stream.send(band(self._frames))
        if created:
            self._plot_pane.object = self._plot()
        return len(new)

    def _plot(self) -> hv.Overlay:
        x = self.x_axis
        layers = []
        for agent, buffer in sorted(self.buffers.items()):
            raw = hv.DynamicMap(
                lambda data, x=x: hv.Curve(data, x, "value"), streams=[buffer]
            ).opts(alpha=0.25, line_width=1)
            line = hv.DynamicMap(
                lambda data, x=x, agent=agent: hv.Curve(data, x, "smooth", label=f"agent {agent}"),
                streams=[buffer],
            ).opts(line_width=2, tools=["hover"])
            layers += [raw, line]
        if x == "timestep":
            layers.insert(
                0,
                hv.DynamicMap(
                    lambda data: hv.Spread(data, "timestep", ["mean", "std"], label="mean ± std"),
                    streams=[self.band_stream],
                ).opts(alpha=0.15, color="grey"),
            )
        if not layers:
            return hv.Overlay([hv.Curve([], x, self.series)])
        return hv.Overlay(layers).opts(
            responsive=True, min_height=350, ylabel=self.series, legend_position="right"
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
                "reason": agents["status_reason"],
            }
        )

    def _csv(self):  # noqa: ANN202
        import io

        frames = [f.assign(agent=a) for a, f in sorted(self._frames.items())]
        data = pd.concat(frames) if frames else pd.DataFrame(columns=["agent", *_COLUMNS])
        return io.StringIO(data.to_csv(index=False))

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
            pn.widgets.Select.from_param(self.param.x_axis, width=150),
            pn.widgets.FloatSlider.from_param(self.param.smoothing, width=200),
            self.download,
        )
        return pn.Column(controls, self._plot_pane, self._agents_pane, sizing_mode="stretch_width")
