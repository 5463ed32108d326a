"""Listing, naming and deleting runs (ProjectRun with its agents, curves and episodes).

Functions take a session and never commit, except :func:`delete_values`, which deletes the
big value tables of runs about to be deleted in short transactions of its own (so that other
processes' heartbeats get through in between, as :func:`hydrorl.db.bulk.insert_chunks`).

Deleting names every table explicitly instead of trusting foreign-key cascades: what goes
is written here, the same on every backend.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import bulk, models
from hydrorl.db.engine import Database
from hydrorl.errors import AlreadyExistsError, InUseError, NotFoundError, ValidationError

#: The settings the runs table shows as columns of their own (the rest stay in ``settings``).
KEY_SETTINGS = ("algorithm", "timesteps", "seed", "guide", "n_envs", "episode_steps")
#: Rows of a value table deleted per transaction.
VALUES_PER_TRANSACTION = 50_000
_NAME_LIMIT = models.ProjectRun.name.type.length  # type: ignore[attr-defined]


def get_run(session: Session, run_id: int) -> models.ProjectRun:
    """A run by id; NotFoundError when there is none."""
    row = session.get(models.ProjectRun, run_id)
    if row is None:
        raise NotFoundError(f"no run {run_id}")
    return row


def label(run_id: int, name: str | None) -> str:
    """How a run is named in messages: ``run 3 'baseline'`` or ``run 3``."""
    return f"run {run_id} {name!r}" if name else f"run {run_id}"


def list_runs(session: Session, project_id: int | None = None) -> pd.DataFrame:
    """Every run (of one project if given), oldest first, with what it ran with and how well.

    Columns: those the workbench always listed (id, project, forecast, kind, status, reason,
    agents, source run, times), then ``name``, ``system``, the key settings
    (:data:`KEY_SETTINGS`), ``hyperparameters`` and ``settings`` (dicts), ``duration_s`` (until
    now while it runs), ``best_validation`` (training: its best agent's validation, a share of
    the bound on held-aside scenarios), ``episodes`` and ``share_of_bound`` (evaluation: the
    mean over its episodes of their value over the bound of the same scenario), and
    ``evaluated_agent``.
    """
    r, p, f, h = models.ProjectRun, models.Project, models.Forecast, models.HydroSystem
    a, e = models.Agent, models.EvaluationEpisode
    agents = sa.select(sa.func.count()).where(a.run_id == r.id).scalar_subquery()
    episodes = sa.select(sa.func.count()).where(e.run_id == r.id).scalar_subquery()
    share = (
        sa.select(sa.func.avg(e.total_reward / sa.func.nullif(e.bound_revenue_eur, 0.0)))
        .where(e.run_id == r.id)
        .scalar_subquery()
    )
    stmt = (
        sa.select(
            r.id,
            p.name.label("project"),
            f.name.label("forecast"),
            r.kind,
            r.status,
            r.status_reason,
            agents.label("agents"),
            r.source_run_id,
            r.created_at,
            r.started_at,
            r.finished_at,
            r.heartbeat_at,
            r.name,
            h.name.label("system"),
            r.settings,
            episodes.label("episodes"),
            share.label("share_of_bound"),
        )
        .join(p, r.project_id == p.id)
        .join(f, r.forecast_id == f.id)
        .join(h, p.system_id == h.id)
        .order_by(r.id)
    )
    if project_id is not None:
        stmt = stmt.where(r.project_id == project_id)
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=list(stmt.selected_columns.keys()))
    # The best agent's validation, NaN-skipping (PostgreSQL's max takes NaN for the largest).
    scores = sa.select(a.run_id, a.best_validation).where(a.best_validation.is_not(None))
    if project_id is not None:
        scores = scores.join(r, a.run_id == r.id).where(r.project_id == project_id)
    best = pd.DataFrame(session.execute(scores).all(), columns=["run_id", "best_validation"])
    by_run = pd.to_numeric(best["best_validation"]).astype(float).groupby(best["run_id"]).max()
    for column in ("kind", "status"):
        frame[column] = frame[column].map(str)
    settings = frame.pop("settings")
    episodes = frame.pop("episodes")
    share_of_bound = frame.pop("share_of_bound")
    # (object dtype keeps None for an unnamed run: pandas' string dtype would make it NaN)
    names = [n if isinstance(n, str) else None for n in frame["name"]]
    frame["name"] = pd.Series(names, index=frame.index, dtype=object)
    for key in KEY_SETTINGS:
        frame[key] = pd.Series([s.get(key) for s in settings], index=frame.index, dtype=object)
    frame["hyperparameters"] = [dict(s.get("hyperparameters") or {}) for s in settings]
    frame["settings"] = [dict(s) for s in settings]
    frame["duration_s"] = _durations(frame)
    frame["best_validation"] = frame["id"].map(by_run).astype(float)
    frame["episodes"] = pd.to_numeric(episodes).astype(int)
    frame["share_of_bound"] = pd.to_numeric(share_of_bound).astype(float)
    frame["evaluated_agent"] = pd.Series(
        [s.get("agent_index") for s in settings], index=frame.index, dtype=object
    )
    return frame


def _durations(frame: pd.DataFrame) -> pd.Series:
    """Seconds from start to end (to now while it runs); NaN where it has not started."""
    if frame.empty:
        return pd.Series([], dtype=float)
    start = pd.to_datetime(frame["started_at"])
    end = pd.to_datetime(frame["finished_at"])
    running = end.isna() & frame["status"].isin(["running", "stopping"])
    end = end.where(~running, pd.Timestamp(models.utcnow()))
    seconds = (end - start).dt.total_seconds()
    return seconds.where(seconds >= 0, np.nan).astype(float)


def rename_run(session: Session, run: models.ProjectRun, name: str | None) -> None:
    """Name a run (None or blank: no name); refused when another run of its project has it."""
    name = name.strip() if name else None
    if name is None:
        run.name = None
        session.flush()
        return
    if len(name) > _NAME_LIMIT:
        raise ValidationError(f"the run name is {len(name)} characters long; at most {_NAME_LIMIT}")
    r = models.ProjectRun
    taken = session.scalar(
        sa.select(r.id).where(r.project_id == run.project_id, r.name == name, r.id != run.id)
    )
    if taken:
        raise AlreadyExistsError(
            f"project {run.project.name!r} already has a run named {name!r} (run {taken}); "
            f"choose another name"
        )
    run.name = name
    session.flush()


def with_evaluations(session: Session, run_ids: Collection[int]) -> list[int]:
    """``run_ids`` and every evaluation run of them (which goes when its training run goes)."""
    r = models.ProjectRun
    found = set(run_ids)
    frontier = set(run_ids)
    while frontier:
        more = set(session.scalars(sa.select(r.id).where(r.source_run_id.in_(frontier))))
        frontier = more - found
        found |= frontier
    return sorted(found)


def runs_on_forecast(session: Session, forecast: models.Forecast) -> list[int]:
    """The runs that trained or evaluated on ``forecast``, with the evaluations of them."""
    r = models.ProjectRun
    return with_evaluations(
        session, list(session.scalars(sa.select(r.id).where(r.forecast_id == forecast.id)))
    )


def runs_of_project(session: Session, project: models.Project) -> list[int]:
    """Every run of ``project`` (its evaluations are runs of it too)."""
    r = models.ProjectRun
    return with_evaluations(
        session, list(session.scalars(sa.select(r.id).where(r.project_id == project.id)))
    )


def run_list_text(session: Session, run_ids: Sequence[int], most: int = 8) -> str:
    """``run 3 'baseline' (training, completed), run 5 (evaluation, failed)``, the first
    ``most`` of them and how many more."""
    r = models.ProjectRun
    rows = session.execute(
        sa.select(r.id, r.name, r.kind, r.status).where(r.id.in_(run_ids)).order_by(r.id)
    ).all()
    kinds = {"train": "training", "evaluate": "evaluation"}
    parts = [f"{label(i, n)} ({kinds.get(str(k), str(k))}, {s})" for i, n, k, s in rows[:most]]
    if len(rows) > most:
        parts.append(f"{len(rows) - most} more")
    return ", ".join(parts)


def check_idle(session: Session, run_ids: Collection[int], busy: Collection[models.Status]) -> None:
    """Refuse (InUseError) when one of the runs is in a ``busy`` status: its processes work on
    it (or are about to); it must be stopped before it is deleted."""
    if not run_ids:
        return
    r = models.ProjectRun
    rows = session.execute(
        sa.select(r.id, r.name, r.status)
        .where(r.id.in_(list(run_ids)), r.status.in_(list(busy)))
        .order_by(r.id)
    ).all()
    if rows:
        which = ", ".join(f"{label(i, n)} is {s}" for i, n, s in rows)
        first = rows[0][0]
        raise InUseError(
            f"{which}: stop it first (wb.stop({first}), or 'Stop run' in the page), "
            f"then delete it once it has stopped"
        )


def _agent_ids(run_ids: Collection[int]) -> sa.Select[Any]:
    return sa.select(models.Agent.id).where(models.Agent.run_id.in_(list(run_ids)))


def _episode_ids(run_ids: Collection[int]) -> sa.Select[Any]:
    e = models.EvaluationEpisode
    return sa.select(e.id).where(
        sa.or_(e.run_id.in_(list(run_ids)), e.agent_id.in_(_agent_ids(run_ids)))
    )


def _curve_ids(run_ids: Collection[int]) -> sa.Select[Any]:
    d = models.TrainStepData
    return sa.select(d.id).where(d.agent_id.in_(_agent_ids(run_ids)))


def _report_ids(run_ids: Collection[int]) -> sa.Select[Any]:
    d = models.ReportData
    return sa.select(d.id).where(d.episode_id.in_(_episode_ids(run_ids)))


def delete_values(
    database: Database,
    run_ids: Collection[int],
    busy: Collection[models.Status],
    *,
    per_transaction: int = VALUES_PER_TRANSACTION,
) -> int:
    """Delete the curve points and episode series of runs about to be deleted, in short
    transactions (each checks again that no run is ``busy``); the rows deleted.

    A full evaluation holds millions of series values: deleting them in one transaction
    would hold the write lock for seconds, past what running agents' heartbeats wait.
    """
    if not run_ids:
        return 0
    v, rv = models.TrainStepValue, models.ReportValue
    with database.read() as session:
        series = list(session.scalars(_report_ids(run_ids)))
        steps = {
            data_id: n
            for data_id, n in session.execute(
                sa.select(rv.data_id, sa.func.count())
                .where(rv.data_id.in_(series))
                .group_by(rv.data_id)
            )
        }
    total = 0

    def points(session: Session) -> int:
        check_idle(session, run_ids, busy)
        batch = sa.select(v.id).where(v.data_id.in_(_curve_ids(run_ids))).limit(per_transaction)
        ids = list(session.scalars(batch))
        if ids:
            session.execute(sa.delete(v).where(v.id.in_(ids)))
        return len(ids)

    while n := database.run_write(points):
        total += n

    chunk: list[int] = []
    rows = 0

    def values(session: Session, data_ids: list[int]) -> None:
        check_idle(session, run_ids, busy)
        session.execute(sa.delete(rv).where(rv.data_id.in_(data_ids)))

    for data_id in series:
        chunk.append(data_id)
        rows += steps.get(data_id, 0)
        if rows >= per_transaction or len(chunk) >= 500:
            database.run_write(lambda s, ids=list(chunk): values(s, ids))  # type: ignore[misc]
            total, chunk, rows = total + rows, [], 0
    if chunk:
        database.run_write(lambda s: values(s, chunk))
        total += rows
    return total


def delete_runs(
    session: Session, run_ids: Collection[int], busy: Collection[models.Status]
) -> None:
    """Delete runs with every row that belongs to them: agents, their curves (TrainStepData
    and TrainStepValue) and stop signals, evaluation episodes with their series, start volumes
    and stop signals, and the evaluations of them (:func:`with_evaluations`).  Refused
    (InUseError, nothing deleted) while one of them is ``busy``."""
    if not run_ids:
        return
    ids = with_evaluations(session, run_ids)
    check_idle(session, ids, busy)
    r = models.ProjectRun
    m = models
    # Subqueries are evaluated by each statement: children first, while their parents exist.
    session.execute(sa.delete(m.ReportValue).where(m.ReportValue.data_id.in_(_report_ids(ids))))
    session.execute(sa.delete(m.ReportData).where(m.ReportData.episode_id.in_(_episode_ids(ids))))
    session.execute(
        sa.delete(m.EvaluationEpisode).where(m.EvaluationEpisode.id.in_(_episode_ids(ids)))
    )
    session.execute(
        sa.delete(m.TrainStepValue).where(m.TrainStepValue.data_id.in_(_curve_ids(ids)))
    )
    session.execute(sa.delete(m.TrainStepData).where(m.TrainStepData.id.in_(_curve_ids(ids))))
    session.execute(sa.delete(m.AgentControl).where(m.AgentControl.agent_id.in_(_agent_ids(ids))))
    session.execute(sa.delete(m.Agent).where(m.Agent.run_id.in_(ids)))
    session.execute(sa.delete(m.ProjectRunControl).where(m.ProjectRunControl.run_id.in_(ids)))
    session.execute(
        sa.delete(m.ProjectRunStartVolume).where(m.ProjectRunStartVolume.run_id.in_(ids))
    )
    # Evaluations before the training runs they point at.
    session.execute(sa.delete(r).where(r.id.in_(ids), r.source_run_id.is_not(None)))
    session.execute(sa.delete(r).where(r.id.in_(ids)))
    session.expire_all()  # (rows of the session's identity map may be gone)


# ---------------------------------------------------------------------- what readers ask


def agent_table(session: Session, run_id: int) -> pd.DataFrame:
    """The agents of a run as stored, one row each in index order (status as its enum)."""
    a = models.Agent
    stmt = (
        sa.select(
            a.index,
            a.id,
            a.status,
            a.status_reason,
            a.seed,
            a.timesteps_done,
            a.best_peak_reward,
            a.best_validation,
            a.checkpoint_path,
            a.best_checkpoint_path,
            a.pid,
            a.started_at,
            a.heartbeat_at,
            a.finished_at,
            a.error,
        )
        .where(a.run_id == run_id)
        .order_by(a.index)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))


def checkpoint_paths(session: Session, run_ids: Collection[int]) -> list[str]:
    """Every checkpoint path (last and best) the agents of these runs recorded."""
    a = models.Agent
    rows = session.execute(
        sa.select(a.checkpoint_path, a.best_checkpoint_path).where(a.run_id.in_(list(run_ids)))
    ).all()
    return [path for row in rows for path in row if path]


#: Curves an agent writes besides learning (their timesteps say nothing of its learning rate).
_NOT_LEARNING = ("imitation/", "validation/", "reference/")


def rate_points(session: Session, agent_id: int, window_s: float) -> list[tuple[Any, Any, Any]]:
    """Per learning curve of an agent (rewards, losses: not imitation, validation or
    reference lines): its (last point, first point, last point ``window_s`` before the last)
    as (timestep, wall_time) rows, each through the (data_id, id) index."""
    d, v = models.TrainStepData, models.TrainStepValue
    other = sa.or_(*[d.name.startswith(p) for p in _NOT_LEARNING])
    found = []
    for data_id in session.scalars(sa.select(d.id).where(d.agent_id == agent_id, ~other)):
        points = sa.select(v.timestep, v.wall_time).where(v.data_id == data_id)
        last = session.execute(points.order_by(v.id.desc()).limit(1)).first()
        if last is None:
            continue
        first = session.execute(points.order_by(v.id).limit(1)).first()
        window = points.where(v.wall_time <= last.wall_time - window_s)
        before = session.execute(window.order_by(v.id.desc()).limit(1)).first()
        found.append((last, first, before or first))
    return found


def _curve_select(run_id: int, series: str | None, *columns: Any) -> sa.Select[Any]:
    a, d, v = models.Agent, models.TrainStepData, models.TrainStepValue
    stmt = (
        sa.select(*columns)
        .select_from(v)
        .join(d, v.data_id == d.id)
        .join(a, d.agent_id == a.id)
        .where(a.run_id == run_id)
    )
    return stmt if series is None else stmt.where(d.name == series)


def read_curves(
    session: Session,
    run_id: int,
    series: str | None,
    after_id: int | Mapping[int, int],
    every: int,
) -> pd.DataFrame:
    """Learning-curve points of a run's agents (id, agent, series, timestep, wall_time as
    epoch seconds, value), oldest first: those after ``after_id`` (one id, or the last id
    seen per agent index), one in ``every`` by id."""
    a, d, v = models.Agent, models.TrainStepData, models.TrainStepValue
    base = _curve_select(
        run_id,
        series,
        v.id.label("id"),
        a.index.label("agent"),
        d.name.label("series"),
        v.timestep,
        v.wall_time,
        v.value,
    )
    if every > 1:
        base = base.where(v.id % every == 0)
    names = list(base.selected_columns.keys())
    stmt: sa.Select[Any] | sa.CompoundSelect
    if isinstance(after_id, Mapping) and after_id:
        # One part per agent seen, each a range on the (data_id, id) index from its own
        # watermark, and one for the agents not seen yet: the monitor's refresh reads what
        # is new, not the whole run (an OR of the conditions scanned every point).
        parts = [base.where(a.index == i, v.id > last) for i, last in after_id.items()]
        parts.append(base.where(a.index.not_in(list(after_id))))
        stmt = sa.union_all(*parts).order_by(sa.literal_column("id"))
    else:  # an id (or an empty watermark: every point)
        lowest = 0 if isinstance(after_id, Mapping) else int(after_id)
        stmt = base.where(v.id > lowest).order_by(v.id)
    # Core rows, taken apart column by column: a DataFrame built from a million Row objects
    # directly costs seconds.
    rows = session.connection().execute(stmt).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pd.DataFrame(dict(zip(names, columns, strict=True)))


def count_curve_points(session: Session, run_id: int, series: str | None) -> int:
    """How many learning-curve points a run has stored (of one series if given)."""
    return int(session.scalar(_curve_select(run_id, series, sa.func.count())) or 0)


def episode_table(session: Session, run_id: int) -> pd.DataFrame:
    """The stored episodes of an evaluation run, in scenario order, with the bound, the
    benchmark and the planner of the same scenario."""
    e, link, a = models.EvaluationEpisode, models.SeriesLink, models.Agent
    stmt = (
        sa.select(
            e.id,
            link.scenario_name.label("scenario"),
            a.index.label("agent"),
            e.revenue_eur,
            e.end_water_value_eur,
            e.total_reward.label("total_eur"),
            e.spill_mm3,
            e.end_volume_mm3,
            e.bound_revenue_eur.label("bound_eur"),
            e.benchmark_revenue_eur.label("benchmark_eur"),
            e.planner_eur,
        )
        .join(link, e.series_link_id == link.id)
        .outerjoin(a, e.agent_id == a.id)
        .where(e.run_id == run_id)
        .order_by(link.scenario_index)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))


def episode_columns(session: Session, episode: models.EvaluationEpisode) -> dict[str, np.ndarray]:
    """An episode's per-step series, by name, in the order they were written."""
    d, v = models.ReportData, models.ReportValue
    n_steps = episode.series_link.forecast.n_steps
    data = session.execute(
        sa.select(d.id, d.name).where(d.episode_id == episode.id).order_by(d.id)
    ).all()
    return {
        name: bulk.read_values(session, v.__table__, "data_id", data_id, n_steps)  # type: ignore[arg-type]
        for data_id, name in data
    }


def run_executor(session: Session, run_id: int) -> str:
    """Where run ``run_id``'s processes run (:mod:`hydrorl.launchers`): what it was started
    with, ``local`` for a run from before executors (or none such)."""
    settings = session.scalar(
        sa.select(models.ProjectRun.settings).where(models.ProjectRun.id == run_id)
    )
    return str((settings or {}).get("executor") or "local")
