"""Storing hydro systems and reading them back.  Functions take a session and never commit."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl import system as spec
from hydrorl.db import models
from hydrorl.errors import AlreadyExistsError, InUseError, NotFoundError


def add_system(session: Session, system: spec.HydroSystem) -> models.HydroSystem:
    """Insert a validated system with its reservoirs and stations."""
    system.validate()
    if session.scalar(
        sa.select(models.HydroSystem.id).where(models.HydroSystem.name == system.name)
    ):
        raise AlreadyExistsError(
            f"a hydro system named {system.name!r} exists already; choose another name "
            f"or delete it first"
        )
    row = models.HydroSystem(name=system.name, description=system.description)
    reservoirs = {
        r.name: models.Reservoir(
            position=i,
            name=r.name,
            min_volume_mm3=float(r.min_volume_mm3),
            max_volume_mm3=float(r.max_volume_mm3),
            inflow_factor=float(r.inflow_factor),
        )
        for i, r in enumerate(system.reservoirs)
    }
    row.reservoirs = list(reservoirs.values())
    row.power_stations = [
        models.PowerStation(
            position=i,
            name=s.name,
            upstream_reservoir=reservoirs[s.upstream],
            downstream_reservoir=reservoirs[s.downstream] if s.downstream else None,
            max_discharge_m3s=float(s.max_discharge_m3s),
            energy_equivalent_kwh_m3=float(s.energy_equivalent_kwh_m3),
        )
        for i, s in enumerate(system.power_stations)
    ]
    session.add(row)
    session.flush()
    return row


def as_reference(ref: Any) -> Any:
    """A name or an id as given, or the integer ``id`` of what names a row (the workbench's
    ``ForecastInfo``, ``ProjectInfo``, ``HydroSystem`` rows...)."""
    if isinstance(ref, (int, str)):
        return ref
    found = getattr(ref, "id", None)
    if isinstance(found, int):
        return found
    raise TypeError(f"expected a name or an id, not {ref!r}")


def get_system(session: Session, ref: Any) -> models.HydroSystem:
    """A system by name or id; NotFoundError lists the names there are."""
    ref = as_reference(ref)
    column = models.HydroSystem.id if isinstance(ref, int) else models.HydroSystem.name
    row = session.scalar(sa.select(models.HydroSystem).where(column == ref))
    if row is None:
        known = session.scalars(
            sa.select(models.HydroSystem.name).order_by(models.HydroSystem.name)
        )
        names = ", ".join(repr(n) for n in known) or "none yet"
        raise NotFoundError(f"no hydro system {ref!r}; known systems: {names}")
    return row


def to_spec(row: models.HydroSystem) -> spec.HydroSystem:
    """The plain-data description of a stored system."""
    return spec.HydroSystem(
        name=row.name,
        description=row.description,
        reservoirs=tuple(
            spec.Reservoir(r.name, r.min_volume_mm3, r.max_volume_mm3, r.inflow_factor)
            for r in row.reservoirs
        ),
        power_stations=tuple(
            spec.PowerStation(
                s.name,
                s.upstream_reservoir.name,
                s.downstream_reservoir.name if s.downstream_reservoir else None,
                s.max_discharge_m3s,
                s.energy_equivalent_kwh_m3,
            )
            for s in row.power_stations
        ),
    )


def list_systems(session: Session) -> pd.DataFrame:
    """One row per system with the counts of what it holds."""
    h = models.HydroSystem

    def count(model: type[models.Base]) -> sa.ScalarSelect[int]:
        return (
            sa.select(sa.func.count())
            .where(model.system_id == h.id)  # type: ignore[attr-defined]
            .scalar_subquery()
        )

    stmt = sa.select(
        h.id,
        h.name,
        h.description,
        count(models.Reservoir).label("reservoirs"),
        count(models.PowerStation).label("power_stations"),
        count(models.Forecast).label("forecasts"),
        count(models.Project).label("projects"),
        h.created_at,
    ).order_by(h.id)
    rows = session.execute(stmt).all()
    columns = [
        "id",
        "name",
        "description",
        "reservoirs",
        "power_stations",
        "forecasts",
        "projects",
        "created_at",
    ]
    return pd.DataFrame(rows, columns=columns)


def delete_system(session: Session, ref: str | int, *, cascade: bool = False) -> None:
    """Delete a system; with forecasts or projects it needs ``cascade=True``."""
    from hydrorl.db.forecasts import delete_forecast

    row = get_system(session, ref)
    if (row.forecasts or row.projects) and not cascade:
        raise InUseError(
            f"hydro system {row.name!r} has {len(row.forecasts)} forecast(s) and "
            f"{len(row.projects)} project(s); delete them first or pass cascade=True"
        )
    for project in list(row.projects):
        session.delete(project)
    session.flush()
    for forecast in list(row.forecasts):
        delete_forecast(session, forecast)
    session.delete(row)
    session.flush()
