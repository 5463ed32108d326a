"""The supervisor process of a training run: starts one process per agent and watches them."""

from __future__ import annotations

import signal
import subprocess
import time

import sqlalchemy as sa

from hydrorl.db import Database, models
from hydrorl.db.models import ControlCommand, Status, utcnow
from hydrorl.jobs.heartbeat import Heartbeat
from hydrorl.jobs.ownership import claim, fail_with_traceback
from hydrorl.jobs.reaper import reap_stale
from hydrorl.jobs.status import ACTIVE, transition
from hydrorl.training.agent import run_folder
from hydrorl.training.process import log_tail, spawn

POLL_SECONDS = 0.5
REAP_SECONDS = 10.0


def supervise(url: str, run_id: int) -> int:
    db = Database(url)
    try:
        return _supervise(db, url, run_id)
    except BaseException as e:
        fail_with_traceback(db, models.ProjectRun, run_id, e, prefix="supervisor error: ")
        return 1
    finally:
        db.dispose()


def _supervise(db: Database, url: str, run_id: int) -> int:
    started = claim(db, models.ProjectRun, run_id)
    if not started:
        return 3
    folder = run_folder(url, run_id)
    with db.read() as session:
        queued = session.execute(
            sa.select(models.Agent.id, models.Agent.index).where(
                models.Agent.run_id == run_id, models.Agent.status == Status.QUEUED
            )
        ).all()
    children: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
    with Heartbeat(db, models.ProjectRun, run_id):
        for agent_id, index in queued:
            log = folder / f"agent-{index}.log"
            children[agent_id] = (spawn("agent", url, agent_id, log, detach=False), index)
        stop_requested = False
        next_reap = time.monotonic() + REAP_SECONDS
        while children:
            time.sleep(POLL_SECONDS)
            for agent_id, (proc, index) in list(children.items()):
                code = proc.poll()
                if code is None:
                    continue
                del children[agent_id]
                _agent_exited(db, agent_id, code, folder / f"agent-{index}.log")
            if not stop_requested and _take_stop(db, run_id):
                stop_requested = True
            if time.monotonic() > next_reap:
                db.run_write(lambda s: reap_stale(s))
                next_reap = time.monotonic() + REAP_SECONDS
    _finish(db, run_id, stop_requested)
    return 0


def _agent_exited(db: Database, agent_id: int, code: int, log) -> None:  # noqa: ANN001
    """A child ended: if its row still says it works, it died; say how."""
    how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    tail = log_tail(log)
    db.run_write(
        lambda s: transition(
            s,
            models.Agent,
            agent_id,
            Status.FAILED,
            finished_at=utcnow(),
            status_reason=f"agent process ended without reporting ({how})",
            error=f"agent process ended without reporting ({how}); last lines of its log:\n{tail}",
        )
    )


def _take_stop(db: Database, run_id: int) -> bool:
    """Handle a pending stop of the run: mark it, and ask every active agent to stop."""

    def work(session) -> bool:  # noqa: ANN001
        pending = (
            session.execute(
                sa.select(models.ProjectRunControl.id).where(
                    models.ProjectRunControl.run_id == run_id,
                    models.ProjectRunControl.handled_at.is_(None),
                )
            )
            .scalars()
            .all()
        )
        if not pending:
            return False
        session.execute(
            sa.update(models.ProjectRunControl)
            .where(models.ProjectRunControl.id.in_(pending))
            .values(handled_at=utcnow())
        )
        transition(
            session, models.ProjectRun, run_id, Status.STOPPING, status_reason="stop requested"
        )
        active = (
            session.execute(
                sa.select(models.Agent.id).where(
                    models.Agent.run_id == run_id, models.Agent.status.in_(ACTIVE)
                )
            )
            .scalars()
            .all()
        )
        session.add_all(
            [models.AgentControl(agent_id=a, command=ControlCommand.STOP) for a in active]
        )
        return True

    return db.run_write(work)


def _finish(db: Database, run_id: int, stop_requested: bool) -> None:
    with db.read() as session:
        agents = session.execute(
            sa.select(models.Agent.index, models.Agent.status, models.Agent.status_reason)
            .where(models.Agent.run_id == run_id)
            .order_by(models.Agent.index)
        ).all()
    failed = [(i, reason) for i, status, reason in agents if status == Status.FAILED]
    stopped = [i for i, status, _ in agents if status == Status.STOPPED]
    if failed:
        final = Status.FAILED
        reason = "; ".join(f"agent {i} failed: {r}" for i, r in failed)
    elif stop_requested or (stopped and len(stopped) == len(agents)):
        final, reason = Status.STOPPED, "stop requested" if stop_requested else "all agents stopped"
    else:
        final = Status.COMPLETED
        reason = f"agents {', '.join(map(str, stopped))} stopped early" if stopped else ""
    db.run_write(
        lambda s: transition(
            s, models.ProjectRun, run_id, final, status_reason=reason, finished_at=utcnow()
        )
    )
