"""Training and evaluation in real background processes, killed for real."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import hydrorl
from hydrorl.db import models
from tests.conftest import TINY_TRAINING, kill_processes_of

TINY = TINY_TRAINING


@pytest.fixture(autouse=True)
def _fast_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inherited by the worker processes: frequent heartbeats.
    monkeypatch.setenv("HYDRORL_HEARTBEAT_S", "0.5")


@pytest.fixture
def demo(wb: hydrorl.Workbench):  # noqa: ANN201
    wb.setup_demo(scenarios=2, years=1)
    yield wb
    kill_processes_of(wb)  # whatever a failed test left running, so no process outlives it


def wait_for(condition, timeout: float = 90.0, what: str = "condition"):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def learning(wb: hydrorl.Workbench, run_id: int, n: int = 2) -> pd.DataFrame:
    """Wait until ``n`` agents are running and have a checkpoint."""

    def ready() -> pd.DataFrame | None:
        agents = wb.agents(run_id)
        ok = (agents["status"] == "running") & agents["checkpoint_path"].notna()
        return agents if ok.sum() >= n else None

    try:
        return wait_for(ready, what="agents learning with a checkpoint")
    except AssertionError as e:
        columns = ["index", "status", "status_reason", "timesteps_done", "checkpoint_path", "error"]
        raise AssertionError(f"{e}: run {wb.run(run_id)}\n{wb.agents(run_id)[columns]}") from None


def integrity_ok(wb: hydrorl.Workbench) -> bool:
    url = sa.make_url(wb.url)
    if url.get_backend_name() != "sqlite":
        return True
    with sqlite3.connect(url.database) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_tiny_run_completes_with_curves_and_checkpoints(demo: hydrorl.Workbench) -> None:
    # The first start in a process imports Stable-Baselines3 to check the settings (seconds,
    # once per process, as in a notebook that trains); what must be quick is everything else.
    import stable_baselines3  # noqa: F401

    run = demo.start_training("Demo project", "Demo forecast", **TINY)
    assert run.status == "queued"  # it returns before any agent started (no timing asserted:
    # a loaded machine takes seconds to build the stand-in model that checks the settings)
    info = demo.wait(run.id, timeout=120)
    assert info.status == "completed", (info.status_reason, info.error)
    agents = demo.agents(run.id)
    assert agents["status"].tolist() == ["completed", "completed"]
    assert agents["timesteps_done"].tolist() == [1024, 1024]
    assert agents["seed"].tolist() == [0, 1]
    for path in agents["checkpoint_path"]:
        assert Path(path).is_file()
    curves = demo.curves(run.id)
    assert set(curves["agent"]) == {0, 1} and len(curves) >= 2 * 1024 // 32
    assert curves["id"].is_monotonic_increasing
    assert set(demo.curves(run.id, None)["series"]) >= {
        "episode_reward",
        "episode_value_eur",
        "loss",
        "entropy_loss",
    }
    newer = demo.curves(run.id, after_id=int(curves["id"].iloc[-10]))
    assert len(newer) == 9
    assert demo.runs().loc[0, "status"] == "completed"
    # What the workbench returned names the run as well as its id does.
    assert demo.agents(info).equals(demo.agents(run.id))
    assert len(demo.curves(info)) == len(curves)
    assert agents["phase"].tolist() == ["completed", "completed"]
    assert agents["progress"].tolist() == [1.0, 1.0] and agents["eta_s"].isna().all()
    _eta_comes_from_the_measured_rate(demo, run.id)


def _eta_comes_from_the_measured_rate(wb: hydrorl.Workbench, run_id: int) -> None:
    """An agent learning at 10 steps/s (its reward curve says so) at step 700 of 1024 is 32.4 s
    from its end; over its budget it shows 100 %, not more.  (The agent's row is made to say
    so, owned by this live process so that no reaper takes it for dead, then put back.)"""
    from hydrorl.jobs.liveness import owner_columns

    a, d, v = models.Agent, models.TrainStepData, models.TrainStepValue
    with wb.database.read() as session:
        row = session.scalars(sa.select(a).where(a.run_id == run_id, a.index == 0)).one()
        before = {c: getattr(row, c) for c in ("status", "pid", "host", "process_start")}

    def learning_at(done: int, points: list[tuple[int, float]]) -> None:
        def write(session) -> None:  # noqa: ANN001
            agent = session.scalars(sa.select(a).where(a.run_id == run_id, a.index == 0)).one()
            agent.status, agent.status_reason, agent.timesteps_done = "running", "", done
            for column, value in owner_columns().items():
                setattr(agent, column, value)
            data = session.scalars(
                sa.select(d).where(d.agent_id == agent.id, d.name == "episode_reward")
            ).one()
            every = sa.select(d.id).where(d.agent_id == agent.id)  # its losses too
            session.execute(sa.delete(v).where(v.data_id.in_(every)))
            for timestep, wall in points:
                session.add(v(data_id=data.id, timestep=timestep, wall_time=wall, value=0.0))

        wb.database.run_write(write)

    # The rate over the last minute or more: the first 100 s ran at 1 step/s, the last 60 s
    # at 10 steps/s.
    try:
        learning_at(600, [(0, 1000.0), (100, 1100.0), (400, 1130.0), (700, 1160.0)])
        agent = wb.agents(run_id).iloc[0]
        assert agent["phase"] == "learning"
        assert agent["eta_s"] == pytest.approx((1024 - 700) / 10.0)
        learning_at(1100, [(0, 1000.0), (1100, 1110.0)])
        agent = wb.agents(run_id).iloc[0]
        assert agent["progress"] == 1.0 and agent["eta_s"] == 0.0
    finally:

        def restore(session) -> None:  # noqa: ANN001
            agent = session.scalars(sa.select(a).where(a.run_id == run_id, a.index == 0)).one()
            for column, value in before.items():
                setattr(agent, column, value)

        wb.database.run_write(restore)


def test_two_databases_in_one_home_keep_their_run_files_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRORL_HEARTBEAT_S", "0.5")
    paths = []
    for name in ("main", "benchmark"):
        wb = hydrorl.connect(f"sqlite:///{tmp_path / name}.db")
        wb.setup_demo(scenarios=2, years=1)
        run = wb.start_training("Demo project", "Demo forecast", **{**TINY, "agents": 1})
        assert run.id == 1  # both databases have a run 1
        info = wb.wait(run.id, timeout=120)
        assert info.status == "completed", (info.status_reason, info.error)
        paths.append(Path(wb.agents(run.id)["checkpoint_path"].iloc[0]))
        wb.close()
    assert paths[0] != paths[1] and all(p.is_file() for p in paths)
    assert paths[0].is_relative_to(tmp_path / "home" / "runs")
    assert paths[0].parent.parent.name == "1" and paths[0].parent.parent.parent.name.startswith(
        "main-"
    )


def test_stop_is_honoured_within_five_seconds(demo: hydrorl.Workbench) -> None:
    run = demo.start_training("Demo project", "Demo forecast", **{**TINY, "timesteps": 10**7})
    learning(demo, run.id)
    demo.stop(run.id, agent=0)
    wait_for(lambda: demo.agents(run.id).loc[0, "status"] == "stopped", 5.0, "agent 0 to stop")
    assert demo.agents(run.id).loc[1, "status"] == "running"
    asked = time.monotonic()
    demo.stop(run.id)
    wait_for(lambda: demo.run(run.id).status == "stopped", 5.0, "the run to stop")
    assert time.monotonic() - asked <= 5.0
    agents = demo.agents(run.id)
    assert agents["status"].tolist() == ["stopped", "stopped"]
    assert all(Path(p).is_file() for p in agents["checkpoint_path"])
    assert demo.run(run.id).status_reason == "stop requested"


def test_an_agent_shows_its_imitation_and_stops_during_it(demo: hydrorl.Workbench) -> None:
    imitating = {
        "guide": "none",
        "imitation_scenarios": 2,
        "imitation_rounds": 1,
        "imitation_lookahead_days": 28,
    }
    run = demo.start_training("Demo project", "Demo forecast", **{**TINY, **imitating})

    def reason() -> str | None:
        text = demo.agents(run.id).loc[0, "status_reason"]
        return text if text.startswith("imitating the planner: pass 1 of 2") else None

    shown = wait_for(reason, what="agent 0 to show its imitation")
    assert "the planner's path" in shown
    assert demo.agents(run.id).loc[0, "timesteps_done"] == 0  # no step of learning yet
    demo.stop(run.id, agent=0)
    wait_for(lambda: demo.agents(run.id).loc[0, "status"] == "stopped", 5.0, "agent 0 to stop")
    agent = demo.agents(run.id).loc[0]
    assert agent["status_reason"] == "stop requested"
    assert agent["checkpoint_path"] is None  # stopped before it learnt: a resume starts afresh
    demo.stop(run.id)
    wait_for(lambda: demo.run(run.id).status == "stopped", 10.0, "the run to stop")


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def test_a_killed_agent_is_seen_at_once_and_the_run_resumes(demo: hydrorl.Workbench) -> None:
    run = demo.start_training("Demo project", "Demo forecast", **{**TINY, "timesteps": 6144})
    agents = learning(demo, run.id)
    _kill(int(agents.loc[0, "pid"]))
    # A reader may see the pid gone before the supervisor reaps its child: either says so.
    failed = wait_for(lambda: demo.agents(run.id).loc[0, "status"] == "failed", 30.0, "failure")
    assert failed

    # Then the supervisor, which waits on its agents, says how it ended: the signal, the log
    # (tests/test_reliability.py holds the order where a reader saw the death first).
    def told() -> str | None:
        text = demo.agents(run.id).loc[0, "status_reason"]
        return text if "SIGKILL" in text else None

    reason = wait_for(told, 60.0, "the supervisor's reason")
    assert reason.startswith("agent process ended without reporting (killed by signal SIGKILL)")
    assert "SIGKILL" in demo.agents(run.id).loc[0, "error"]
    info = demo.wait(run.id, timeout=120)
    assert info.status == "failed" and "agent 0 failed" in info.status_reason
    assert integrity_ok(demo)
    before = demo.agents(run.id).loc[0, "timesteps_done"]
    assert 0 < before < 6144
    resumed = demo.resume(run.id)
    assert resumed.status == "queued"
    info = demo.wait(run.id, timeout=120)
    assert info.status == "completed", (info.status_reason, info.error)
    agents = demo.agents(run.id)
    assert agents["timesteps_done"].tolist() == [6144, 6144]
    # The resumed agent went on from its checkpoint, and no point was written twice.
    updates = demo.curves(run.id, "n_updates")
    for _, points in updates.groupby("agent"):
        assert points["timestep"].is_unique and points["timestep"].is_monotonic_increasing
        assert points["value"].is_monotonic_increasing


def test_a_killed_supervisor_is_found_out_and_the_run_resumes(demo: hydrorl.Workbench) -> None:
    run = demo.start_training("Demo project", "Demo forecast", **{**TINY, "timesteps": 10**7})
    learning(demo, run.id)
    with demo.database.read() as session:
        supervisor = session.get(models.ProjectRun, run.id).pid
    _kill(supervisor)
    # The agents notice their supervisor is gone and stop, keeping their checkpoints.
    wait_for(lambda: set(demo.agents(run.id)["status"]) == {"stopped"}, 10.0, "agents to stop")
    reasons = set(demo.agents(run.id)["status_reason"])
    assert reasons == {"the supervisor process is gone"}
    # The run itself is failed by the reaper, with the reason.
    demo.reap()
    info = demo.run(run.id)
    assert info.status == "failed" and f"process {supervisor}" in info.status_reason
    assert integrity_ok(demo)
    demo.resume(run.id)
    learning(demo, run.id)
    demo.stop(run.id)
    assert demo.wait(run.id, timeout=30).status == "stopped"


def test_an_agent_exception_reaches_the_run_status_with_its_traceback(
    demo: hydrorl.Workbench,
) -> None:
    run = demo.start_training(
        "Demo project", "Demo forecast", **{**TINY, "callbacks": ("tests.helpers:Exploding",)}
    )
    info = demo.wait(run.id, timeout=120)
    assert info.status == "failed"
    assert "agent 0 failed: RuntimeError: boom from a user callback" in info.status_reason
    agents = demo.agents(run.id)
    assert "Traceback" in agents.loc[0, "error"]
    assert "boom from a user callback" in agents.loc[1, "error"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "DQN"}, "unknown algorithm 'DQN'"),
        ({"agents": 0}, "agents = 0 must be an integer >= 1"),
        ({"start_volumes": [10.0, 30.0, 5.0]}, "start volume of reservoir 'Hoegfjell' = 10.0"),
        ({"start_volumes": {"Atlantis": 1.0}}, "no reservoir 'Atlantis'"),
        ({"agents": 1000}, "agents = 1000 is more than the maximum 64"),
        ({"agnets": 2}, "unknown setting\\(s\\) 'agnets' \\(did you mean 'agents'\\?\\)"),
        (
            {"hyperparameters": {"n_step": 8}},
            "A2C has no hyper-parameter 'n_step' \\(did you mean 'n_steps'\\?\\)",
        ),
        ({"hyperparameters": {"n_steps": -1}}, "n_steps = -1 must be an integer >= 1"),
        (
            {"algorithm": "PPO", "imitation_scenarios": 0, "hyperparameters": {"batch_size": 1}},
            "hyperparameters {'batch_size': 1} are not usable by PPO",
        ),
        ({"hyperparameters": {"learning_rate": "fast"}}, "are not usable by A2C"),
        ({"callbacks": ["os:nothing_here"]}, "callback 'os:nothing_here' cannot be imported"),
        ({"callbacks": ["os:getcwd"]}, "is not a stable_baselines3 BaseCallback"),
    ],
)
def test_bad_settings_are_refused_before_any_process(
    demo: hydrorl.Workbench, kwargs: dict, message: str
) -> None:
    with pytest.raises(hydrorl.ValidationError, match=message):
        demo.start_training("Demo project", "Demo forecast", **kwargs)
    assert demo.runs().empty


def test_a_forecast_of_another_system_is_refused(demo: hydrorl.Workbench) -> None:
    from tests.conftest import long_forecast, two_reservoir_system

    demo.create_system(two_reservoir_system())
    demo.upload_forecast("Twin", long_forecast(), "twin forecast")
    with pytest.raises(hydrorl.NotFoundError, match="no forecast 'twin forecast' in system"):
        demo.start_training("Demo project", "twin forecast")
    assert demo.runs().empty


def test_evaluation_writes_one_episode_per_scenario(demo: hydrorl.Workbench) -> None:
    run = demo.start_training("Demo project", "Demo forecast", **TINY)
    assert demo.wait(run.id, timeout=120).status == "completed"
    agents = demo.agents(run.id)
    assert agents["best_validation"].between(0.0, 1.0).all()  # a share of the bound
    best = agents["best_validation"].idxmax()  # the best validated agent is evaluated
    evaluation = demo.evaluate(run.id)
    info = demo.wait(evaluation.id, timeout=120)
    assert info.status == "completed", (info.status_reason, info.error)
    episodes = demo.episodes(evaluation.id)
    assert episodes["scenario"].tolist() == ["S01", "S02"]
    assert (episodes["agent"] == best).all()
    assert (episodes["total_eur"] <= episodes["bound_eur"]).all()
    assert (episodes["benchmark_eur"] <= episodes["bound_eur"]).all()
    assert (episodes["planner_eur"] <= episodes["bound_eur"]).all()
    best_classical = episodes[["benchmark_eur", "planner_eur"]].max(axis=1)
    assert episodes["vs_best_classical"].to_numpy() == pytest.approx(
        (episodes["total_eur"] / best_classical).to_numpy()
    )
    # A guided agent that has hardly learnt plays about as its planner (the same forecast here).
    assert (episodes["total_eur"] / episodes["planner_eur"]).between(0.98, 1.02).all()
    series = demo.episode_series(int(episodes["id"].iloc[1]))
    assert len(series) == 2920
    assert series["revenue_eur"].sum() == pytest.approx(episodes["revenue_eur"].iloc[1])
    assert {
        "volume_mm3:Hoegfjell",
        "bound:volume_mm3:Hoegfjell",
        "benchmark:discharge_m3s:Hoegfjell PS",
        "price_eur_mwh",
    } <= set(series.columns)
    with pytest.raises(hydrorl.ValidationError, match="only failed or stopped runs"):
        demo.resume(run.id)


def test_a_stop_between_imitation_passes_keeps_them_and_a_resume_goes_on(
    demo: hydrorl.Workbench,
) -> None:
    imitating = {
        "algorithm": "A2C",
        "guide": "none",
        "hyperparameters": {"n_steps": 8},
        "imitation_scenarios": 2,
        "imitation_rounds": 1,
        "imitation_window_days": 60,
        "agents": 1,
    }
    run = demo.start_training("Demo project", "Demo forecast", **{**TINY, **imitating})

    def second_pass() -> bool:
        reason = demo.agents(run.id).loc[0, "status_reason"]
        return reason.startswith("imitating the planner: pass 2 of 2")

    wait_for(second_pass, what="agent 0 to begin its second imitation pass")
    demo.stop(run.id)
    wait_for(lambda: demo.run(run.id).status == "stopped", 10.0, "the run to stop")
    agent = demo.agents(run.id).loc[0]
    assert agent["checkpoint_path"] is not None  # the first pass is kept
    folder = Path(agent["checkpoint_path"]).parent
    assert json.loads((folder / "imitation.json").read_text())["passes_done"] == 1
    curves = demo.curves(run.id, None)
    validation = curves[curves["series"] == "validation/share_of_bound"]
    assert len(validation) == 2  # the fresh policy, then after the first pass
    assert validation["value"].between(0.0, 100.0).all()
    assert validation["value"].iloc[-1] > validation["value"].iloc[0]  # imitation taught it
    losses = curves[curves["series"] == "imitation/actor_loss"]
    assert losses["timestep"].tolist() == list(range(1, 41))  # epochs of the first fit

    demo.resume(run.id)
    info = demo.wait(run.id, timeout=300)
    assert info.status == "completed", (info.status_reason, info.error)
    curves = demo.curves(run.id, None)
    losses = curves[curves["series"] == "imitation/actor_loss"]
    assert losses["timestep"].tolist() == list(range(1, 81))  # pass 1 kept, not redone
    assert json.loads((folder / "imitation.json").read_text())["passes_done"] == 2
    references = set(curves["series"]) & {
        "reference/sdp_share_of_bound",
        "reference/planner_share_of_bound",
    }
    assert len(references) == 2
    best = demo.agents(run.id).loc[0, "best_validation"]
    shares = curves[curves["series"] == "validation/share_of_bound"]["value"]
    assert best == pytest.approx(shares.max() / 100.0)  # the best checkpoint is the best validated
