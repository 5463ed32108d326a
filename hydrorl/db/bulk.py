"""Fast bulk writes and reads of the big value tables (TimeDataValue, ReportValue, ...).

The ORM costs a Python object per row, far too slow for hundreds of thousands
of values.  On SQLite these functions hand plain tuples to the driver's
``executemany`` inside the session's own transaction; other dialects get
SQLAlchemy Core's batched multi-row INSERT.  Either way the rows belong to the
caller's transaction: nothing is committed here, except by :func:`insert_chunks`,
which writes rows nothing refers to yet in short transactions of their own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.errors import DatabaseError

if TYPE_CHECKING:
    from hydrorl.db.engine import Database

_CHUNK = 50_000


def _placeholder(paramstyle: str, i: int) -> str:
    return {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": f":{i + 1}"}.get(
        paramstyle, f":p{i}"
    )


def insert_columns(
    session: Session, table: sa.Table, columns: Sequence[str], arrays: Sequence[np.ndarray]
) -> int:
    """Insert rows given column-wise as equal-length arrays; returns the row count."""
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("all columns must have the same length")
    if n == 0:
        return 0
    lists = [np.asarray(a).tolist() for a in arrays]  # Python scalars bind fastest
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        marks = ", ".join(_placeholder(dialect.paramstyle, i) for i in range(len(columns)))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        cursor = connection.connection.cursor()
        try:
            # sqlite3 takes any iterable of rows; a zip avoids a copy of every row.
            cursor.executemany(sql, zip(*lists, strict=True))  # type: ignore[arg-type]
        finally:
            cursor.close()
        return n
    stmt = sa.insert(table)
    for lo in range(0, n, _CHUNK):
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*(c[lo : lo + _CHUNK] for c in lists), strict=True)
        ]
        connection.execute(stmt, rows)
    return n


def read_values(
    session: Session, table: sa.Table, key_column: str, key: int, length: int | None = None
) -> np.ndarray:
    """The ``value`` column of one series, ordered by ``step_index``, as a float array."""
    t = table.c
    stmt = sa.select(t.value).where(t[key_column] == key).order_by(t.step_index)
    result = session.connection().execute(stmt)
    values = np.fromiter((r[0] for r in result), dtype=np.float64)
    if length is not None and len(values) != length:
        raise DatabaseError(
            f"{table.name} {key_column}={key} holds {len(values)} values, expected {length}"
        )
    return values


def delete_where_in(session: Session, table: sa.Table, column: str, keys: Sequence[Any]) -> None:
    """Delete the rows whose ``column`` is one of ``keys`` (in chunks, for long key lists)."""
    keys = list(keys)
    for lo in range(0, len(keys), 500):
        session.execute(sa.delete(table).where(table.c[column].in_(keys[lo : lo + 500])))


def insert_chunks(
    database: Database,
    table: sa.Table,
    columns: Sequence[str],
    chunks: Iterable[Sequence[np.ndarray]],
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Insert each chunk of column arrays in a short write transaction of its own; the rows.

    The one function here that commits, chunk by chunk: it is meant for rows that
    nothing refers to yet (a staged upload), so that no transaction holds the
    write lock for long and other processes' heartbeats get through in between.
    ``on_chunk(rows_so_far)`` is called after each commit.
    """
    total = 0
    for arrays in chunks:
        database.run_write(lambda session, a=arrays: insert_columns(session, table, columns, a))  # type: ignore[misc]
        total += len(arrays[0])
        if on_chunk is not None:
            on_chunk(total)
    return total


@dataclasses.dataclass(frozen=True)
class WriteTransaction:
    """One committed transaction: the rows it inserted, updated or deleted, and how long it ran."""

    rows: int
    seconds: float


class WriteMeter:
    """Records every committed transaction on an engine: rows written and seconds held.

    A diagnostic for tests and benchmarks (``with WriteMeter(db.engine) as m: ...;
    m.longest``).  The rows are the database's own count, so raw ``executemany``
    is counted too: SQLite's ``total_changes``, PostgreSQL's
    ``pg_stat_xact_user_tables``, read at BEGIN and COMMIT.  Seconds run from
    the BEGIN (on SQLite, once the write lock is held) to the COMMIT.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.transactions: list[WriteTransaction] = []
        self._open: dict[int, tuple[float, int]] = {}

    def __enter__(self) -> WriteMeter:
        sa.event.listen(self.engine, "begin", self._begin)
        sa.event.listen(self.engine, "commit", self._commit)
        sa.event.listen(self.engine, "rollback", self._rollback)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "begin", self._begin)
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(self.engine, "rollback", self._rollback)

    @property
    def writes(self) -> list[WriteTransaction]:
        """The transactions that wrote at least one row."""
        return [t for t in self.transactions if t.rows]

    @property
    def longest(self) -> WriteTransaction:
        """The writing transaction that held on longest (zeros when none wrote)."""
        return max(self.writes, key=lambda t: t.seconds, default=WriteTransaction(0, 0.0))

    @property
    def most_rows(self) -> WriteTransaction:
        """The writing transaction that wrote the most rows (zeros when none wrote)."""
        return max(self.writes, key=lambda t: t.rows, default=WriteTransaction(0, 0.0))

    def _changes(self, connection: sa.Connection) -> int:
        dbapi = connection.connection.dbapi_connection
        if connection.dialect.name == "sqlite":
            return int(dbapi.total_changes)  # type: ignore[union-attr]
        if connection.dialect.name == "postgresql":
            cursor = dbapi.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                    "FROM pg_stat_xact_user_tables"
                )
                (rows,) = cursor.fetchone() or (0,)
                return int(rows)
            finally:
                cursor.close()
        return 0

    def _begin(self, connection: sa.Connection) -> None:
        # A difference of two readings: PostgreSQL's counts also hold earlier transactions'
        # until the backend next reports them.
        self._open[id(connection)] = (time.perf_counter(), self._changes(connection))

    def _commit(self, connection: sa.Connection) -> None:
        start, before = self._open.pop(id(connection), (time.perf_counter(), 0))
        rows = self._changes(connection) - before
        self.transactions.append(WriteTransaction(rows, time.perf_counter() - start))

    def _rollback(self, connection: sa.Connection) -> None:
        self._open.pop(id(connection), None)
