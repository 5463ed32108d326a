"""The monitor's curves as TensorBoard draws them: smoothing, downsampling, y range, the plot.

The pure functions are checked against their definitions; the monitor on a real SQLite
file holding runs written as agents write them (no processes), its plot rendered with
Bokeh and inspected glyph by glyph.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from bokeh.models import GlyphRenderer, HoverTool

import hydrorl
from hydrorl.db import bulk, models
from hydrorl.ui import TrainingMonitor
from hydrorl.ui.curves import smooth
from hydrorl.ui.downsample import minmax_indices, robust_range
from hydrorl.ui.monitor import PLOT_HEIGHT
from tests.conftest import long_forecast

SHARE, SDP = "validation/share_of_bound", "reference/sdp_share_of_bound"


# --- smoothing ------------------------------------------------------------------------------


def tensorboard_smoothing(values: list[float], weight: float) -> list[float]:
    """TensorBoard's own loop (its vz_line_chart resmoothDataset), one point at a time."""
    last, taken, out = 0.0, 0, []
    for value in values:
        if not np.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        taken += 1
        out.append(last / (1 - weight**taken) if weight != 1 else last)
    return out


@pytest.mark.parametrize("weight", [0.0, 0.6, 0.99])
def test_smoothing_is_tensorboards_and_continues_across_refreshes(weight: float) -> None:
    values = np.random.default_rng(0).normal(5.0, 2.0, 300)
    values[[17, 120]] = [np.nan, np.inf]
    expected = tensorboard_smoothing(values.tolist(), weight)
    whole, _ = smooth(values, weight)
    np.testing.assert_allclose(whole, expected)
    first, state = smooth(values[:100], weight)
    second, _ = smooth(values[100:], weight, state)
    np.testing.assert_allclose(np.r_[first, second], expected)
    assert np.isnan(whole[17]) and np.isinf(whole[120])  # passed through, average untouched


def test_smoothing_runs_from_raw_to_smooth_and_is_unbiased() -> None:
    values = np.random.default_rng(1).normal(10.0, 3.0, 2000)
    raw, _ = smooth(values, 0.0)
    np.testing.assert_array_equal(raw, values)  # 0: the raw points
    spread = [np.std(np.diff(smooth(values, w)[0])) for w in (0.0, 0.5, 0.9, 0.99)]
    assert spread == sorted(spread, reverse=True) and spread[-1] < spread[0] / 20
    # Debiased: the first smoothed point is the first value, not pulled towards 0.
    assert smooth(values, 0.99)[0][0] == pytest.approx(values[0])
    assert smooth(np.full(50, 7.0), 0.9)[0] == pytest.approx(np.full(50, 7.0))


# --- downsampling and the y range -------------------------------------------------------------


def test_minmax_keeps_every_column_first_last_lowest_and_highest() -> None:
    rng = np.random.default_rng(2)
    x = np.sort(rng.uniform(0, 1000, 20_000))
    y = rng.normal(size=x.size)
    y[5000] = 40.0  # a spike a plain one-in-k thinning would likely miss
    keep = minmax_indices(x, y, 100)
    assert len(keep) <= 400 and np.all(np.diff(keep) > 0)
    assert 5000 in keep and 0 in keep and x.size - 1 in keep
    column = np.clip(((x - x.min()) / np.ptp(x) * 100).astype(int), 0, 99)
    for c in range(100):
        mine = keep[column[keep] == c]
        every = np.flatnonzero(column == c)
        assert y[mine].min() == y[every].min() and y[mine].max() == y[every].max()
        assert mine[0] == every[0] and mine[-1] == every[-1]


def test_minmax_on_short_flat_and_gappy_curves() -> None:
    assert minmax_indices(np.arange(10.0), np.arange(10.0), 5).tolist() == list(range(10))
    same_x = minmax_indices(np.zeros(100), np.arange(100.0), 2)  # one column
    assert same_x.tolist() == [0, 99]
    y = np.arange(100.0)
    y[50:60] = np.nan
    keep = minmax_indices(np.arange(100.0), y, 5)
    assert np.isfinite(y[keep]).sum() >= 10  # lowest and highest are finite points
    with pytest.raises(ValueError, match="1-D and of one length"):
        minmax_indices(np.arange(3.0), np.arange(4.0), 2)


