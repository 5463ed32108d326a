"""The supervisor process of a training run: starts one process per agent and watches them.

The run's state follows its agents' rows, not their processes: it is settled as soon
as every agent has reported (an interpreter tearing torch down may take seconds
more), and a failed agent shows on the run at once.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import Database, models
from hydrorl.db.models import Status, utcnow
from hydrorl.db.runs import run_executor
from hydrorl.jobs.heartbeat import Heartbeat
from hydrorl.jobs.ownership import claim, fail_with_traceback, record_owner
from hydrorl.jobs.reaper import agent_states, reap_stale, summarise
from hydrorl.jobs.status import FINAL, transition
from hydrorl.launchers import Launched, launcher_for
from hydrorl.training.agent import run_folder

POLL_SECONDS = 0.5
REAP_SECONDS = 10.0
#: How long agents that have reported may take to exit before they are killed.
EXIT_SECONDS = 60.0


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
        executor = run_executor(session, run_id)
        queued = session.execute(
            sa.select(models.Agent.id, models.Agent.index).where(
                models.Agent.run_id == run_id, models.Agent.status == Status.QUEUED
            )
        ).all()
    launcher = launcher_for(executor)
    children: dict[int, Launched] = {}
    with Heartbeat(db, models.ProjectRun, run_id):
        for agent_id, index in queued:
            process = launcher.start(
                "agent", url, agent_id, folder / f"agent-{index}.log", detach=False
            )
            if process.pid is not None:
                record_owner(db, models.Agent, agent_id, process.pid)
            children[agent_id] = process
        shown = ""
        next_reap = time.monotonic() + REAP_SECONDS
        while True:
            for agent_id, process in list(children.items()):
                code = process.poll()
                if code is not None:
                    del children[agent_id]
                    _agent_exited(db, agent_id, code, process)
            run_status, statuses, summary = _look(db, run_id)
            if all(s in FINAL for s in statuses):
                break
            if summary != shown and run_status == Status.RUNNING:
                _show(db, run_id, summary)
                shown = summary
            if time.monotonic() > next_reap:
                db.run_write(lambda s: reap_stale(s))
                next_reap = time.monotonic() + REAP_SECONDS
            time.sleep(POLL_SECONDS)
        _finish(db, run_id, stop_requested=run_status == Status.STOPPING)
    _await_exit(children)
    return 0


def _look(db: Database, run_id: int) -> tuple[Status | None, list[Status], str]:
    """The run's status, its agents' statuses and the summary for its reason: one read."""
    with db.read() as session:
        run_status = session.scalar(
            sa.select(models.ProjectRun.status).where(models.ProjectRun.id == run_id)
        )
        rows = agent_states(session, run_id)
    return run_status, [status for _, status, _ in rows], summarise(rows)


def _show(db: Database, run_id: int, summary: str) -> None:
    db.run_write(
        lambda s: s.execute(
            sa.update(models.ProjectRun)
            .where(models.ProjectRun.id == run_id, models.ProjectRun.status == Status.RUNNING)
            .values(status_reason=summary)
        )
    )


def _agent_exited(db: Database, agent_id: int, code: int, process: Launched) -> None:
    """A child ended: if its row still says it works, it died; say how."""
    how = process.how_it_ended(code)
    tail = process.output_tail()
    said = {
        "status_reason": f"agent process ended without reporting ({how})",
        "error": f"agent process ended without reporting ({how}); last lines of its log:\n{tail}",
    }

    def write(session: Session) -> None:
        if transition(session, models.Agent, agent_id, Status.FAILED, finished_at=utcnow(), **said):
            return
        # A reader's reaper may have seen the pid gone first; the supervisor knows more (the
        # signal, the log): it says so where the reaper left no error.
        session.execute(
            sa.update(models.Agent)
            .where(
                models.Agent.id == agent_id,
                models.Agent.status == Status.FAILED,
                models.Agent.error.is_(None),
            )
            .values(**said)
        )

    db.run_write(write)


def _await_exit(children: dict[int, Launched]) -> None:
    """Let agents that have reported finish exiting; kill those that hang."""
    deadline = time.monotonic() + EXIT_SECONDS
    for process in children.values():
        if not process.wait(deadline - time.monotonic()):
            process.kill()


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
