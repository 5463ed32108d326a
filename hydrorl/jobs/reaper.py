"""Moving runs and agents whose process is gone to ``failed``, with the reason.

Looking is a read; only what is found dead is written, so readers that look often
(a dashboard's refresh, ``wb.run``) cause no write storm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl import settings
from hydrorl.db import models
from hydrorl.db.models import Status, utcnow
from hydrorl.jobs.liveness import Owner, Verdict, judge, process_alive
from hydrorl.jobs.status import ACTIVE, transition

__all__ = ["Reaped", "find_stale", "process_alive", "reap_stale", "run_summary"]


@dataclasses.dataclass(frozen=True)
class Reaped:
    kind: str  # "run" or "agent"
    id: int
    reason: str


def find_stale(
    session: Session,
    now: dt.datetime | None = None,
    stale_after: dt.timedelta | None = None,
    *,
    start_grace: dt.timedelta | None = None,
    check_processes: bool = True,
) -> list[Reaped]:
    """Active runs and agents whose process is gone or silent for too long (a read only).

    See :mod:`hydrorl.jobs.liveness`: a process of this host is judged by its pid and
    start; others by their heartbeat, or, before the first one, by the start-up grace
    counted from when the row was queued.
    """
    now = now or utcnow()
    stale_after = stale_after or dt.timedelta(seconds=settings.stale_after_seconds())
    start_grace = start_grace or dt.timedelta(seconds=settings.start_grace_seconds())
    host = socket.gethostname()
    found: list[Reaped] = []
    run = models.ProjectRun
    queries: dict[str, tuple[Any, Any]] = {
        "agent": (
            models.Agent,
            sa.func.coalesce(models.Agent.queued_at, run.queued_at, run.created_at),
        ),
        "run": (run, sa.func.coalesce(run.queued_at, run.created_at)),
    }
    for kind, (model, waiting) in queries.items():
        query = sa.select(
            model.id, model.host, model.pid, model.process_start, model.heartbeat_at, waiting
        ).where(model.status.in_(ACTIVE))
        if kind == "agent":
            query = query.join(run, model.run_id == run.id)
        for row_id, row_host, pid, start, heartbeat, since in session.execute(query):
            owner = Owner(row_host, pid, start, heartbeat, since)
            verdict = judge(
                owner,
                now,
                stale_after=stale_after,
                start_grace=start_grace,
                host=host,
                check_processes=check_processes,
            )
            if verdict == Verdict.GONE:
                reason = f"process {pid} on {host} is gone (last heartbeat {_fmt(heartbeat)})"
            elif verdict == Verdict.STALE and heartbeat is not None:
                reason = f"no heartbeat since {_fmt(heartbeat)} UTC (stale after {stale_after})"
            elif verdict == Verdict.STALE:
                reason = (
                    f"no heartbeat ever; queued since {_fmt(since)} UTC "
                    f"(start-up grace {start_grace})"
                )
            else:
                continue
            found.append(Reaped(kind, row_id, reason))
    return found


def reap_stale(
    session: Session,
    now: dt.datetime | None = None,
    stale_after: dt.timedelta | None = None,
    *,
    start_grace: dt.timedelta | None = None,
    check_processes: bool = True,
) -> list[Reaped]:
    """Fail every active run or agent :func:`find_stale` finds, with the reason; a run
    whose agent failed says so at once.  ``now`` is injectable for tests; the caller
    commits."""
    now = now or utcnow()
    found = find_stale(
        session, now, stale_after, start_grace=start_grace, check_processes=check_processes
    )
    reaped: list[Reaped] = []
    runs_touched: set[int] = set()
    for item in found:
        model = models.Agent if item.kind == "agent" else models.ProjectRun
        if transition(
            session, model, item.id, Status.FAILED, status_reason=item.reason, finished_at=now
        ):
            reaped.append(item)
            if item.kind == "agent":
                run_id = session.scalar(sa.select(models.Agent.run_id).where(model.id == item.id))
                if run_id is not None:
                    runs_touched.add(run_id)
            else:
                _fail_waiting_agents(session, item.id, now)
    for run_id in runs_touched:
        session.execute(
            sa.update(models.ProjectRun)
            .where(models.ProjectRun.id == run_id, models.ProjectRun.status.in_(ACTIVE))
            .values(status_reason=run_summary(session, run_id))
        )
    return reaped


def _fail_waiting_agents(session: Session, run_id: int, now: dt.datetime) -> None:
    """Agents of a dead run that no process ever took will never start: say so."""
    session.execute(
        sa.update(models.Agent)
        .where(
            models.Agent.run_id == run_id,
            models.Agent.status == Status.QUEUED,
            models.Agent.pid.is_(None),
        )
        .values(
            status=Status.FAILED,
            status_reason="its run's supervisor is gone",
            finished_at=now,
        )
    )


def run_summary(session: Session, run_id: int) -> str:
    """What a run's agents are doing, for the run's reason (see :func:`summarise`)."""
    return summarise(agent_states(session, run_id))


def agent_states(session: Session, run_id: int) -> list[tuple[int, Status, str]]:
    """(index, status, reason) of each agent of a run, in index order."""
    rows = session.execute(
        sa.select(models.Agent.index, models.Agent.status, models.Agent.status_reason)
        .where(models.Agent.run_id == run_id)
        .order_by(models.Agent.index)
    ).all()
    return [(i, status, reason) for i, status, reason in rows]


def summarise(rows: list[tuple[int, Status, str]]) -> str:
    """``"agent 1 failed: ...; 4 still running"`` from :func:`agent_states`; empty while
    nothing is worth saying."""
    parts = [f"agent {i} failed: {reason}" for i, status, reason in rows if status == Status.FAILED]
    stopped = [str(i) for i, status, _ in rows if status == Status.STOPPED]
    if stopped and parts:
        parts.append(f"agent{'s' if len(stopped) > 1 else ''} {', '.join(stopped)} stopped")
    if not parts:
        return ""
    active = sum(1 for _, status, _ in rows if status in ACTIVE)
    if active:
        parts.append(f"{active} still running")
    return "; ".join(parts)


def _fmt(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
