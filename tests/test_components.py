"""The Panel components, driven through their params and buttons, on real databases."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from bokeh.document import Document

import hydrorl
from hydrorl.db import bulk, models
from hydrorl.ui import EpisodeBrowser, ForecastUpload, RunLauncher, TrainingMonitor, WorkbenchApp
from hydrorl.ui.agent_table import eta_text
from tests.conftest import TINY_TRAINING, long_forecast

TINY = TINY_TRAINING


@pytest.fixture
def demo(wb: hydrorl.Workbench) -> hydrorl.Workbench:
    wb.setup_demo(scenarios=2, years=1)
    return wb


def forecast_rows(wb: hydrorl.Workbench) -> int:
    with wb.database.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(models.TimeDataValue))


def test_upload_shows_errors_previews_and_stores(demo: hydrorl.Workbench) -> None:
    upload = ForecastUpload(demo)
    assert upload.system == "Demo river"
    before = forecast_rows(demo)
    bad = long_forecast(scenarios=2, steps=8)
    bad.loc[3, "inflow"] = -1.0
    upload.preview(bad.to_csv(index=False).encode(), "spring.csv")
    assert "spring.csv: column 'inflow', line 5" in upload.error
    assert "negative" in upload.error and upload.commit_button.disabled
    assert not upload.commit() and forecast_rows(demo) == before
    good = long_forecast(scenarios=2, steps=8).to_csv(index=False).encode()
    upload.preview(good, "spring.csv")
    assert upload.error == "" and not upload.commit_button.disabled
    assert upload.forecast_name == "spring"
    assert upload._preview[0].object["scenario"].tolist() == ["s0", "s1"]
    upload.commit_button.clicks += 1  # the button, as a click in the page does
    assert upload.message.startswith("Stored forecast 'spring': 2 scenarios x 8 steps")
    assert forecast_rows(demo) == before + 32
    upload.preview(good, "again.csv")
    upload.forecast_name = "again"
    assert not upload.commit() and "the same content was uploaded before" in upload.error


def _running_run(session, agents: int, timesteps: int) -> tuple[int, list[int]]:  # noqa: ANN001
    """A training run shown as running, with an empty reward curve per agent (no processes)."""
    run = models.ProjectRun(
        project=session.scalar(sa.select(models.Project)),
        forecast=session.scalar(sa.select(models.Forecast)),
        kind=models.RunKind.TRAIN,
        status=models.Status.RUNNING,
        settings={"timesteps": timesteps},
    )
    run.agents = [
        models.Agent(index=i, seed=i, status=models.Status.RUNNING) for i in range(agents)
    ]
    session.add(run)
    session.flush()
    data = [models.TrainStepData(agent_id=a.id, name="episode_reward") for a in run.agents]
    session.add_all(data)
    session.flush()
    return run.id, [d.id for d in data]


def _add_points(wb: hydrorl.Workbench, data_ids: list[int], start: int, n: int) -> None:
    def write(session) -> None:  # noqa: ANN001
        for data_id in data_ids:
            bulk.insert_columns(
                session,
                models.TrainStepValue.__table__,
                ("data_id", "timestep", "wall_time", "value"),
                (
                    np.full(n, data_id),
                    np.arange(start, start + n) * 100,
                    np.full(n, time.time()),
                    np.random.default_rng([start, data_id]).random(n),
                ),
            )

    wb.database.run_write(write)


def test_the_monitor_streams_only_new_points(demo: hydrorl.Workbench) -> None:
    def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
        return _running_run(session, agents=3, timesteps=10_000)

    run_id, data_ids = demo.database.run_write(create)
    _add_points(demo, data_ids, 0, 50)
    monitor = TrainingMonitor(demo, run_id=run_id)
    assert sorted(monitor.buffers) == [0, 1, 2]
    assert [len(b.data) for b in monitor.buffers.values()] == [50, 50, 50]
    assert monitor.refresh() == 0  # nothing new, nothing sent
    _add_points(demo, data_ids, 50, 7)
    sent: list[int] = []
    for buffer in monitor.buffers.values():
        original = buffer.send
        buffer.send = lambda data, original=original: (sent.append(len(data)), original(data))
    assert monitor.refresh() == 21
    assert sent == [7, 7, 7]  # only the new points went down the streams
    assert [len(b.data) for b in monitor.buffers.values()] == [57, 57, 57]
    # The band covers the timestep bins (1/60 of the target each) that every agent reached.
    band = monitor.band_stream.data
    assert len(band) == 34 and band["timestep"].max() < 5700 and (band["std"] > 0).all()
    csv = monitor._csv().getvalue()
    assert csv.count("\n") == 3 * 57 + 1

    # A failed or stopped agent is labelled as such in the plot's legend.
    def end(session) -> None:  # noqa: ANN001
        run = session.get(models.ProjectRun, run_id)
        run.agents[1].status = models.Status.FAILED
        run.agents[2].status = models.Status.STOPPED

    demo.database.run_write(end)
    monitor.refresh()
    labels = [layer.label for layer in monitor._plot_pane.object[()]]
    assert {"agent 0", "agent 1 (failed)", "agent 2 (stopped)"} <= set(labels)
    table = monitor._agents_pane.object
    assert table["status"].tolist() == ["running", "failed", "stopped"]

    # Another run drawn beside it: the mean curve of its agents, fed only by its new points.
    other_id, other_data = demo.database.run_write(create)
    for _ in range(5):  # the list of runs is read again every fifth refresh
        monitor.refresh()
    assert other_id in monitor.param.compare.objects.values()  # offered once it exists
    _add_points(demo, other_data, 0, 20)
    monitor.compare = [other_id]
    mean = monitor.other_pipes[other_id].data
    assert len(mean) == 12 and mean["mean"].between(0, 1).all()
    _add_points(demo, other_data, 20, 40)
    monitor.refresh()
    assert len(monitor.other_pipes[other_id].data) == 36  # 60 points of 100 steps: 36 bins
    monitor.__panel__()
    monitor.stop()


def test_the_launcher_starts_stops_and_evaluates(demo: hydrorl.Workbench) -> None:
    demo.create_project("Demo river", "tiny", TINY)
    launcher = RunLauncher(demo)
    launcher.project = "tiny"
    assert launcher.agents == 2 and launcher.timesteps == 1024
    assert list(launcher.volume_sliders) == ["Hoegfjell", "Midtvatn", "Nedrevatn"]
    launcher.volume_sliders["Hoegfjell"].value = 800.0
    launcher.timesteps = 10**7
    launcher.start_button.clicks += 1
    run_id = launcher.run_id
    assert run_id is not None and "started" in launcher.message
    demo.wait(run_id, timeout=90, until_learning=True)
    assert set(demo.agents(run_id)["status"]) == {"running"}
    with demo.database.read() as session:
        volumes = {
            v.reservoir.name: v.volume_mm3
            for v in session.get(models.ProjectRun, run_id).start_volumes
        }
    assert volumes["Hoegfjell"] == 800.0
    reopened = WorkbenchApp(demo)  # a reloaded page follows the newest run
    assert reopened.launcher.run_id == run_id and reopened.monitor.run_id == run_id
    launcher.stop_button.clicks += 1
    assert demo.wait(run_id, timeout=10).status == "stopped"
    launcher.resume_button.clicks += 1
    assert "resumed" in launcher.message
    demo.wait(run_id, timeout=90, until_learning=True)
    launcher.stop_button.clicks += 1
    assert demo.wait(run_id, timeout=10).status == "stopped"
    launcher.evaluate_button.clicks += 1
    assert "Evaluation" in launcher.message
    evaluation = demo.runs().iloc[-1]
    assert evaluation["kind"] == "evaluate"
    assert demo.wait(int(evaluation["id"]), timeout=120).status == "completed"
    browser = EpisodeBrowser(demo)
    assert browser.run_id == int(evaluation["id"])
    assert browser.scenario == "S01"
    assert browser._table.object["scenario"].tolist() == ["S01", "S02", "mean"]
    browser.scenario = "S02"
    # One panel per reservoir (between its limits) and per station (with the spill of the
    # reservoir it draws from: no spill panel of its own), then price, inflow and revenue.
    titles = [f.title.text for f in _figures(browser._plots.object)]
    assert titles[:6] == [
        "Hoegfjell volume (Mm³), 40–900",
        "Midtvatn volume (Mm³), 5–60",
        "Nedrevatn volume (Mm³), 1–12",
        "Hoegfjell PS discharge (m³/s, daily)",  # a year of steps: the flows as daily means
        "Midtvatn PS discharge (m³/s, daily)",
        "Nedrevatn PS discharge (m³/s, daily)",
    ]
    assert titles[6:8] == ["Price (EUR/MWh)", "Inflow (m³/s)"]
    assert len(titles) == 9 and titles[8].startswith("Revenue (kEUR/day), ")
    app = WorkbenchApp(demo)
    app.launcher.run_id = run_id
    assert app.monitor.run_id == run_id
    app.__panel__()


def test_bad_settings_are_shown_not_raised(demo: hydrorl.Workbench, tmp_path: Path) -> None:
    launcher = RunLauncher(demo)
    launcher.volume_sliders["Midtvatn"].value = 100.0  # beyond what the slider allows by hand
    launcher.start()
    assert launcher.message.startswith("Not started: start volume of reservoir 'Midtvatn'")
    assert demo.runs().empty


def _figures(layout) -> list:  # noqa: ANN001
    import holoviews as hv

    return [child[0] for child in hv.render(layout).children]


def test_the_agents_table_shows_phase_progress_and_the_measured_eta(
    demo: hydrorl.Workbench,
) -> None:
    def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
        return _running_run(session, agents=3, timesteps=10_000)

    run_id, data_ids = demo.database.run_write(create)

    def phases(session) -> None:  # noqa: ANN001
        preparing, learning, done = session.get(models.ProjectRun, run_id).agents
        preparing.status_reason = "computing the water values, 40%"
        preparing.timesteps_done = 0
        learning.timesteps_done = 4000
        done.status, done.timesteps_done = models.Status.COMPLETED, 10_100
        done.best_validation = 0.8
        # The learning agent's last minute: 3000 timesteps in 60 s, 50 per second.
        bulk.insert_columns(
            session,
            models.TrainStepValue.__table__,
            ("data_id", "timestep", "wall_time", "value"),
            (np.full(2, data_ids[1]), np.array([1000, 4000]), np.array([1.8e9, 1.8e9 + 60]),
             np.array([0.1, 0.2])),
        )  # fmt: skip

    demo.database.run_write(phases)
    monitor = TrainingMonitor(demo, run_id=run_id)
    table = monitor._agents_pane.object
    assert table["phase"].tolist() == ["preparing", "learning", "completed"]
    assert table["progress (%)"].tolist() == [0.0, 40.0, 100.0]  # capped: SB3 overshoots
    # 6000 timesteps left at 50 per second; no rate measured yet while preparing.
    assert table["ETA"].tolist() == ["—", "2 min 0 s", "—"]
    assert table["reason"].tolist() == ["computing the water values, 40%", "", ""]
    shown = monitor._agents_pane.get_root(Document()).text
    assert "2 min 0 s" in shown and "—" in shown
    assert "NaN" not in shown and "None" not in shown and "nan" not in shown
    monitor.stop()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(float("nan"), "—"), (None, "—"), (0.4, "0 s"), (59.6, "1 min 0 s"), (200, "3 min 20 s"),
     (7500, "2 h 05 min")],
)  # fmt: skip
def test_the_eta_reads_in_hours_minutes_and_seconds(seconds: float | None, text: str) -> None:
    assert eta_text(seconds) == text


def test_a_long_run_opens_from_one_point_in_k(demo: hydrorl.Workbench) -> None:
    def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
        return _running_run(session, agents=2, timesteps=10**6)

    run_id, data_ids = demo.database.run_write(create)
    _add_points(demo, data_ids, 0, 3000)
    monitor = TrainingMonitor(demo, run_id=run_id, history_points=1000)
    assert sum(len(b.data) for b in monitor.buffers.values()) == 1000  # 6000 points, 1 in 6
    _add_points(demo, data_ids, 3000, 10)
    assert monitor.refresh() == 20  # then every new point
    export = pd.read_csv(monitor._csv())
    assert len(export) == 6020 and export.groupby("agent").size().tolist() == [3010, 3010]


def _add_curve(wb: hydrorl.Workbench, run_id: int, name: str, points: dict[int, list]) -> None:
    """Points ``(timestep, value)`` of curve ``name`` per agent index, as an agent writes them."""

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
            steps, values = zip(*points[agent.index], strict=True)
            bulk.insert_columns(
                session,
                models.TrainStepValue.__table__,
                ("data_id", "timestep", "wall_time", "value"),
                (np.full(len(steps), data.id), np.array(steps), np.full(len(steps), time.time()),
                 np.array(values, dtype=float)),
            )  # fmt: skip

    wb.database.run_write(write)


def _axis_labels(monitor: TrainingMonitor) -> tuple[str, str]:
    import holoviews as hv

    figure = hv.render(monitor._plot_pane.object)
    return figure.xaxis[0].axis_label, figure.yaxis[0].axis_label


SHARE, SDP, PLANNER = (
    "validation/share_of_bound",
    "reference/sdp_share_of_bound",
    "reference/planner_share_of_bound",
)


def test_the_monitor_opens_on_validation_with_its_reference_lines(
    demo: hydrorl.Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
        return _running_run(session, agents=2, timesteps=10_000)

    run_id, data_ids = demo.database.run_write(create)
    _add_points(demo, data_ids, 0, 30)
    _add_curve(demo, run_id, SHARE, {0: [(0, 30.0), (500, 60.0)], 1: [(0, 20.0), (500, 50.0)]})
    _add_curve(demo, run_id, SDP, {0: [(0, 80.0)], 1: [(0, 82.0)]})
    _add_curve(demo, run_id, PLANNER, {0: [(500, 90.0)]})
    _add_curve(demo, run_id, "imitation/actor_loss", {0: [(e, 1.0 / e) for e in range(1, 41)]})
    _add_curve(demo, run_id, "imitation/anchor_loss", {0: [(100, 0.5), (200, 0.4)]})

    def scores(session) -> None:  # noqa: ANN001
        session.get(models.ProjectRun, run_id).agents[0].best_validation = 0.6
        session.get(models.ProjectRun, run_id).agents[0].best_peak_reward = 1.5

    demo.database.run_write(scores)
    monitor = TrainingMonitor(demo, run_id=run_id)
    assert monitor.series == SHARE and monitor.series_select.value == SHARE
    assert monitor.series_select.groups == {
        "validation": [SHARE],
        "imitation": ["imitation/actor_loss", "imitation/anchor_loss"],
        "training": ["episode_reward"],
    }  # the reference curves are lines on the validation plot, not curves of their own
    assert [b.data["value"].tolist() for b in monitor.buffers.values()] == [[30, 60], [20, 50]]
    assert all((b.data["smooth"] == b.data["value"]).all() for b in monitor.buffers.values())
    # The classical policies at the mean of each agent's latest point, across the points' x.
    assert monitor.references() == {"SDP benchmark": 81.0, "planner": 90.0}
    line = monitor.reference_pipes["SDP benchmark"].data
    assert line["value"].tolist() == [81.0, 81.0] and line["timestep"].tolist() == [0, 500]
    labels = [layer.label for layer in monitor._plot_pane.object[()]]
    assert {"agent 0", "agent 1", "SDP benchmark", "planner"} <= set(labels)
    assert _axis_labels(monitor) == ("timesteps", "validation value (% of bound)")
    table = monitor._agents_pane.object
    assert list(table.columns) == [
        "agent",
        "status",
        "phase",
        "progress (%)",
        "ETA",
        "best validation (% of bound)",
        "reason",
    ]
    assert table["best validation (% of bound)"].tolist()[0] == 60.0
    assert table["best validation (% of bound)"].isna().tolist() == [False, True]

    # New reference and validation points: only they are read, and the lines follow.
    read: list[tuple[str, int]] = []
    curves = demo.curves

    def counting(run: int, series: str | None = "episode_reward", **kw: object) -> pd.DataFrame:
        frame = curves(run, series, **kw)  # type: ignore[arg-type]
        read.append((str(series), len(frame)))
        return frame

    _add_curve(demo, run_id, SHARE, {1: [(1000, 70.0)]})
    _add_curve(demo, run_id, SDP, {1: [(1000, 84.0)]})
    with monkeypatch.context() as patch:
        patch.setattr(demo, "curves", counting)
        assert monitor.refresh() == 1
    assert sorted(read) == [(PLANNER, 0), (SDP, 1), (SHARE, 1)]
    assert monitor.references() == {"SDP benchmark": 82.0, "planner": 90.0}
    for label in ("SDP benchmark", "planner"):
        assert monitor.reference_pipes[label].data["timestep"].tolist() == [0, 1000]
    assert monitor.reference_pipes["planner"].data["value"].tolist() == [90.0, 90.0]

    monitor.x_axis = "wall_time"
    assert set(monitor.reference_pipes) == {"SDP benchmark", "planner"}
    assert _axis_labels(monitor) == ("wall time (UTC)", "validation value (% of bound)")
    monitor.x_axis = "timestep"

    # The other curves are one choice away; imitation losses count fitting epochs.
    monitor.series_select.value = "imitation/actor_loss"
    assert monitor.series == "imitation/actor_loss" and monitor.reference_pipes == {}
    assert len(monitor.buffers[0].data) == 40
    assert _axis_labels(monitor) == ("fitting epoch", "imitation loss (actor)")
    monitor.series_select.value = "imitation/anchor_loss"
    assert _axis_labels(monitor)[0] == "timesteps"
    monitor.series_select.value = "episode_reward"
    for _ in range(5):
        monitor.refresh()
    assert monitor.series == "episode_reward"  # chosen: kept though the run validates
    assert _axis_labels(monitor) == ("timesteps", "episode reward (EUR, scaled)")
    monitor.run_id = None
    monitor.run_id = run_id  # another run opens on its own default again
    assert monitor.series == SHARE
    monitor.__panel__()
    monitor.stop()


def test_the_monitor_turns_to_validation_when_it_appears(demo: hydrorl.Workbench) -> None:
    def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
        return _running_run(session, agents=2, timesteps=10_000)

    run_id, data_ids = demo.database.run_write(create)
    chosen_id, _ = demo.database.run_write(create)
    monitor = TrainingMonitor(demo, run_id=run_id)  # just started: no curves yet
    chosen = TrainingMonitor(demo, run_id=chosen_id, series="episode_reward")
    assert monitor.series == "episode_reward" and monitor.refresh() == 0
    assert monitor.series_select.groups == {"training": ["episode_reward"]}
    for run in (run_id, chosen_id):
        _add_curve(demo, run, SHARE, {0: [(0, 40.0)], 1: [(0, 45.0)]})
        _add_curve(demo, run, SDP, {0: [(0, 80.0)], 1: [(0, 80.0)]})
        _add_curve(demo, run, "loss", {0: [(64, 1.0)]})
    assert monitor.refresh() == 2
    assert monitor.series == SHARE and monitor.references() == {"SDP benchmark": 80.0}
    assert _axis_labels(monitor) == ("timesteps", "validation value (% of bound)")
    chosen.refresh()
    assert chosen.series == "episode_reward" and chosen.reference_pipes == {}
    for _ in range(5):  # every fifth refresh looks for every curve the run may have
        monitor.refresh()
    assert monitor.series_select.groups == {
        "validation": [SHARE],
        "training": ["episode_reward", "loss"],
    }
    _add_points(demo, data_ids, 0, 3)
    monitor.series_select.value = "episode_reward"
    assert [len(b.data) for b in monitor.buffers.values()] == [3, 3]
