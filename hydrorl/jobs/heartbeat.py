"""A background thread that keeps a run's or an agent's heartbeat fresh."""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType

import sqlalchemy as sa

from hydrorl import settings
from hydrorl.db import Database, models
from hydrorl.db.models import utcnow
from hydrorl.jobs.status import ACTIVE


class Heartbeat:
    """Writes ``heartbeat_at`` of one row every ``interval`` seconds while the block runs.

    A thread rather than a hook in the work loop, so that a long step (a PPO
    update, an LP solve) does not make a live process look dead.  Only rows still
    in an active status are touched.
    """

    def __init__(
        self,
        db: Database,
        model: type[models.ProjectRun] | type[models.Agent],
        row_id: int,
        interval: float | None = None,
    ) -> None:
        self.db, self.model, self.row_id = db, model, row_id
        self.interval = interval or settings.heartbeat_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hydrorl-heartbeat", daemon=True)

    def beat(self) -> None:
        m = self.model
        self.db.run_write(
            lambda s: s.execute(
                sa.update(m)
                .where(m.id == self.row_id, m.status.in_(ACTIVE))
                .values(heartbeat_at=utcnow())
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
