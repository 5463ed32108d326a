"""Storing projects and reading them back.  Functions take a session and never commit."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import models
from hydrorl.db.systems import as_reference
from hydrorl.errors import AlreadyExistsError, NotFoundError, ValidationError
from hydrorl.project import TrainingSettings


def check_project_name(session: Session, system: models.HydroSystem, name: str) -> None:
    """Refuse a blank or too long project name, or one ``system`` has already."""
    if not name or not name.strip():
        raise ValidationError("a project needs a non-empty name")
    limit = models.Project.name.type.length  # type: ignore[attr-defined]
    if len(name) > limit:
        raise ValidationError(f"the project name is {len(name)} characters long; at most {limit}")
    taken = sa.select(models.Project.id).where(
        models.Project.system_id == system.id, models.Project.name == name
    )
    if session.scalar(taken):
        raise AlreadyExistsError(
            f"hydro system {system.name!r} already has a project named {name!r}"
        )


def rename_project(session: Session, project: models.Project, name: str) -> None:
    """Give a project another name, refused when its system has a project of that name."""
    if name == project.name:
        return
    check_project_name(session, project.system, name)
    project.name = name
    session.flush()


def add_project(
    session: Session,
    system: models.HydroSystem,
    name: str,
    settings: TrainingSettings,
    description: str = "",
) -> models.Project:
    if not name or not name.strip():
        raise AlreadyExistsError("a project needs a non-empty name")
    limit = models.Project.name.type.length  # type: ignore[attr-defined]
    if len(name) > limit:
        raise ValidationError(f"the project name is {len(name)} characters long; at most {limit}")
    settings.validate()
    taken = sa.select(models.Project.id).where(
        models.Project.system_id == system.id, models.Project.name == name
    )
    if session.scalar(taken):
        raise AlreadyExistsError(
            f"hydro system {system.name!r} already has a project named {name!r}"
        )
    row = models.Project(
        system=system, name=name, description=description, settings=settings.to_dict()
    )
    session.add(row)
    session.flush()
    return row


def get_project(
    session: Session, ref: Any, system: models.HydroSystem | None = None
) -> models.Project:
    ref = as_reference(ref)
    p = models.Project
    stmt = sa.select(p).where(p.id == ref if isinstance(ref, int) else p.name == ref)
    if system is not None:
        stmt = stmt.where(p.system_id == system.id)
    rows = session.scalars(stmt).all()
    if len(rows) > 1:
        systems = ", ".join(repr(r.system.name) for r in rows)
        raise NotFoundError(
            f"project {ref!r} exists in several systems ({systems}); name the system"
        )
    if not rows:
        names = ", ".join(repr(n) for n in session.scalars(sa.select(p.name).order_by(p.name)))
        raise NotFoundError(f"no project {ref!r}; known projects: {names or 'none yet'}")
    return rows[0]


def list_projects(session: Session, system: models.HydroSystem | None = None) -> pd.DataFrame:
    p, h = models.Project, models.HydroSystem
    runs = sa.select(sa.func.count()).where(models.ProjectRun.project_id == p.id).scalar_subquery()
    stmt = (
        sa.select(
            p.id,
            h.name.label("system"),
            p.name,
            p.description,
            p.settings,
            runs.label("runs"),
            p.created_at,
        )
        .join(h, p.system_id == h.id)
        .order_by(p.id)
    )
    if system is not None:
        stmt = stmt.where(p.system_id == system.id)
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
    settings = frame.pop("settings")
    for key in ("agents", "timesteps", "algorithm"):
        frame.insert(4, key, [s.get(key) for s in settings] if len(frame) else [])
    return frame
