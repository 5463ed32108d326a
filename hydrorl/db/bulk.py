"""Fast bulk writes and reads of the big value tables (TimeDataValue, ReportValue, ...).

The ORM costs a Python object per row, far too slow for hundreds of thousands
of values.  On SQLite these functions hand plain tuples to the driver's
``executemany`` inside the session's own transaction; other dialects get
SQLAlchemy Core's batched multi-row INSERT.  Either way the rows belong to the
caller's transaction: nothing is committed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.errors import DatabaseError

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
