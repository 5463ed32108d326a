"""How a worker process takes a queued row, and how it hands it back when it fails."""

from __future__ import annotations

import traceback

import sqlalchemy as sa

from hydrorl.db import Database, models
from hydrorl.db.models import Status, utcnow
from hydrorl.jobs.liveness import owner_columns
from hydrorl.jobs.status import transition

Job = type[models.ProjectRun] | type[models.Agent]


def claim(db: Database, model: Job, row_id: int) -> bool:
    """Move a queued row to running, owned by this process; False if it is not ours to take."""
    return db.run_write(
        lambda s: transition(
            s,
            model,
            row_id,
            Status.RUNNING,
            **owner_columns(),
            started_at=utcnow(),
            heartbeat_at=utcnow(),
            error=None,
            status_reason="",
        )
    )


def record_owner(db: Database, model: Job, row_id: int, pid: int) -> None:
    """Name the process just started for a queued row as its owner, so that from its first
    moment it is judged alive by its pid, not by a heartbeat it cannot write yet."""
    db.run_write(
        lambda s: s.execute(
            sa.update(model)
            .where(model.id == row_id, model.status == Status.QUEUED, model.pid.is_(None))
            .values(**owner_columns(pid))
        )
    )


def finish(db: Database, model: Job, row_id: int, status: Status, reason: str = "") -> None:
    db.run_write(
        lambda s: transition(s, model, row_id, status, status_reason=reason, finished_at=utcnow())
    )


def fail_with_traceback(
    db: Database, model: Job, row_id: int, error: BaseException, prefix: str = ""
) -> None:
    """Record the exception being handled, with its traceback, where the user looks."""
    text = traceback.format_exc()
    reason = f"{prefix}{type(error).__name__}: {error}"[:500]
    db.run_write(
        lambda s: transition(
            s, model, row_id, Status.FAILED, error=text, finished_at=utcnow(), status_reason=reason
        )
    )
