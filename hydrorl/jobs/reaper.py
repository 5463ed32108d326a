"""Moving runs and agents whose process is gone to ``failed``, with the reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl import settings
from hydrorl.db import models
from hydrorl.db.models import Status, utcnow
from hydrorl.jobs.status import ACTIVE, transition


@dataclasses.dataclass(frozen=True)
class Reaped:
    kind: str  # "run" or "agent"
    id: int
    reason: str


def process_alive(pid: int | None) -> bool:
    """Whether a process of this machine with that id exists (and is not a zombie)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def reap_stale(
    session: Session,
    now: dt.datetime | None = None,
    stale_after: dt.timedelta | None = None,
    *,
    check_processes: bool = True,
) -> list[Reaped]:
    """Fail every active run or agent whose heartbeat is older than ``stale_after``.

    Without any heartbeat the start (or creation) time counts.  On this machine a
    row whose process id no longer exists is failed at once.  ``now`` is
    injectable for tests; the caller commits.
    """
    now = now or utcnow()
    stale_after = stale_after or dt.timedelta(seconds=settings.stale_after_seconds())
    host = socket.gethostname()
    reaped: list[Reaped] = []
    run, agent = models.ProjectRun, models.Agent
    queries: dict[str, tuple[Any, Any]] = {
        "agent": (
            agent,
            sa.select(
                agent.id,
                agent.heartbeat_at,
                agent.started_at,
                run.created_at,
                agent.pid,
                agent.host,
            )
            .join(run, agent.run_id == run.id)
            .where(agent.status.in_(ACTIVE)),
        ),
        "run": (
            run,
            sa.select(
                run.id, run.heartbeat_at, run.started_at, run.created_at, run.pid, run.host
            ).where(run.status.in_(ACTIVE)),
        ),
    }
    for kind, (model, query) in queries.items():
        rows = session.execute(query).all()
        for row_id, heartbeat, started, created, pid, row_host in rows:
            last = heartbeat or started or created
            reason = None
            if check_processes and pid and row_host == host and not process_alive(pid):
                reason = f"process {pid} on {host} is gone (last heartbeat {_fmt(heartbeat)})"
            elif last is not None and now - last > stale_after:
                what = "heartbeat" if heartbeat else "heartbeat ever; started"
                reason = f"no {what} since {_fmt(last)} UTC (stale after {stale_after})"
            if reason and transition(
                session, model, row_id, Status.FAILED, status_reason=reason, finished_at=now
            ):
                reaped.append(Reaped(kind, row_id, reason))
    return reaped


def _fmt(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
