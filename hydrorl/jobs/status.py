"""The one table of allowed status transitions, and the conditional write that applies them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import models
from hydrorl.db.models import Status

#: From each status, the statuses a run or an agent may move to.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.QUEUED, Status.STOPPED, Status.FAILED}),
    Status.QUEUED: frozenset({Status.RUNNING, Status.STOPPED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.STOPPING, Status.COMPLETED, Status.STOPPED, Status.FAILED}),
    Status.STOPPING: frozenset({Status.COMPLETED, Status.STOPPED, Status.FAILED}),
    Status.COMPLETED: frozenset(),
    # A stopped or failed run can be resumed from its checkpoints.
    Status.STOPPED: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
}

#: Statuses in which a process is (or should be) working.
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.STOPPING})
#: Statuses nothing more happens in, unless resumed.
FINAL = frozenset({Status.COMPLETED, Status.STOPPED, Status.FAILED})


def sources(target: Status) -> list[Status]:
    """The statuses from which ``target`` may be reached."""
    return [s for s, targets in ALLOWED.items() if target in targets]


def transition(
    session: Session,
    model: type[models.ProjectRun] | type[models.Agent],
    row_id: int,
    target: Status,
    **fields: Any,
) -> bool:
    """Move one row to ``target`` if its current status allows it; say whether it moved.

    A single ``UPDATE ... WHERE status IN (allowed sources)``: two processes racing
    for the same row cannot both win, and no reader ever sees a status the table
    forbids.  ``fields`` are written in the same statement.
    """
    stmt = (
        sa.update(model)
        .where(model.id == row_id, model.status.in_(sources(target)))
        .values(status=target, **fields)
        .execution_options(synchronize_session=False)
    )
    result: sa.CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return bool(result.rowcount)
