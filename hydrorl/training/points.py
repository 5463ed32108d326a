"""An agent's curve points on their way to the database, and its stop signals.

Light on purpose (no SB3, no torch): an agent process shows its reference lines and its
first validation point while it has imported nothing of the learning libraries yet.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import Database, bulk, models
from hydrorl.db.models import Status, utcnow
from hydrorl.training.validation import UNITS as VALIDATION_UNITS

#: Units of the curves HydroRL records itself.
UNITS = {
    "episode_reward": "",
    "episode_value_eur": "EUR",
    "episode_revenue_eur": "EUR",
    **VALIDATION_UNITS,
}


class PointWriter:
    """Buffers the curve points (TrainStepValues) of agent ``agent_id`` and writes them, with
    columns of its row, in one transaction."""

    def __init__(self, db: Database, agent_id: int) -> None:
        self.db, self.agent_id = db, agent_id
        self._data_ids: dict[str, int] | None = None
        self._buffer: list[tuple[str, int, float, float]] = []

    def add(self, name: str, timestep: int, value: float) -> None:
        self._buffer.append((name, int(timestep), time.time(), float(value)))

    @property
    def loaded(self) -> bool:
        return self._data_ids is not None

    def load(self, session: Session) -> None:
        """Learn the agent's curves (their ids) from the database."""
        rows = session.execute(
            sa.select(models.TrainStepData.name, models.TrainStepData.id).where(
                models.TrainStepData.agent_id == self.agent_id
            )
        ).all()
        self._data_ids = dict(rows)

    def flush(self, **agent_values: Any) -> None:
        """Write the buffered points and ``agent_values`` (columns of the agent's row) in one
        transaction; on failure the points stay buffered for the next flush."""
        if self._data_ids is None:
            self.db.run_write(self.load)
        assert self._data_ids is not None
        points, self._buffer = self._buffer, []

        def write(session: Session) -> None:
            assert self._data_ids is not None
            for name in {p[0] for p in points} - set(self._data_ids):
                data = models.TrainStepData(
                    agent_id=self.agent_id, name=name, unit=UNITS.get(name, "")
                )
                session.add(data)
                session.flush()
                self._data_ids[name] = data.id
            if points:
                bulk.insert_columns(
                    session,
                    models.TrainStepValue.__table__,  # type: ignore[arg-type]
                    ("data_id", "timestep", "wall_time", "value"),
                    (
                        np.array([self._data_ids[p[0]] for p in points]),
                        np.array([p[1] for p in points]),
                        np.array([p[2] for p in points]),
                        np.array([p[3] for p in points]),
                    ),
                )
            if agent_values:
                session.execute(
                    sa.update(models.Agent)
                    .where(models.Agent.id == self.agent_id)
                    .values(**agent_values)
                )

        try:
            self.db.run_write(write)
        except Exception:
            assert self._data_ids is not None
            self._data_ids = {
                k: v for k, v in self._data_ids.items() if k not in {p[0] for p in points}
            }
            self._buffer = points + self._buffer  # kept for the next try
            raise


def stop_reason(db: Database, agent_id: int, run_id: int, parent_pid: int) -> str | None:
    """Why agent ``agent_id`` must stop, or None: a stop asked for it (marked handled here),
    its run no longer running, or its supervisor (process ``parent_pid``) gone."""
    if os.getppid() != parent_pid:
        return "the supervisor process is gone"
    with db.read() as session:
        pending = (
            session.execute(
                sa.select(models.AgentControl.id).where(
                    models.AgentControl.agent_id == agent_id,
                    models.AgentControl.handled_at.is_(None),
                )
            )
            .scalars()
            .all()
        )
        run_status = session.scalar(
            sa.select(models.ProjectRun.status).where(models.ProjectRun.id == run_id)
        )
    if pending:
        db.run_write(
            lambda s: s.execute(
                sa.update(models.AgentControl)
                .where(models.AgentControl.id.in_(pending))
                .values(handled_at=utcnow())
            )
        )
        return "stop requested"
    if run_status not in (Status.RUNNING, Status.QUEUED):
        return f"the run is {run_status}"
    return None
