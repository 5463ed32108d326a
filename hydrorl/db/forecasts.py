"""Storing forecasts (Upload, Forecast, SeriesLink, TimeDataSeries/Value) and reading them back.

Functions take a session and never commit, except the staged upload
(:func:`store_forecast`) and its sweep, which frame their own short transactions:
a forecast's values may be hundreds of MB, and one transaction holding them all
would hold the database's write lock for a minute.  A staged upload writes its
TimeDataSeries rows marked as staged (their ``unit`` reads ``~staged:<epoch>:<token>``)
and their values in committed chunks; nothing refers to them, so no reader sees
them.  One short last transaction re-checks the name and the content, inserts
the Upload, the Forecast and its SeriesLinks and gives the series their real
units: only then is the forecast there.  On any failure the staged rows are
deleted, in chunks too; those of a process killed mid-upload are swept by
:func:`sweep_staged_series` once they are older than
:func:`~hydrorl.settings.staged_upload_max_age_seconds`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl import settings
from hydrorl.db import bulk, models
from hydrorl.db.engine import Database
from hydrorl.db.systems import as_reference, get_system
from hydrorl.errors import (
    AlreadyExistsError,
    DatabaseError,
    DuplicateUploadError,
    ForecastValidationError,
    InUseError,
    NotFoundError,
)
from hydrorl.forecast import INFLOW_UNIT, PRICE_UNIT, ForecastTable, check_table

STAGED = "~staged:"
_SERIES = models.TimeDataSeries
_VALUES: sa.Table = models.TimeDataValue.__table__  # type: ignore[assignment]
_VALUE_COLUMNS = ("series_id", "step_index", "value")
_KINDS = ((models.SeriesKind.PRICE, PRICE_UNIT), (models.SeriesKind.INFLOW, INFLOW_UNIT))


def _chars(column: sa.orm.InstrumentedAttribute[str]) -> int:
    return int(column.type.length)  # type: ignore[attr-defined]


#: The longest names (characters) every backend stores: those of the tables' columns.
NAME_LIMITS = {
    "forecast name": _chars(models.Forecast.name),
    "scenario name": _chars(models.SeriesLink.scenario_name),
    "file name": _chars(models.Upload.file_name),
}


def check_name(field: str, value: str, where: str = "") -> None:
    """Refuse a name longer than its column (``field`` is a key of NAME_LIMITS)."""
    limit = NAME_LIMITS[field]
    if len(value) > limit:
        raise ForecastValidationError(
            f"{where}the {field} {value[:40]!r}... has {len(value)} characters; at most "
            f"{limit} are allowed"
        )


def check_names(table: ForecastTable, name: str) -> None:
    """Refuse names longer than their columns, alike on every backend, before anything is written.

    (SQLite would store them whole, PostgreSQL refuse them mid-upload.)
    """
    where = f"{table.source_name[:60]}: "
    check_name("file name", table.source_name)
    check_name("forecast name", name, where)
    for scenario in table.scenario_names:
        check_name("scenario name", scenario, where)


def find_duplicate(session: Session, content_hash: str) -> models.Forecast | None:
    """A stored forecast whose upload had exactly this content, if any."""
    stmt = (
        sa.select(models.Forecast)
        .join(models.Upload, models.Forecast.upload_id == models.Upload.id)
        .where(models.Upload.content_hash == content_hash)
        .order_by(models.Forecast.id)
        .limit(1)
    )
    return session.scalar(stmt)


def _check_free(
    session: Session,
    system: models.HydroSystem,
    table: ForecastTable,
    name: str,
    allow_duplicate: bool,
) -> None:
    """The name is not taken in ``system`` and (unless allowed) the content is new."""
    if not name or not name.strip():
        raise AlreadyExistsError("a forecast needs a non-empty name")
    taken = sa.select(models.Forecast.id).where(
        models.Forecast.system_id == system.id, models.Forecast.name == name
    )
    if session.scalar(taken):
        raise AlreadyExistsError(
            f"hydro system {system.name!r} already has a forecast named {name!r}; "
            f"choose another name, or rename or delete that one first"
        )
    if not allow_duplicate and (earlier := find_duplicate(session, table.content_hash)):
        upload = earlier.upload
        assert upload is not None
        raise DuplicateUploadError(
            f"{table.source_name}: the same content was uploaded before as {upload.file_name!r} "
            f"on {upload.uploaded_at:%Y-%m-%d %H:%M} UTC (forecast {earlier.name!r} of system "
            f"{earlier.system.name!r}); pass allow_duplicate=True to store it again"
        )


def _new_series(session: Session, n_series: int, n_t: int, unit: str | None) -> list[int]:
    """Insert ``n_series`` series, price and inflow alternating; their ids.

    ``unit=None`` gives them their real units, a staging marker hides them.
    """
    rows = [
        _SERIES(kind=kind, unit=unit or real_unit, length=n_t)
        for i in range(n_series)
        for kind, real_unit in [_KINDS[i % 2]]
    ]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def _value_chunks(
    ids: np.ndarray, table: ForecastTable, chunk_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(series_id, step_index, value) columns, ``chunk_rows`` at a time, in primary-key order:
    the cheapest order for the B-tree, made chunk by chunk so that no copy of all rows exists."""
    n_t = table.n_steps
    total = 2 * table.n_scenarios * n_t
    for lo in range(0, total, chunk_rows):
        series, step = np.divmod(np.arange(lo, min(lo + chunk_rows, total)), n_t)
        scenario, is_inflow = np.divmod(series, 2)
        values = np.where(
            is_inflow == 1,
            table.inflow_m3s[scenario, step],
            table.price_eur_mwh[scenario, step],
        )
        yield ids[series], step, values