def test_the_y_range_ignores_outliers_but_keeps_references() -> None:
    values = np.r_[np.random.default_rng(3).uniform(0, 10, 1000), 1e6, -1e6]
    lo, hi = robust_range([values])
    assert -1 < lo < 0.5 and 9.5 < hi < 11  # the bulk, padded: not the two outliers
    lo, hi = robust_range([values], keep=[100.0])
    assert lo < 0.5 and 100.0 < hi < 106
    assert robust_range([np.array([np.nan])]) is None
    assert robust_range([np.full(5, 3.0)]) == (pytest.approx(2.7), pytest.approx(3.3))


# --- the monitor on a real database -----------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[hydrorl.Workbench]:
    with hydrorl.connect(f"sqlite:///{tmp_path / 'monitor.db'}") as wb:
        wb.setup_demo(scenarios=2, years=1)
        yield wb


def _run(wb: hydrorl.Workbench, agents: int, timesteps: int, forecast: str | None = None) -> int:
    """A training run shown as running with ``agents`` agents (no processes)."""

    def create(session) -> int:  # noqa: ANN001
        query = sa.select(models.Forecast)
        if forecast is not None:
            query = query.filter_by(name=forecast)
        run = models.ProjectRun(
            project=session.scalar(sa.select(models.Project)),
            forecast=session.scalar(query),
            kind=models.RunKind.TRAIN,
            status=models.Status.RUNNING,
            settings={"timesteps": timesteps},
        )
        running = models.Status.RUNNING
        run.agents = [models.Agent(index=i, seed=i, status=running) for i in range(agents)]
        session.add(run)
        session.flush()
        return run.id

    return wb.database.run_write(create)


def _points(
    wb: hydrorl.Workbench, run_id: int, name: str, points: dict[int, tuple], start: float = 0.0
) -> None:
    """Points ``(timesteps, values)`` of curve ``name`` per agent; wall time 1 s a step."""

    def write(session) -> None:  # noqa: ANN001
        for agent in session.get(models.ProjectRun, run_id).agents:
            if agent.index not in points:
                continue
            data = session.scalar(
                sa.select(models.TrainStepData).filter_by(agent_id=agent.id, name=name)
            )
            if data is None:
                data = models.TrainStepData(agent_id=agent.id, name=name)
                session.add(data)
                session.flush()
            steps, values = (np.asarray(a) for a in points[agent.index])
            bulk.insert_columns(
                session,
                models.TrainStepValue.__table__,
                ("data_id", "timestep", "wall_time", "value"),
                (np.full(len(steps), data.id), steps, start + steps.astype(float),
                 values.astype(float)),
            )  # fmt: skip

    wb.database.run_write(write)


def _renderers(monitor: TrainingMonitor) -> tuple[object, list[GlyphRenderer]]:
    figure = hv.render(monitor._plot_pane.object)
    return figure, list(figure.select(type=GlyphRenderer))


def _legend(figure) -> dict[str, list[GlyphRenderer]]:  # noqa: ANN001
    return {item.label.value: item.renderers for item in figure.legend[0].items}


def test_one_colour_per_agent_raw_faint_smoothed_solid_hover_complete(
    demo: hydrorl.Workbench,
) -> None:
    run_id = _run(demo, agents=3, timesteps=1000)
    rng = np.random.default_rng(4)
    steps = np.arange(0, 1000, 10)
    _points(demo, run_id, "episode_reward", {a: (steps, rng.normal(a, 1, 100)) for a in range(3)})
    monitor = TrainingMonitor(demo, run_id=run_id)
    figure, _ = _renderers(monitor)
    assert figure.yaxis[0].axis_label == "episode reward (EUR, scaled)"
    assert figure.xaxis[0].axis_label == "timesteps"
    legend = _legend(figure)
    colours = []
    for agent in range(3):
        raw, line = legend[f"agent {agent}"]  # one entry: hiding it hides both
        assert raw.glyph.line_color == line.glyph.line_color
        assert raw.glyph.line_alpha <= 0.3 and line.glyph.line_alpha == 1.0
        assert line.glyph.line_width > raw.glyph.line_width
        colours.append(line.glyph.line_color)
        assert set(line.data_source.data) >= {"agent", "timestep", "value", "smooth"}
        drawn = line.data_source.data
        assert not np.allclose(drawn["smooth"], drawn["value"])  # smoothed by default
    assert len(set(colours)) == 3
    hovers = [h for h in figure.select(type=HoverTool) if legend["agent 0"][1] in h.renderers]
    assert len(hovers) == 1
    shown = dict(hovers[0].tooltips)
    assert {"agent", "step", "raw", "smoothed", "wall time"} <= set(shown)
    assert shown["raw"].startswith("@{value}") and shown["smoothed"].startswith("@{smooth}")
    assert figure.legend[0] in figure.right
    # A fixed height across the page's width, however little the run has.
    assert figure.sizing_mode == "stretch_width" and figure.height == PLOT_HEIGHT
    monitor.run_id = _run(demo, agents=1, timesteps=1000)
    empty = hv.render(monitor._plot_pane.object)
    assert empty.sizing_mode == "stretch_width" and empty.height == PLOT_HEIGHT


