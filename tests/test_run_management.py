"""Deleting and renaming runs, forecasts and projects: nothing orphaned, refusals change nothing.

Runs are written as the agents and the evaluator write them (every table a run touches, and a
run folder with files), on every backend; one real tiny run checks the folder its processes
wrote goes with it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import hydrorl
from hydrorl.db import Base, models
from hydrorl.errors import AlreadyExistsError, InUseError, NotFoundError, ValidationError
from hydrorl.training.agent import run_folder
from tests.conftest import TINY_TRAINING, kill_processes_of, long_forecast


@pytest.fixture
def demo(wb: hydrorl.Workbench) -> hydrorl.Workbench:
    wb.setup_demo(scenarios=2, years=1)
    return wb


def row_counts(wb: hydrorl.Workbench) -> dict[str, int]:
    """Rows in every table of the schema."""
    with wb.database.read() as session:
        return {
            t.name: session.scalar(sa.select(sa.func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def written_run(
    wb: hydrorl.Workbench,
    *,
    forecast: str = "Demo forecast",
    project: str = "Demo project",
    status: str = "completed",
    validations: tuple[float, ...] = (0.8, 0.9),
    settings: dict | None = None,
) -> int:
    """A finished training run as its agents leave it: agents with curves and a stop signal,
    start volumes, a run stop signal, and a folder of checkpoints, logs and start-up pieces."""
    start = dt.datetime(2027, 1, 1, 12, 0)

    def create(session) -> int:  # noqa: ANN001
        f = session.scalars(sa.select(models.Forecast).filter_by(name=forecast)).one()
        p = session.scalars(sa.select(models.Project).filter_by(name=project)).one()
        reservoirs = list(p.system.reservoirs)  # (read before the run joins the session)
        run = models.ProjectRun(
            project=p,
            forecast=f,
            kind=models.RunKind.TRAIN,
            status=status,
            settings=settings
            or {
                "algorithm": "PPO",
                "timesteps": 1024,
                "seed": 0,
                "hyperparameters": {"n_steps": 64, "learning_rate": 3e-4},
            },
            started_at=start,
            finished_at=start + dt.timedelta(seconds=90) if status != "running" else None,
        )
        run.agents = [
            models.Agent(index=i, seed=i, status=status, best_validation=v)
            for i, v in enumerate(validations)
        ]
        run.start_volumes = [
            models.ProjectRunStartVolume(reservoir_id=r.id, volume_mm3=r.min_volume_mm3)
            for r in reservoirs
        ]
        run.controls = [models.ProjectRunControl(command=models.ControlCommand.STOP)]
        session.add(run)
        session.flush()
        for agent in run.agents:
            agent.controls = [models.AgentControl(command=models.ControlCommand.STOP)]
            for name in ("episode_reward", "validation/share_of_bound"):
                data = models.TrainStepData(agent_id=agent.id, name=name)
                session.add(data)
                session.flush()
                session.add_all(
                    models.TrainStepValue(data_id=data.id, timestep=t, wall_time=1e9 + t, value=t)
                    for t in range(0, 1000, 100)
                )
        session.flush()
        return run.id

    run_id = wb.database.run_write(create)
    folder = run_folder(wb.url, run_id)
    for name in ("agent-0/last.zip", "agent-0/best.zip", "shared/water_values.pkl", "agent-0.log"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")

    def checkpoints(session) -> None:  # noqa: ANN001
        for agent in session.get(models.ProjectRun, run_id).agents:
            agent.checkpoint_path = str(folder / f"agent-{agent.index}" / "last.zip")

    wb.database.run_write(checkpoints)
    return run_id


def written_evaluation(
    wb: hydrorl.Workbench, source: int, status: str = "completed", forecast: str | None = None
) -> int:
    """An evaluation of ``source``'s agent 0 as the evaluator leaves it: one episode per
    scenario with its series, and a folder with its log."""

    def create(session) -> int:  # noqa: ANN001
        train = session.get(models.ProjectRun, source)
        target = train.forecast
        if forecast is not None:
            target = session.scalars(sa.select(models.Forecast).filter_by(name=forecast)).one()
        run = models.ProjectRun(
            project_id=train.project_id,
            forecast=target,
            source_run_id=source,
            kind=models.RunKind.EVALUATE,
            status=status,
            settings={**train.settings, "agent_index": 0},
        )
        session.add(run)
        session.flush()
        for k, link in enumerate(target.series_links):
            episode = models.EvaluationEpisode(
                run_id=run.id,
                agent_id=train.agents[0].id,
                series_link_id=link.id,
                total_reward=90.0 + k,
                revenue_eur=80.0,
                spill_mm3=0.0,
                end_volume_mm3=1.0,
                bound_revenue_eur=100.0,
                benchmark_revenue_eur=95.0,
            )
            session.add(episode)
            session.flush()
            for name in ("price", "reward"):
                data = models.ReportData(episode_id=episode.id, name=name)
                session.add(data)
                session.flush()
                session.execute(
                    sa.insert(models.ReportValue),
                    [
                        {"data_id": data.id, "step_index": i, "value": float(i)}
                        for i in range(target.n_steps)
                    ],
                )
        session.flush()
        return run.id

    run_id = wb.database.run_write(create)
    folder = run_folder(wb.url, run_id)
    folder.mkdir(parents=True)
    (folder / "evaluate.log").write_text("done")
    return run_id


def test_deleting_a_run_leaves_no_row_and_no_folder(demo: hydrorl.Workbench) -> None:
    kept = written_run(demo)
    kept_evaluation = written_evaluation(demo, kept)
    before = row_counts(demo)
    run = written_run(demo)
    evaluation = written_evaluation(demo, run)
    grown = row_counts(demo)
    for table in (
        "project_run",
        "agent",
        "train_step_data",
        "train_step_value",
        "evaluation_episode",
        "report_data",
        "report_value",
        "agent_control",
        "project_run_control",
        "project_run_start_volume",
    ):
        assert grown[table] > before[table], table  # the written run touches every run table
    assert demo.delete_run(run) == [run, evaluation]  # its evaluation goes with it
    assert row_counts(demo) == before
    assert not run_folder(demo.url, run).exists()
    assert not run_folder(demo.url, evaluation).exists()
    assert (run_folder(demo.url, kept) / "agent-0" / "last.zip").is_file()
    assert demo.runs()["id"].tolist() == [kept, kept_evaluation]
    with pytest.raises(NotFoundError, match=f"no run {run}"):
        demo.delete_run(run)
    # An evaluation alone goes without its training run.
    assert demo.delete_run(demo.run(kept_evaluation)) == [kept_evaluation]
    assert demo.runs()["id"].tolist() == [kept]
    assert demo.agents(kept)["best_validation"].tolist() == [0.8, 0.9]


@pytest.mark.parametrize("status", ["queued", "running", "stopping"])
def test_a_busy_run_is_refused_and_nothing_changes(demo: hydrorl.Workbench, status: str) -> None:
    run = written_run(demo, status=status)
    before = row_counts(demo)
    with pytest.raises(InUseError, match=f"run {run} is {status}: stop it first"):
        demo.delete_run(run)
    assert row_counts(demo) == before
    assert (run_folder(demo.url, run) / "agent-0" / "last.zip").is_file()
    # Nor may a run go whose evaluation is busy, nor the forecast or project holding it.
    finished = written_run(demo)
    written_evaluation(demo, finished, status=status)
    before = row_counts(demo)
    with pytest.raises(InUseError, match="stop it first"):
        demo.delete_run(finished)
    with pytest.raises(InUseError, match="stop it first"):
        demo.delete_forecast("Demo forecast", cascade=True)
    with pytest.raises(InUseError, match="stop it first"):
        demo.delete_project("Demo project", cascade=True)
    with pytest.raises(InUseError, match="stop it first"):
        demo.delete_system("Demo river", cascade=True)
    assert row_counts(demo) == before
    assert run_folder(demo.url, finished).is_dir()


def test_a_forecast_with_runs_is_refused_unless_cascade(demo: hydrorl.Workbench) -> None:
    before = row_counts(demo)
    demo.upload_forecast("Demo river", long_forecast(scenarios=2, steps=24), "spring")
    on_demo = written_run(demo)
    demo.rename_run(on_demo, "kept")
    on_spring = written_run(demo, forecast="spring")
    demo.rename_run(on_spring, "on spring")
    # Evaluations on the forecast (of a run on another) and of a run on it (on another).
    evaluated_on_spring = written_evaluation(demo, on_demo, forecast="spring")
    evaluated_on_demo = written_evaluation(demo, on_spring, forecast="Demo forecast")
    frozen = row_counts(demo)
    with pytest.raises(InUseError) as refused:
        demo.delete_forecast("spring")
    message = str(refused.value)
    assert f"run {on_spring} 'on spring' (training, completed)" in message
    assert f"run {evaluated_on_spring} (evaluation, completed)" in message
    assert f"run {evaluated_on_demo} (evaluation" in message  # its training run goes
    assert "cascade=True" in message
    assert row_counts(demo) == frozen
    deleted = demo.delete_forecast("spring", cascade=True)
    assert deleted == sorted([on_spring, evaluated_on_spring, evaluated_on_demo])
    assert "spring" not in set(demo.forecasts()["name"])
    assert demo.runs()["id"].tolist() == [on_demo]
    for run in deleted:
        assert not run_folder(demo.url, run).exists()
    demo.delete_run(on_demo)
    assert row_counts(demo) == before  # the upload, its series and values, all gone


def test_a_project_with_runs_is_refused_unless_cascade(demo: hydrorl.Workbench) -> None:
    demo.create_project("Demo river", "empty")
    assert demo.delete_project("empty") == []  # no runs: as before
    before = row_counts(demo)
    demo.create_project("Demo river", "trials")
    run = written_run(demo, project="trials")
    evaluation = written_evaluation(demo, run)
    other = written_run(demo)  # of the demo project: it stays
    with pytest.raises(InUseError, match=f"project 'trials' has 2 run\\(s\\): run {run} "):
        demo.delete_project("trials")
    assert demo.delete_project(demo.project("trials"), cascade=True) == [run, evaluation]
    assert "trials" not in set(demo.projects()["name"])
    assert not run_folder(demo.url, run).exists() and run_folder(demo.url, other).exists()
    demo.delete_run(other)
    assert row_counts(demo) == before


def test_a_system_deleted_with_cascade_takes_its_runs_folders(demo: hydrorl.Workbench) -> None:
    run = written_run(demo)
    evaluation = written_evaluation(demo, run)
    demo.delete_system("Demo river", cascade=True)
    assert not run_folder(demo.url, run).exists() and not run_folder(demo.url, evaluation).exists()
    counts = row_counts(demo)
    assert {t: n for t, n in counts.items() if n and t != "alembic_version"} == {}


def test_renaming_runs_forecasts_and_projects(demo: hydrorl.Workbench) -> None:
    run = written_run(demo)
    other = written_run(demo)
    renamed = demo.rename_run(run, "  baseline ")
    assert renamed.name == "baseline" and renamed.label == f"run {run} 'baseline'"
    with pytest.raises(
        AlreadyExistsError, match=f"already has a run named 'baseline' \\(run {run}\\)"
    ):
        demo.rename_run(other, "baseline")
    demo.rename_run(run, "baseline")  # its own name again: no conflict
    demo.create_project("Demo river", "trials")
    elsewhere = written_run(demo, project="trials")
    assert demo.rename_run(elsewhere, "baseline").name == "baseline"  # another project's
    with pytest.raises(ValidationError, match="at most 200"):
        demo.rename_run(other, "x" * 201)
    assert demo.rename_run(other, "").name is None
    assert demo.runs()["name"].tolist() == ["baseline", None, "baseline"]

    demo.upload_forecast("Demo river", long_forecast(scenarios=2, steps=24), "spring")
    with pytest.raises(AlreadyExistsError, match="already has a forecast named 'spring'"):
        demo.rename_forecast("Demo forecast", "spring")
    info = demo.rename_forecast("Demo forecast", "Winter 2027")
    assert info.name == "Winter 2027" and info.n_steps == demo.forecast(info.id).n_steps
    assert set(demo.runs()["forecast"]) == {"Winter 2027"}  # the runs follow it
    with pytest.raises(hydrorl.ValidationError, match="non-empty"):
        demo.rename_forecast("spring", " ")

    with pytest.raises(AlreadyExistsError, match="already has a project named 'trials'"):
        demo.rename_project("Demo project", "trials")
    project = demo.rename_project(demo.project("Demo project"), "Cascade study")
    assert project.name == "Cascade study"
    assert demo.runs()["project"].tolist() == ["Cascade study", "Cascade study", "trials"]
    with pytest.raises(NotFoundError, match="no project 'Demo project'"):
        demo.project("Demo project")


def test_runs_lists_settings_scores_and_durations(demo: hydrorl.Workbench) -> None:
    run = written_run(demo, validations=(0.7, 0.93, np.nan))
    evaluation = written_evaluation(demo, run)
    frame = demo.runs().set_index("id")
    train, evaluate = frame.loc[run], frame.loc[evaluation]
    assert (train["algorithm"], train["timesteps"], train["agents"]) == ("PPO", 1024, 3)
    assert train["hyperparameters"] == {"n_steps": 64, "learning_rate": 3e-4}
    assert train["settings"]["hyperparameters"] == train["hyperparameters"]
    assert train["duration_s"] == pytest.approx(90.0)
    assert train["best_validation"] == pytest.approx(0.93)  # its best agent's
    assert np.isnan(train["share_of_bound"]) and train["episodes"] == 0
    assert evaluate["share_of_bound"] == pytest.approx(np.mean([0.90, 0.91]))  # two scenarios
    assert evaluate["episodes"] == 2 and evaluate["evaluated_agent"] == 0
    assert np.isnan(evaluate["best_validation"]) and np.isnan(evaluate["duration_s"])
    assert frame.loc[evaluation, "source_run_id"] == run
    # The columns every earlier caller read are still there, first and in order.
    assert list(frame.reset_index().columns[:12]) == [
        "id",
        "project",
        "forecast",
        "kind",
        "status",
        "status_reason",
        "agents",
        "source_run_id",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    ]
    assert demo.runs("Demo project")["id"].tolist() == [run, evaluation]


def test_a_real_tiny_run_goes_with_its_folder(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRORL_HEARTBEAT_S", "0.5")
    wb = hydrorl.connect(str(db_path))
    try:
        wb.setup_demo(scenarios=2, years=1)
        before = row_counts(wb)
        run = wb.start_training("Demo project", "Demo forecast", **TINY_TRAINING)
        with pytest.raises(InUseError, match="stop it first"):
            wb.delete_run(run)  # queued or running: refused
        info = wb.wait(run.id, timeout=120)
        assert info.status == "completed", (info.status_reason, info.error)
        folder = run_folder(wb.url, run.id)
        assert (folder / "agent-0" / "last.zip").is_file() and (folder / "shared").is_dir()
        assert wb.curve_points(run.id) > 0
        assert wb.delete_run(info) == [run.id]
        assert not folder.exists()
        assert row_counts(wb) == before
    finally:
        kill_processes_of(wb)
        wb.close()


def test_a_read_after_the_watermark_is_the_rest_of_the_whole_read(
    demo: hydrorl.Workbench,
) -> None:
    """``curves(after_id=watermark)`` (one part per agent seen, one for the others) returns
    exactly the points of the whole read past each agent's own watermark, for one series or
    all, every point or one in ``every``; a watermark naming one agent leaves the other's whole."""
    run = written_run(demo)
    for series in ("episode_reward", None):
        for every in (1, 3):
            whole = demo.curves(run, series, every=every)
            assert len(whole) and set(whole["agent"]) == {0, 1}
            ids = whole.groupby("agent")["id"]
            for mark in (
                {0: int(ids.min()[0]), 1: int(ids.max()[1])},  # agent 1 read to its end
                {0: int(ids.median()[0]), 1: int(ids.median()[1])},
                {1: int(ids.median()[1])},  # agent 0 not seen yet
            ):
                got = demo.curves(run, series, after_id=mark, every=every)
                past = whole["id"] > whole["agent"].map(mark).fillna(0)
                expected = whole[past].reset_index(drop=True)
                pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
                assert got["id"].is_monotonic_increasing
                assert got.attrs["watermark"] == {
                    **mark,
                    **{int(k): int(v) for k, v in expected.groupby("agent")["id"].max().items()},
                }