def _link(
    session: Session,
    system: models.HydroSystem,
    table: ForecastTable,
    name: str,
    description: str,
    series_ids: Sequence[int],
) -> models.Forecast:
    """The Upload, the Forecast and one SeriesLink per scenario, pointing at the series."""
    upload = models.Upload(
        file_name=table.source_name,
        file_format=table.source_format,
        content_hash=table.content_hash,
        size_bytes=table.size_bytes,
        row_count=table.row_count,
    )
    forecast = models.Forecast(
        system=system,
        upload=upload,
        name=name,
        description=description,
        start_time=table.start_time.to_pydatetime(),
        step_seconds=int(table.step.total_seconds()),
        n_steps=table.n_steps,
        series_links=[
            models.SeriesLink(
                scenario_index=s,
                scenario_name=scenario,
                price_series_id=series_ids[2 * s],
                inflow_series_id=series_ids[2 * s + 1],
            )
            for s, scenario in enumerate(table.scenario_names)
        ],
    )
    session.add(forecast)
    session.flush()
    return forecast


def add_forecast(
    session: Session,
    system: models.HydroSystem,
    table: ForecastTable,
    name: str,
    *,
    description: str = "",
    allow_duplicate: bool = False,
    allow_implausible: bool = False,
) -> models.Forecast:
    """Write a forecast in the caller's one transaction (small forecasts; see store_forecast)."""
    check_names(table, name)
    check_table(table, allow_implausible=allow_implausible)
    _check_free(session, system, table, name, allow_duplicate)
    ids = _new_series(session, 2 * table.n_scenarios, table.n_steps, None)
    for arrays in _value_chunks(np.asarray(ids), table, settings.upload_chunk_rows()):
        bulk.insert_columns(session, _VALUES, _VALUE_COLUMNS, arrays)
    return _link(session, system, table, name, description, ids)


# ---------------------------------------------------------------- staged upload