def test_the_smoothing_slider_and_the_x_axes(demo: hydrorl.Workbench) -> None:
    run_id = _run(demo, agents=1, timesteps=1000)
    values = np.random.default_rng(5).normal(0, 1, 100)
    _points(demo, run_id, "loss", {0: (np.arange(100) * 10, values)}, start=1.8e9)
    monitor = TrainingMonitor(demo, run_id=run_id, series="loss")
    assert hv.render(monitor._plot_pane.object).yaxis[0].axis_label == "SB3 loss (train/loss)"
    rough = np.std(np.diff(monitor.buffers[0].data["smooth"]))
    monitor.smoothing = 0.0
    np.testing.assert_array_equal(monitor.buffers[0].data["smooth"], values)
    monitor.smoothing = 0.95  # towards 1: smoother
    assert np.std(np.diff(monitor.buffers[0].data["smooth"])) < rough / 2
    np.testing.assert_allclose(monitor.buffers[0].data["smooth"], smooth(values, 0.95)[0])

    # Relative wall time counts minutes from the run's start (here its creation: no process).
    monitor.x_axis = "relative_time"
    drawn = monitor.buffers[0].data
    start = demo.run(run_id).created_at
    minutes = (pd.Timestamp(1.8e9, unit="s") - start).total_seconds() / 60 + drawn["timestep"] / 60
    np.testing.assert_allclose(drawn["relative_time"], minutes)
    figure, renderers = _renderers(monitor)
    assert figure.xaxis[0].axis_label == "relative wall time (min)"
    assert all("relative_time" in r.data_source.data for r in renderers)
    monitor.x_axis = "wall_time"
    figure, _ = _renderers(monitor)
    assert figure.xaxis[0].axis_label == "wall time (UTC)"
    assert type(figure.xaxis[0]).__name__ == "DatetimeAxis"
    assert drawn["wall_time"].iloc[0] == pd.Timestamp(1.8e9, unit="s")


def test_validation_opens_first_with_the_bound_and_references(demo: hydrorl.Workbench) -> None:
    run_id = _run(demo, agents=2, timesteps=1000)
    _points(demo, run_id, "episode_reward", {0: ([0, 10], [1.0, 2.0])})
    _points(demo, run_id, SHARE, {0: ([0, 500], [30.0, 60.0]), 1: ([0, 500], [20.0, 55.0])})
    _points(demo, run_id, SDP, {0: ([0], [80.0]), 1: ([0], [82.0])})
    monitor = TrainingMonitor(demo, run_id=run_id)
    assert monitor.series == SHARE and monitor.smoothing_slider.disabled  # exact scores
    figure, _ = _renderers(monitor)
    assert figure.yaxis[0].axis_label == "validation value (% of bound)"
    legend = _legend(figure)
    assert {"agent 0", "agent 1", "SDP benchmark", "bound (perfect foresight)"} <= set(legend)
    (bound,) = legend["bound (perfect foresight)"]
    assert list(bound.data_source.data["value"]) == [100.0, 100.0]
    assert list(bound.data_source.data["timestep"]) == [0, 500]
    (sdp,) = legend["SDP benchmark"]
    assert list(sdp.data_source.data["value"]) == [81.0, 81.0]
    # Every reference line in view, the agents' points too.
    lo, hi = monitor.y_range
    assert lo < 20.0 and 100.0 < hi < 110.0
    assert (figure.y_range.start, figure.y_range.end) == monitor.y_range
    monitor.series = "episode_reward"
    assert monitor.level_pipes == {} and monitor.reference_pipes == {}
    assert not monitor.smoothing_slider.disabled


