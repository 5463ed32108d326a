"""Creating runs and their processes: start, stop, resume, evaluate (called by the workbench)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import Database, models
from hydrorl.db.models import ControlCommand, RunKind, Status, utcnow
from hydrorl.db.runs import run_executor
from hydrorl.errors import HydroRLError, NotFoundError, ValidationError
from hydrorl.jobs.ownership import record_owner
from hydrorl.jobs.status import ACTIVE, FINAL, transition
from hydrorl.launchers import executor_of, launcher_for
from hydrorl.project import TrainingSettings
from hydrorl.training.agent import run_folder


def check_start_volumes(
    system: models.HydroSystem, volumes: Sequence[float] | dict[str, float] | None
) -> np.ndarray:
    """Start volumes in reservoir order, half full where not given; refused outside bounds."""
    reservoirs = system.reservoirs
    if volumes is None:
        return np.array([(r.min_volume_mm3 + r.max_volume_mm3) / 2 for r in reservoirs])
    if isinstance(volumes, dict):
        unknown = set(volumes) - {r.name for r in reservoirs}
        if unknown:
            raise ValidationError(
                f"start volumes: no reservoir {', '.join(map(repr, sorted(unknown)))} in system "
                f"{system.name!r} (reservoirs: {', '.join(r.name for r in reservoirs)})"
            )
        values = [
            volumes.get(r.name, (r.min_volume_mm3 + r.max_volume_mm3) / 2) for r in reservoirs
        ]
    else:
        values = list(volumes)
        if len(values) != len(reservoirs):
            raise ValidationError(
                f"start volumes: {len(values)} given, system {system.name!r} has "
                f"{len(reservoirs)} reservoirs ({', '.join(r.name for r in reservoirs)})"
            )
    for r, v in zip(reservoirs, values, strict=True):
        if not np.isfinite(v) or not r.min_volume_mm3 <= v <= r.max_volume_mm3:
            raise ValidationError(
                f"start volume of reservoir {r.name!r} = {v} Mm3 is outside its limits "
                f"[{r.min_volume_mm3}, {r.max_volume_mm3}]"
            )
    return np.array(values, dtype=float)


def create_training_run(
    session: Session,
    project: models.Project,
    forecast: models.Forecast,
    settings: TrainingSettings,
    volumes: np.ndarray,
) -> models.ProjectRun:
    """Write a queued training run with its agents and start volumes (no process yet)."""
    settings.validate()
    if forecast.system_id != project.system_id:
        raise ValidationError(
            f"forecast {forecast.name!r} belongs to system {forecast.system.name!r}, project "
            f"{project.name!r} to system {project.system.name!r}; use a forecast of the same system"
        )
    reservoirs = list(project.system.reservoirs)  # (read before the run joins the session)
    run = models.ProjectRun(
        project=project,
        forecast=forecast,
        kind=RunKind.TRAIN,
        status=Status.QUEUED,
        # What it really runs with, and where (the supervisor and a resume use the same).
        settings={**settings.resolved().to_dict(), "executor": executor_of(settings.executor)},
    )
    session.add(run)
    run.start_volumes = [
        models.ProjectRunStartVolume(reservoir_id=r.id, volume_mm3=float(v))
        for r, v in zip(reservoirs, volumes, strict=True)
    ]
    run.agents = [
        models.Agent(index=i, seed=settings.seed + i, status=Status.QUEUED)
        for i in range(settings.agents)
    ]
    session.add(run)
    session.flush()
    return run


def start_process(db: Database, kind: str, run_id: int) -> None:
    """Start the detached process that owns a queued run, where the run's executor says
    (:mod:`hydrorl.launchers`); a failure to start fails the run."""
    with db.read() as session:
        executor = run_executor(session, run_id)
    try:
        process = launcher_for(executor).start(
            kind, db.url, run_id, run_folder(db.url, run_id) / f"{kind}.log", detach=True
        )
    except Exception as e:  # noqa: BLE001  (whatever the launcher met: the run says it)
        problem = str(e)
        db.run_write(
            lambda s: transition(
                s,
                models.ProjectRun,
                run_id,
                Status.FAILED,
                finished_at=utcnow(),
                status_reason=f"could not start the {kind} process: {problem}",
                error=problem,
            )
        )
        raise HydroRLError(f"could not start the {kind} process of run {run_id}: {e}") from e
    if process.pid is not None:
        record_owner(db, models.ProjectRun, run_id, process.pid)


def request_stop(session: Session, run_id: int, agent_index: int | None = None) -> None:
    """Ask a run (or one of its agents) to stop; honoured within seconds."""
    run = session.get(models.ProjectRun, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    if agent_index is None:
        if run.status in FINAL:
            return
        now = utcnow()
        if run.status == Status.QUEUED and transition(
            session,
            models.ProjectRun,
            run_id,
            Status.STOPPED,
            status_reason="stopped before it started",
            finished_at=now,
        ):
            session.execute(
                sa.update(models.Agent)
                .where(models.Agent.run_id == run_id, models.Agent.status == Status.QUEUED)
                .values(status=Status.STOPPED, status_reason="run stopped before it started")
            )
            return
        # Straight to the agents, not through the supervisor: one hop less, and the run
        # says "stopping" from this commit on.
        session.add(
            models.ProjectRunControl(run_id=run_id, command=ControlCommand.STOP, handled_at=now)
        )
        transition(
            session, models.ProjectRun, run_id, Status.STOPPING, status_reason="stop requested"
        )
        session.execute(
            sa.update(models.Agent)
            .where(models.Agent.run_id == run_id, models.Agent.status == Status.QUEUED)
            .values(
                status=Status.STOPPED, status_reason="stopped before it started", finished_at=now
            )
        )
        running = session.scalars(
            sa.select(models.Agent.id).where(
                models.Agent.run_id == run_id,
                models.Agent.status.in_([Status.RUNNING, Status.STOPPING]),
            )
        ).all()
        session.add_all(
            [models.AgentControl(agent_id=a, command=ControlCommand.STOP) for a in running]
        )
        return
    agent = session.scalar(
        sa.select(models.Agent).where(
            models.Agent.run_id == run_id, models.Agent.index == agent_index
        )
    )
    if agent is None:
        raise NotFoundError(f"run {run_id} has no agent {agent_index}")
    if agent.status in ACTIVE:
        session.add(models.AgentControl(agent_id=agent.id, command=ControlCommand.STOP))


def prepare_resume(session: Session, run_id: int) -> None:
    """Queue a failed or stopped run and its unfinished agents again."""
    run = session.get(models.ProjectRun, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    if run.kind != RunKind.TRAIN:
        raise ValidationError(f"run {run_id} is an evaluation; start a new evaluation instead")
    # The old processes are dead; the new ones are judged from when they are queued.
    fresh = {
        "pid": None,
        "host": None,
        "process_start": None,
        "heartbeat_at": None,
        "queued_at": utcnow(),
        "finished_at": None,
        "error": None,
    }
    if not transition(
        session, models.ProjectRun, run_id, Status.QUEUED, status_reason="resumed", **fresh
    ):
        raise ValidationError(
            f"run {run_id} is {run.status}; only failed or stopped runs can be resumed"
        )
    for agent in run.agents:
        if agent.status in (Status.FAILED, Status.STOPPED):
            transition(
                session, models.Agent, agent.id, Status.QUEUED, status_reason="resumed", **fresh
            )
    # Controls of the previous life are done with.
    session.execute(
        sa.update(models.AgentControl)
        .where(
            models.AgentControl.agent_id.in_([a.id for a in run.agents]),
            models.AgentControl.handled_at.is_(None),
        )
        .values(handled_at=utcnow())
    )
    session.execute(
        sa.update(models.ProjectRunControl)
        .where(
            models.ProjectRunControl.run_id == run_id,
            models.ProjectRunControl.handled_at.is_(None),
        )
        .values(handled_at=utcnow())
    )


def create_evaluation_run(
    session: Session,
    source: models.ProjectRun,
    forecast: models.Forecast,
    agent_index: int | None,
) -> models.ProjectRun:
    """Write a queued evaluation run of ``source``'s best (or chosen) agent on ``forecast``."""
    if source.kind != RunKind.TRAIN:
        raise ValidationError(f"run {source.id} is not a training run")
    if forecast.system_id != source.forecast.system_id:
        raise ValidationError(
            f"forecast {forecast.name!r} belongs to system {forecast.system.name!r}, run "
            f"{source.id} to system {source.forecast.system.name!r}"
        )
    with_model = [a for a in source.agents if a.best_checkpoint_path or a.checkpoint_path]
    if agent_index is not None:
        chosen = [a for a in with_model if a.index == agent_index]
        if not chosen:
            raise ValidationError(f"agent {agent_index} of run {source.id} has no checkpoint")
        agent = chosen[0]
    else:
        if not with_model:
            raise ValidationError(f"run {source.id} has no agent with a checkpoint yet")
        agent = max(with_model, key=_merit)
    run = models.ProjectRun(
        project_id=source.project_id,
        forecast=forecast,
        source_run_id=source.id,
        kind=RunKind.EVALUATE,
        status=Status.QUEUED,
        settings={**source.settings, "agent_id": agent.id, "agent_index": agent.index},
    )
    run.start_volumes = [
        models.ProjectRunStartVolume(reservoir_id=v.reservoir_id, volume_mm3=v.volume_mm3)
        for v in source.start_volumes
    ]
    session.add(run)
    session.flush()
    return run


def _merit(agent: models.Agent) -> tuple[float, float]:
    """How good an agent is: its best validated score (a share of the bound on the run's
    held-aside scenarios, the same for all its agents), then its best peak training reward."""
    validated = -np.inf if agent.best_validation is None else agent.best_validation
    peak = -np.inf if agent.best_peak_reward is None else agent.best_peak_reward
    return validated, peak