def store_forecast(
    database: Database,
    system: str | int,
    table: ForecastTable,
    name: str,
    *,
    description: str = "",
    allow_duplicate: bool = False,
    allow_implausible: bool = False,
    chunk_rows: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Store a forecast as a staged upload; its id once it is published.

    No transaction writes more than ``chunk_rows`` rows (default
    :func:`~hydrorl.settings.upload_chunk_rows`), but for the last one, which
    writes 3 rows per scenario and 2 more.  ``on_progress(values_written,
    values_total)`` is called after each committed chunk.  On any error (an
    exception, KeyboardInterrupt) the staged rows are deleted and the error
    raised: nothing is left half-written.
    """
    chunk_rows = chunk_rows or settings.upload_chunk_rows()
    check_names(table, name)
    check_table(table, allow_implausible=allow_implausible)
    with database.read() as session:  # refuse before writing anything
        system_row = get_system(session, system)
        _check_free(session, system_row, table, name, allow_duplicate)
        system_id = system_row.id
    sweep_staged_series(database, chunk_rows=chunk_rows)
    marker = f"{STAGED}{int(models.utcnow().replace(tzinfo=dt.UTC).timestamp())}:"
    marker += secrets.token_hex(6)
    n_series, total = 2 * table.n_scenarios, 2 * table.row_count
    try:
        ids: list[int] = []
        for lo in range(0, n_series, chunk_rows):
            n = min(chunk_rows, n_series - lo)
            ids += database.run_write(lambda s, n=n: _new_series(s, n, table.n_steps, marker))  # type: ignore[misc]
        bulk.insert_chunks(
            database,
            _VALUES,
            _VALUE_COLUMNS,
            _value_chunks(np.asarray(ids, dtype=np.int64), table, chunk_rows),
            on_chunk=None if on_progress is None else lambda done: on_progress(done, total),
        )
        return database.run_write(
            lambda s: _publish(s, system_id, table, name, description, allow_duplicate, marker, ids)
        )
    except BaseException as e:
        try:
            _discard(database, _SERIES.unit == marker, chunk_rows)
        except Exception as cleanup:
            e.add_note(
                f"Its staged rows (unit {marker!r}) could not be deleted ({cleanup}); a later "
                f"upload sweeps them."
            )
        raise


def _publish(
    session: Session,
    system_id: int,
    table: ForecastTable,
    name: str,
    description: str,
    allow_duplicate: bool,
    marker: str,
    series_ids: list[int],
) -> int:
    """The one short transaction that makes a staged upload a forecast."""
    system = session.get(models.HydroSystem, system_id)
    if system is None:
        raise NotFoundError(f"the hydro system of forecast {name!r} was deleted during its upload")
    _check_free(session, system, table, name, allow_duplicate)  # again: others may have been faster
    staged = session.scalar(sa.select(sa.func.count()).where(_SERIES.unit == marker))
    if staged != len(series_ids):
        raise DatabaseError(
            f"{table.source_name}: {len(series_ids) - (staged or 0)} of its {len(series_ids)} "
            f"staged series were deleted before they could be published (an upload that ran "
            f"longer than HYDRORL_STAGED_UPLOAD_MAX_AGE_S?); upload it again"
        )
    forecast = _link(session, system, table, name, description, series_ids)
    for kind, unit in _KINDS:
        session.execute(
            sa.update(_SERIES).where(_SERIES.unit == marker, _SERIES.kind == kind).values(unit=unit)
        )
    return forecast.id


def _staged_time(unit: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(unit[len(STAGED) :].split(":")[0]), dt.UTC).replace(
            tzinfo=None
        )
    except ValueError:
        return None


def staged_series(
    session: Session, *, now: dt.datetime | None = None, older_than_s: float | None = None
) -> pd.DataFrame:
    """Staged series no SeriesLink refers to, staged more than ``older_than_s`` before ``now``.

    Columns: id, unit (the upload's marker), length, staged_at.  ``now`` is a naive UTC
    datetime (default: now); ``older_than_s`` defaults to the setting.
    """
    now = now or models.utcnow()
    age = settings.staged_upload_max_age_seconds() if older_than_s is None else older_than_s
    link = models.SeriesLink
    referenced = sa.or_(link.price_series_id == _SERIES.id, link.inflow_series_id == _SERIES.id)
    rows = session.execute(
        sa.select(_SERIES.id, _SERIES.unit, _SERIES.length)
        .where(_SERIES.unit.like(f"{STAGED}%"), ~sa.exists().where(referenced))
        .order_by(_SERIES.id)
    ).all()
    found = [(i, unit, length, _staged_time(unit)) for i, unit, length in rows]
    kept = [r for r in found if r[3] is None or (now - r[3]).total_seconds() > age]
    return pd.DataFrame(kept, columns=["id", "unit", "length", "staged_at"])


def sweep_staged_series(
    database: Database,
    *,
    now: dt.datetime | None = None,
    older_than_s: float | None = None,
    chunk_rows: int | None = None,
) -> int:
    """Delete what uploads interrupted for good (a killed process) left staged; the series count.

    Each upload calls it first; it only reads when there is nothing to sweep.
    """
    with database.read() as session:
        old = staged_series(session, now=now, older_than_s=older_than_s)
    for marker in old["unit"].unique():
        _discard(database, _SERIES.unit == marker, chunk_rows or settings.upload_chunk_rows())
    return len(old)


def _discard(database: Database, staged: sa.ColumnElement[bool], chunk_rows: int) -> None:
    """Delete staged series (those ``staged`` selects) and their values, chunk by chunk."""
    with database.read() as session:
        series = session.execute(sa.select(_SERIES.id, _SERIES.length).where(staged)).all()
    if not series:
        return
    values = _VALUES.c
    still_staged = sa.select(_SERIES.id).where(staged).scalar_subquery()

    def delete_values(ids: list[int], lo: int | None = None, hi: int | None = None) -> None:
        condition = values.series_id.in_(ids) & values.series_id.in_(still_staged)
        if lo is not None:
            condition &= values.step_index.between(lo, hi - 1)  # type: ignore[operator]
        database.run_write(lambda s: s.execute(sa.delete(_VALUES).where(condition)))

    batch: list[int] = []
    rows = 0
    for series_id, length in series:
        if length > chunk_rows:  # a long series: by ranges of steps (the primary key's order)
            for lo in range(0, length, chunk_rows):
                delete_values([series_id], lo, lo + chunk_rows)
            continue
        if batch and (rows + length > chunk_rows or len(batch) == 500):
            delete_values(batch)
            batch, rows = [], 0
        batch.append(series_id)
        rows += length
    if batch:
        delete_values(batch)
    ids = [i for i, _ in series]
    for lo in range(0, len(ids), min(500, chunk_rows)):
        part = ids[lo : lo + min(500, chunk_rows)]
        database.run_write(
            lambda s, part=part: s.execute(sa.delete(_SERIES).where(_SERIES.id.in_(part), staged))  # type: ignore[misc]
        )


# ---------------------------------------------------------------- reading back


def get_forecast(
    session: Session, ref: Any, system: models.HydroSystem | None = None
) -> models.Forecast:
    """A forecast by id, or by name (within ``system`` when the name is used by several)."""
    ref = as_reference(ref)
    f = models.Forecast
    stmt = sa.select(f)
    if isinstance(ref, int):
        stmt = stmt.where(f.id == ref)
    else:
        stmt = stmt.where(f.name == ref)
        if system is not None:
            stmt = stmt.where(f.system_id == system.id)
    rows = session.scalars(stmt).all()
    if len(rows) > 1:
        systems = ", ".join(repr(r.system.name) for r in rows)
        raise NotFoundError(
            f"forecast {ref!r} exists in several systems ({systems}); name the system"
        )
    if not rows:
        known_stmt = sa.select(f.name).order_by(f.name)
        if system is not None:
            known_stmt = known_stmt.where(f.system_id == system.id)
        names = ", ".join(repr(n) for n in session.scalars(known_stmt)) or "none yet"
        where = f" in system {system.name!r}" if system is not None else ""
        raise NotFoundError(f"no forecast {ref!r}{where}; known forecasts: {names}")
    return rows[0]


def list_forecasts(session: Session, system: models.HydroSystem | None = None) -> pd.DataFrame:
    """One row per forecast: system, name, time grid, scenarios and the upload it came from."""
    f, u, h = models.Forecast, models.Upload, models.HydroSystem
    n_scenarios = (
        sa.select(sa.func.count())
        .where(models.SeriesLink.forecast_id == f.id)
        .scalar_subquery()
        .label("scenarios")
    )
    stmt = (
        sa.select(
            f.id,
            h.name.label("system"),
            f.name,
            f.start_time,
            f.step_seconds,
            f.n_steps,
            n_scenarios,
            u.file_name,
            u.content_hash,
            u.uploaded_at,
            f.description,
        )
        .join(h, f.system_id == h.id)
        .outerjoin(u, f.upload_id == u.id)
        .order_by(f.id)
    )
    if system is not None:
        stmt = stmt.where(f.system_id == system.id)
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
    seconds = frame["step_seconds"].astype("int64")
    frame["n_steps"] = frame["n_steps"].astype("int64")
    frame["scenarios"] = frame["scenarios"].astype("int64")
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    frame["step"] = pd.to_timedelta(seconds, unit="s")
    frame["end_time"] = frame["start_time"] + pd.to_timedelta(seconds * frame["n_steps"], unit="s")
    order = [
        "id",
        "system",
        "name",
        "start_time",
        "end_time",
        "step",
        "n_steps",
        "scenarios",
        "file_name",
        "content_hash",
        "uploaded_at",
        "description",
    ]
    return frame[order]


def list_scenarios(session: Session, forecast: models.Forecast) -> pd.DataFrame:
    """The scenarios (SeriesLinks) of a forecast."""
    rows = [
        (s.id, s.scenario_index, s.scenario_name, s.price_series_id, s.inflow_series_id)
        for s in forecast.series_links
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "series_link_id",
            "scenario_index",
            "scenario",
            "price_series_id",
            "inflow_series_id",
        ],
    )


def _select_links(
    forecast: models.Forecast, scenarios: Sequence[str | int] | None
) -> list[models.SeriesLink]:
    links = list(forecast.series_links)
    if scenarios is None:
        return links
    by_name = {s.scenario_name: s for s in links}
    chosen = []
    for ref in scenarios:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(links):
            chosen.append(links[ref])
        elif str(ref) in by_name:
            chosen.append(by_name[str(ref)])
        else:
            raise NotFoundError(
                f"forecast {forecast.name!r} has no scenario {ref!r}; it has "
                f"{len(links)} scenarios: {', '.join(repr(n) for n in by_name)}"
            )
    return chosen


def read_table(
    session: Session, forecast: models.Forecast, scenarios: Sequence[str | int] | None = None
) -> ForecastTable:
    """The stored values of (some of) a forecast's scenarios as arrays."""
    links = _select_links(forecast, scenarios)
    table = models.TimeDataValue.__table__
    n_t = forecast.n_steps
    price = np.empty((len(links), n_t))
    inflow = np.empty((len(links), n_t))
    for i, link in enumerate(links):
        price[i] = bulk.read_values(session, table, "series_id", link.price_series_id, n_t)  # type: ignore[arg-type]
        inflow[i] = bulk.read_values(session, table, "series_id", link.inflow_series_id, n_t)  # type: ignore[arg-type]
    upload = forecast.upload
    return ForecastTable(
        scenario_names=tuple(s.scenario_name for s in links),
        start_time=pd.Timestamp(forecast.start_time),
        step=pd.Timedelta(seconds=forecast.step_seconds),
        price_eur_mwh=price,
        inflow_m3s=inflow,
        source_name=upload.file_name if upload else forecast.name,
        source_format=upload.file_format if upload else "",
        content_hash=upload.content_hash if upload else "",
        size_bytes=upload.size_bytes if upload else 0,
    )


def rename_forecast(session: Session, forecast: models.Forecast, name: str) -> None:
    """Give a forecast another name, refused when its system has a forecast of that name."""
    if not name or not name.strip():
        raise ForecastValidationError("a forecast needs a non-empty name")
    check_name("forecast name", name)
    f = models.Forecast
    taken = session.scalar(
        sa.select(f.id).where(
            f.system_id == forecast.system_id, f.name == name, f.id != forecast.id
        )
    )
    if taken:
        raise AlreadyExistsError(
            f"hydro system {forecast.system.name!r} already has a forecast named {name!r}; "
            f"choose another name"
        )
    forecast.name = name
    session.flush()


def delete_forecast(session: Session, forecast: models.Forecast) -> None:
    """Delete a forecast with its scenarios and values; refused while runs use it."""
    used = session.scalar(
        sa.select(sa.func.count()).where(models.ProjectRun.forecast_id == forecast.id)
    )
    if used:
        raise InUseError(
            f"forecast {forecast.name!r} is used by {used} run(s); delete them first "
            f"(wb.delete_run) or delete the forecast with cascade=True"
        )
    series_ids = [i for s in forecast.series_links for i in (s.price_series_id, s.inflow_series_id)]
    upload = forecast.upload
    session.delete(forecast)
    session.flush()
    bulk.delete_where_in(session, models.TimeDataValue.__table__, "series_id", series_ids)  # type: ignore[arg-type]
    bulk.delete_where_in(session, models.TimeDataSeries.__table__, "id", series_ids)  # type: ignore[arg-type]
    if upload is not None:
        others = session.scalar(
            sa.select(sa.func.count()).where(models.Forecast.upload_id == upload.id)
        )
        if not others:
            session.delete(upload)
    session.flush()


def list_uploads(session: Session) -> pd.DataFrame:
    """Every upload, oldest first: file name, format, content hash, size, rows, time."""
    u = models.Upload
    stmt = sa.select(
        u.id, u.file_name, u.file_format, u.content_hash, u.size_bytes, u.row_count, u.uploaded_at
    ).order_by(u.id)
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