def test_a_long_curve_is_drawn_at_plot_resolution_and_streams(demo: hydrorl.Workbench) -> None:
    run_id = _run(demo, agents=2, timesteps=10**6)
    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, 20_000)
    values[12_345] = 1e4  # an outlier: drawn, but it does not set the y range
    steps = np.arange(20_000) * 10
    _points(demo, run_id, "episode_reward", {0: (steps, values), 1: (steps, values + 1)})
    monitor = TrainingMonitor(demo, run_id=run_id, resolution=100, smoothing=0.0)
    drawn = monitor.buffers[0].data
    assert len(drawn) <= 400 and drawn["value"].max() == 1e4  # its spike kept
    assert drawn["value"].min() == values.min()
    lo, hi = monitor.y_range
    assert lo > -6 and hi < 8  # the bulk of both agents, not the spike
    sent: list[int] = []
    buffer = monitor.buffers[0]
    original = buffer.send
    buffer.send = lambda data: (sent.append(len(data)), original(data))
    more = np.arange(20_000, 20_050)
    _points(demo, run_id, "episode_reward", {0: (more * 10, np.zeros(50))})
    assert monitor.refresh() == 50
    assert sent == [50] and len(buffer.data) == len(drawn) + 50  # only the new points
    # Past twice what the plot resolves, the curve is drawn again from its whole history.
    many = np.arange(20_050, 21_000)
    _points(demo, run_id, "episode_reward", {0: (many * 10, np.ones(950))})
    assert monitor.refresh() == 950
    assert len(buffer.data) <= 400 and buffer.data["value"].max() == 1e4
    assert buffer.data["timestep"].iloc[-1] == many[-1] * 10
    export = pd.read_csv(monitor._csv())
    assert len(export) == 2 * 20_000 + 1000  # the export has every point


def _second_forecast(wb: hydrorl.Workbench) -> str:
    system = wb.systems()["name"].iloc[0]
    wb.upload_forecast(system, long_forecast(scenarios=2, steps=8), "spring")
    return "spring"


def test_switching_runs_and_comparisons_redraws_everything(demo: hydrorl.Workbench) -> None:
    first = _run(demo, agents=2, timesteps=1000)
    steps = np.arange(0, 1000, 10)
    _points(demo, first, "episode_reward", {0: (steps, steps * 0.1), 1: (steps, steps * 0.2)})
    _points(demo, first, "loss", {0: (steps, steps * 0.0)})
    other = _run(demo, agents=1, timesteps=1000, forecast=_second_forecast(demo))
    _points(demo, other, "episode_reward", {0: (steps, steps * 0.3)})
    empty = _run(demo, agents=2, timesteps=1000)
    monitor = TrainingMonitor(demo, run_id=first)
    assert len(monitor.band_stream.data) > 0 and monitor.note == ""

    monitor.compare = [other]
    assert len(monitor.other_pipes[other].data) > 0
    assert "forecast 'spring'" in monitor.note and f"run {other}" in monitor.note
    figure, _ = _renderers(monitor)
    assert any("other forecast: spring" in label for label in _legend(figure))

    # Another curve: the compared run is drawn again (no chip without its line).
    monitor.series = "loss"
    assert list(monitor.other_pipes) == [other] and monitor.compare == [other]
    assert f"No points of loss yet in run {other}" in monitor.note
    monitor.series = "episode_reward"
    assert len(monitor.other_pipes[other].data) > 0
    monitor.x_axis = "relative_time"
    assert "drawn against timesteps only" in monitor.note
    monitor.x_axis = "timestep"

    # Another run: no band, line or point of the first stays.
    monitor.run_id = empty
    assert monitor.buffers == {} and monitor.band_stream.data.empty
    assert monitor.compare == [other] and len(monitor.other_pipes[other].data) > 0
    monitor.run_id = other  # the compared run itself is now watched: dropped from compare
    assert monitor.compare == [] and monitor.other_pipes == {} and monitor.note == ""
    monitor.compare = [first]
    assert "learnt on forecast 'spring'" in monitor.note
    monitor.compare = []
    assert monitor.note == "" and not monitor._note_pane.visible
