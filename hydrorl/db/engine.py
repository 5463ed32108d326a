"""Opening a HydroRL database: engine, SQLite pragmas, sessions and migrations.

Any SQLAlchemy URL works.  For SQLite every connection gets WAL journaling, a
busy timeout and foreign keys, and transactions are begun by us (``BEGIN`` or,
for writes, ``BEGIN IMMEDIATE``) rather than by the ``sqlite3`` module, whose
implicit transactions neither cover DDL nor take the write lock up front.  This
is the only place that speaks SQLite's own SQL.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic import util as alembic_util
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from hydrorl import settings
from hydrorl.errors import DatabaseError

T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_WRITE_OPTION = "hydrorl_write"
_LOCK_WAIT_OPTION = "hydrorl_lock_wait_ms"
_MIGRATION_LOCK_ID = 0x487944726F524C  # "HydroRL": one fixed key for schema upgrades


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for HydroRL's migrations, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of HydroRL knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package always ships a first revision
    return head


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let us issue BEGIN ourselves (see the module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {settings.sqlite_busy_timeout_ms()}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    immediate = options.get(_WRITE_OPTION, False)
    wait_ms = options.get(_LOCK_WAIT_OPTION)
    if wait_ms is None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        return
    # Once BEGIN IMMEDIATE holds the write lock nothing else in the transaction waits.
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {settings.sqlite_busy_timeout_ms()}")


def _is_lock_wait(error: sa.exc.OperationalError) -> bool:
    """True where the statement gave up waiting for a lock another transaction holds."""
    if getattr(error.orig, "sqlstate", None) == "55P03":  # PostgreSQL: lock_not_available
        return True
    message = str(error.orig).lower()
    return "locked" in message or "busy" in message


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with HydroRL's per-connection settings."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(sa_url, pool_pre_ping=True)


class LockWaitTimeout(DatabaseError):
    """A write waited its ``lock_wait`` for a lock another transaction held."""


class Database:
    """An opened, migrated HydroRL database.

    ``read()`` and ``write()`` give sessions framed by the caller: the block
    commits when it ends without an error and rolls back otherwise.  Keep write
    blocks short: other processes wait on them.
    """

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self.url = url or settings.default_database_url()
        try:
            self.engine = create_engine(self.url)
            if upgrade:
                self.upgrade()
        except (sa.exc.SQLAlchemyError, alembic_util.CommandError) as e:
            raise DatabaseError(f"cannot open the database {self._display_url}: {e}") from e
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def _display_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def revision(self) -> str | None:
        """The schema revision the database is at (None for an empty database)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is there already."""
        head = head_revision()
        current = self.revision()
        if current == head:
            return
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if current is not None and current not in known:
            raise DatabaseError(
                f"the database {self._display_url} is at schema revision {current!r}, which this "
                f"version of HydroRL does not know (newest: {head!r}); it was written by a newer "
                f"HydroRL: upgrade the hydrorl package"
            )
        with self.engine.connect() as conn:
            # The write lock makes a second process wait here, then find the work done.
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # PostgreSQL has no database-wide write lock: take an advisory one.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
                current = MigrationContext.configure(conn).get_current_revision()
                if current != head:
                    command.upgrade(alembic_config(conn), "head")

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; nothing it changes is kept."""
        with self._sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextlib.contextmanager
    def write(self, *, lock_wait: float | None = None) -> Iterator[Session]:
        """A session whose changes are committed in one transaction at the end of the block.

        ``lock_wait``: the most seconds any statement waits for a lock another
        transaction holds (SQLite's write lock, a PostgreSQL row lock) before it raises
        :class:`LockWaitTimeout`; by default SQLite waits its busy timeout and
        PostgreSQL as long as it takes.
        """
        options: dict[str, Any] = {_WRITE_OPTION: True}
        if lock_wait is not None:
            options[_LOCK_WAIT_OPTION] = max(1, round(lock_wait * 1000))
        with self._sessions() as session:
            try:
                # Taking the connection begins the transaction, with the write lock on SQLite.
                connection = session.connection(execution_options=options)
                if lock_wait is not None and connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SET LOCAL lock_timeout = {options[_LOCK_WAIT_OPTION]}"
                    )
                yield session
                session.commit()
            except sa.exc.OperationalError as e:
                session.rollback()
                if lock_wait is not None and _is_lock_wait(e):
                    raise LockWaitTimeout(self._locked(lock_wait)) from e
                raise
            except BaseException:
                session.rollback()
                raise

    def _locked(self, seconds: float) -> str:
        return (
            f"the database {self._display_url} stayed locked by another process's "
            f"transaction for {seconds:g} s"
        )

    def run_write(
        self, work: Callable[[Session], T], *, attempts: int = 8, lock_wait: float | None = None
    ) -> T:
        """Run ``work(session)`` in one write transaction, retrying if the database is locked.

        The busy timeout already waits for other writers; this covers what it
        cannot (a lock that outlasts it, a busy snapshot), with jittered backoff.
        ``work`` must be safe to run again after a rollback.  With ``lock_wait`` (see
        :meth:`write`) a lock held that long raises :class:`LockWaitTimeout` at once.
        """
        for attempt in range(attempts):
            try:
                with self.write(lock_wait=lock_wait) as session:
                    return work(session)
            except sa.exc.OperationalError as e:
                if attempt == attempts - 1 or not _is_lock_wait(e):
                    raise
                time.sleep(random.uniform(0.5, 1.5) * 0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close every pooled connection (call before forking or when done)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self._display_url!r})"
