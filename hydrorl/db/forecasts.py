"""Storing forecasts (Upload, Forecast, SeriesLink, TimeDataSeries/Value) and reading them back.

Functions take a session and never commit: an upload is all-or-nothing because
the caller frames it in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import bulk, models
from hydrorl.errors import AlreadyExistsError, DuplicateUploadError, InUseError, NotFoundError
from hydrorl.forecast import INFLOW_UNIT, PRICE_UNIT, ForecastTable


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


def add_forecast(
    session: Session,
    system: models.HydroSystem,
    table: ForecastTable,
    name: str,
    *,
    description: str = "",
    allow_duplicate: bool = False,
) -> models.Forecast:
    """Write the Upload, the Forecast, one SeriesLink per scenario and all their values."""
    if not name or not name.strip():
        raise AlreadyExistsError("a forecast needs a non-empty name")
    taken = sa.select(models.Forecast.id).where(
        models.Forecast.system_id == system.id, models.Forecast.name == name
    )
    if session.scalar(taken):
        raise AlreadyExistsError(
            f"hydro system {system.name!r} already has a forecast named {name!r}; "
            f"choose another name or delete it first"
        )
    if not allow_duplicate and (earlier := find_duplicate(session, table.content_hash)):
        upload = earlier.upload
        assert upload is not None
        raise DuplicateUploadError(
            f"{table.source_name}: the same content was uploaded before as {upload.file_name!r} "
            f"on {upload.uploaded_at:%Y-%m-%d %H:%M} UTC (forecast {earlier.name!r} of system "
            f"{earlier.system.name!r}); pass allow_duplicate=True to store it again"
        )
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
    )
    n_s, n_t = table.n_scenarios, table.n_steps
    series = [
        models.TimeDataSeries(kind=kind, unit=unit, length=n_t)
        for _ in range(n_s)
        for kind, unit in (
            (models.SeriesKind.PRICE, PRICE_UNIT),
            (models.SeriesKind.INFLOW, INFLOW_UNIT),
        )
    ]
    session.add_all([forecast, *series])
    session.flush()
    forecast.series_links = [
        models.SeriesLink(
            scenario_index=s,
            scenario_name=scenario,
            price_series_id=series[2 * s].id,
            inflow_series_id=series[2 * s + 1].id,
        )
        for s, scenario in enumerate(table.scenario_names)
    ]
    session.flush()
    ids = np.array([x.id for x in series], dtype=np.int64)
    # Rows in primary-key order (series, step): the cheapest order for the B-tree.
    values = np.stack([table.price_eur_mwh, table.inflow_m3s], axis=1).reshape(2 * n_s, n_t)
    bulk.insert_columns(
        session,
        models.TimeDataValue.__table__,  # type: ignore[arg-type]
        ("series_id", "step_index", "value"),
        (np.repeat(ids, n_t), np.tile(np.arange(n_t), 2 * n_s), values.reshape(-1)),
    )
    return forecast


def get_forecast(
    session: Session, ref: str | int, system: models.HydroSystem | None = None
) -> models.Forecast:
    """A forecast by id, or by name (within ``system`` when the name is used by several)."""
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


def delete_forecast(session: Session, forecast: models.Forecast) -> None:
    """Delete a forecast with its scenarios and values; refused while runs use it."""
    used = session.scalar(
        sa.select(sa.func.count()).where(models.ProjectRun.forecast_id == forecast.id)
    )
    if used:
        raise InUseError(
            f"forecast {forecast.name!r} is used by {used} project run(s); delete those first"
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
