"""Job state: transitions, the reaper with an injected clock, SQLite under many processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import sqlalchemy as sa

import hydrorl
from hydrorl.db import models
from hydrorl.db.models import Status
from hydrorl.jobs.reaper import reap_stale
from hydrorl.jobs.status import ALLOWED, transition


def test_every_status_has_its_transitions_and_completed_is_final() -> None:
    assert set(ALLOWED) == set(Status)
    assert ALLOWED[Status.COMPLETED] == frozenset()
    assert Status.QUEUED in ALLOWED[Status.FAILED]  # resume


def _run_with_agent(wb: hydrorl.Workbench) -> tuple[int, int]:
    wb.setup_demo(scenarios=1, years=1)

    def create(session) -> tuple[int, int]:  # noqa: ANN001
        project = session.scalar(sa.select(models.Project))
        run = models.ProjectRun(
            project=project,
            forecast=session.scalar(sa.select(models.Forecast)),
            kind=models.RunKind.TRAIN,
            status=Status.QUEUED,
            settings={},
        )
        run.agents = [models.Agent(index=0, seed=0, status=Status.QUEUED)]
        session.add(run)
        session.flush()
        return run.id, run.agents[0].id

    return wb.database.run_write(create)


def test_transitions_are_conditional(wb: hydrorl.Workbench) -> None:
    run_id, _ = _run_with_agent(wb)
    with wb.database.write() as s:
        assert transition(s, models.ProjectRun, run_id, Status.RUNNING)
        assert not transition(s, models.ProjectRun, run_id, Status.QUEUED)  # not allowed
        assert transition(s, models.ProjectRun, run_id, Status.COMPLETED)
        assert not transition(s, models.ProjectRun, run_id, Status.FAILED)  # completed is final
    assert wb.run(run_id).status == "completed"


def test_the_reaper_fails_stale_work_with_the_reason(wb: hydrorl.Workbench) -> None:
    run_id, agent_id = _run_with_agent(wb)
    t0 = dt.datetime(2030, 1, 1, 12, 0, 0)
    with wb.database.write() as s:
        s.execute(sa.update(models.ProjectRun).values(status=Status.RUNNING, heartbeat_at=t0))
        s.execute(
            sa.update(models.Agent).values(
                status=Status.RUNNING, heartbeat_at=None, started_at=t0 - dt.timedelta(minutes=5)
            )
        )
    after = dt.timedelta(seconds=30)
    with wb.database.write() as s:  # 20 s after the run's heartbeat: the run is fine
        reaped = reap_stale(s, now=t0 + dt.timedelta(seconds=20), stale_after=after)
    assert [(r.kind, r.id) for r in reaped] == [("agent", agent_id)]
    agent = wb.agents(run_id).iloc[0]
    assert agent["status"] == "failed"
    assert agent["status_reason"].startswith("no heartbeat ever; queued since ")
    assert agent["status_reason"].endswith(" UTC (start-up grace 0:10:00)")
    with wb.database.write() as s:
        reaped = reap_stale(s, now=t0 + dt.timedelta(seconds=31), stale_after=after)
    assert [(r.kind, r.id) for r in reaped] == [("run", run_id)]
    info = wb.run(run_id)
    assert info.status == "failed"
    assert info.status_reason == "no heartbeat since 2030-01-01 12:00:00 UTC (stale after 0:00:30)"
    with wb.database.write() as s:
        assert reap_stale(s, now=t0 + dt.timedelta(hours=1), stale_after=after) == []


def test_the_reaper_sees_a_dead_process_at_once(wb: hydrorl.Workbench) -> None:
    import socket

    run_id, _ = _run_with_agent(wb)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with wb.database.write() as s:
        s.execute(
            sa.update(models.ProjectRun).values(
                status=Status.RUNNING,
                heartbeat_at=models.utcnow(),
                pid=gone.pid,
                host=socket.gethostname(),
            )
        )
    wb.reap()
    assert wb.run(run_id).status_reason.startswith(f"process {gone.pid} on ")
