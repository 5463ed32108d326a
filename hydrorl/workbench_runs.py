"""The workbench verbs for runs: start, watch, stop, resume, evaluate, read episodes.

A part of :class:`hydrorl.Workbench` (mixed in), kept apart because runs are a
concept of their own: they talk to background processes through the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydrorl.db import Database, models
from hydrorl.db import forecasts as forecast_store
from hydrorl.db import projects as project_store
from hydrorl.db import runs as run_store
from hydrorl.db import systems as system_store
from hydrorl.errors import NotFoundError, ValidationError
from hydrorl.project import TrainingSettings

_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1

# How long a reader reaping in passing waits for another process's transaction (s).
_PASSING_LOCK_WAIT_S = 2.0


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A training or evaluation run: where it stands and why."""

    id: int
    kind: str
    status: str
    status_reason: str
    project: str
    forecast: str
    settings: dict[str, Any]
    error: str | None
    created_at: pd.Timestamp
    started_at: pd.Timestamp | None
    finished_at: pd.Timestamp | None
    source_run_id: int | None = None
    #: What the user named it (:meth:`RunVerbs.rename_run`); None: it is "run <id>".
    name: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "stopped", "failed")

    @property
    def label(self) -> str:
        """``run 3 'baseline'``, or ``run 3`` when it has no name."""
        return run_store.label(self.id, self.name)


#: The window over which an agent's learning rate (timesteps per second) is measured.
RATE_WINDOW_S = 60.0


def _phase(status: str, reason: str | None) -> str:
    """What an agent is doing, from its status and reason: queued, starting, preparing (water
    values, forecast, validation references), imitating, learning, or its final status."""
    if status not in ("running", "stopping"):
        return status
    reason = reason or ""
    if reason.startswith("starting"):
        return "starting"
    if reason.startswith(("imitating", "validating after imitation")):
        return "imitating"
    if reason:
        return "preparing"
    return "learning" if status == "running" else "stopping"


def key(thing: Any) -> Any:
    """The id of a run, project, forecast or system given as what the workbench returned for
    it (a :class:`RunInfo`, ``ProjectInfo``, ...), else ``thing`` itself (a name or an id)."""
    if isinstance(thing, int) and not isinstance(thing, bool) and not _ID_MIN <= thing <= _ID_MAX:
        # (no row has it: the database's ids are 64-bit; SQLite would overflow on it)
        raise NotFoundError(f"nothing has the id {thing}: ids are 64-bit integers")
    if isinstance(thing, (int, str)) or thing is None:
        return thing
    found = getattr(thing, "id", None)
    if isinstance(found, int):
        return found
    raise TypeError(f"expected a name, an id or what the workbench returned, not {thing!r}")


class RunVerbs:
    """Run verbs of the workbench (see :class:`hydrorl.Workbench`); a run is named by its id
    or by the :class:`RunInfo` the workbench returned for it."""

    database: Database

    # ------------------------------------------------------------------ runs

    def start_training(
        self,
        project: str | int,
        forecast: str | int,
        *,
        start_volumes: Sequence[float] | Mapping[str, float] | None = None,
        system: str | int | None = None,
        **overrides: Any,
    ) -> RunInfo:
        """Start training the agents of ``project`` on ``forecast`` in background processes.

        Returns at once.  ``overrides`` change the project's settings for this run
        (``agents=2, timesteps=50_000, algorithm="SAC", hyperparameters={...}``).
        Bad settings are refused before any process starts.
        """
        from hydrorl.training import launch
        from hydrorl.training.algorithm import check_settings

        project, forecast, system = key(project), key(forecast), key(system)
        with self.database.read() as session:
            system_row = system_store.get_system(session, system) if system is not None else None
            project_row = project_store.get_project(session, project, system_row)
            project_id, n_stations = project_row.id, len(project_row.system.power_stations)
            settings = TrainingSettings.from_dict(project_row.settings)
            settings = settings.replace(**overrides) if overrides else settings
            volumes = launch.check_start_volumes(
                project_row.system,
                None
                if start_volumes is None
                else (dict(start_volumes) if isinstance(start_volumes, Mapping) else start_volumes),
            )
        # Outside any transaction: it builds a model, which may import SB3 for seconds.
        check_settings(settings, n_stations)

        def create(session: Any) -> int:
            project_row = session.get(models.Project, project_id)
            forecast_row = forecast_store.get_forecast(session, forecast, project_row.system)
            return launch.create_training_run(
                session, project_row, forecast_row, settings, volumes
            ).id

        run_id = self.database.run_write(create)
        launch.start_process(self.database, "supervisor", run_id)
        return self.run(run_id)

    def runs(self, project: str | int | None = None) -> pd.DataFrame:
        """Every run (of one project if given), newest last: one row each.

        Columns: ``id``, ``project``, ``forecast``, ``kind`` (train, evaluate), ``status``,
        ``status_reason``, ``agents``, ``source_run_id`` (an evaluation's training run), the
        times (``created_at``, ``started_at``, ``finished_at``, ``heartbeat_at``, naive UTC),
        then ``name`` (None: unnamed), ``system``, the key settings (``algorithm``,
        ``timesteps``, ``seed``, ``guide``, ``n_envs``, ``episode_steps``),
        ``hyperparameters`` and ``settings`` (what it ran with, as dicts), ``duration_s``
        (until now while it runs), ``best_validation`` (a training run's best agent on its
        held-aside scenarios, a share of their bound), ``episodes`` and ``share_of_bound``
        (an evaluation's mean over its episodes of the value over the bound) and
        ``evaluated_agent``.  NaN where not known (yet).
        """
        project = key(project)
        self._look_for_deaths()
        with self.database.read() as session:
            project_id = None
            if project is not None:
                project_id = project_store.get_project(session, project).id
            return run_store.list_runs(session, project_id)

    def run(self, run_id: int | RunInfo) -> RunInfo:
        """One run's status, reason and error (the traceback of what failed)."""
        run_id = key(run_id)
        self._look_for_deaths()
        with self.database.read() as session:
            row = session.get(models.ProjectRun, run_id)
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            return RunInfo(
                id=row.id,
                kind=str(row.kind),
                status=str(row.status),
                status_reason=row.status_reason,
                project=row.project.name,
                forecast=row.forecast.name,
                settings=dict(row.settings),
                error=row.error,
                created_at=pd.Timestamp(row.created_at),
                started_at=pd.Timestamp(row.started_at) if row.started_at else None,
                finished_at=pd.Timestamp(row.finished_at) if row.finished_at else None,
                source_run_id=row.source_run_id,
                name=row.name,
            )

    def rename_run(self, run_id: int | RunInfo, name: str | None) -> RunInfo:
        """Name a run (``None`` or blank: take its name away); return it as renamed.

        Raises NotFoundError for no such run, AlreadyExistsError when another run of its
        project has the name, ValidationError for a name over 200 characters.
        """
        ident: int = key(run_id)
        self.database.run_write(
            lambda s: run_store.rename_run(s, run_store.get_run(s, ident), name)
        )
        return self.run(ident)

    def delete_run(self, run_id: int | RunInfo) -> list[int]:
        """Delete a run with everything of it: its agents, curves, episodes and the
        evaluation runs of it, and its folder (checkpoints, logs, start-up pieces); return the
        ids of the runs deleted (it first, then its evaluations).

        Raises NotFoundError for no such run and InUseError (nothing deleted) while it or one
        of its evaluations is queued, running or stopping: stop it first.
        """
        ident: int = key(run_id)
        return self._delete_runs(
            lambda s: run_store.with_evaluations(s, [run_store.get_run(s, ident).id])
        )

    def _delete_runs(
        self,
        find: Callable[[Any], list[int]],
        then: Callable[[Any], None] | None = None,
        *,
        refuse: Callable[[Any, list[int]], None] | None = None,
    ) -> list[int]:
        """Delete the runs ``find(session)`` names, then do ``then(session)`` in the same last
        transaction (delete what held them); remove their folders; return their ids.

        Everything is checked before anything is deleted: ``refuse(session, ids)`` may raise,
        and so does a run that is busy.  The big value tables go first in short transactions
        (:func:`hydrorl.db.runs.delete_values`), the rest in one.
        """
        from hydrorl.jobs.status import ACTIVE

        with self.database.read() as session:
            ids = find(session)
            if refuse is not None:
                refuse(session, ids)
            run_store.check_idle(session, ids, ACTIVE)
        run_store.delete_values(self.database, ids, ACTIVE)
        moved: dict[Path, Path] = {}  # a run's files -> where they wait to be removed

        def delete(session: Any) -> list[int]:
            found = run_store.with_evaluations(session, find(session))
            files = self._run_files(session, found)
            run_store.delete_runs(session, found, ACTIVE)
            if then is not None:
                then(session)
            session.flush()
            # Moved aside before the commit: SQLite may give a new run the id (and so the
            # folder) of a deleted one as soon as it is committed.
            for path in files:
                if path not in moved and path.exists():
                    aside = path.with_name(f"{path.name}.deleted-{uuid.uuid4().hex[:8]}")
                    path.rename(aside)
                    moved[path] = aside
            return found

        try:
            deleted = self.database.run_write(delete)
        except BaseException:
            for path, aside in moved.items():  # nothing deleted: the files go back
                with contextlib.suppress(OSError):
                    aside.rename(path)
            raise
        self._remove_files(list(moved.values()))
        return deleted

    def _run_files(self, session: Any, run_ids: list[int]) -> list[Path]:
        """The folders of runs (checkpoints, logs, shared start-up pieces) and any checkpoint
        of their agents kept elsewhere."""
        from hydrorl.training.agent import run_folder

        folders = [run_folder(self.database.url, i) for i in run_ids]
        outside = [
            Path(p)
            for p in run_store.checkpoint_paths(session, run_ids)
            if not any(Path(p).is_relative_to(f) for f in folders)
        ]
        return folders + outside

    @staticmethod
    def _remove_files(paths: list[Path]) -> None:
        """Remove deleted runs' files; what cannot be removed is named in the error."""
        import shutil

        from hydrorl.errors import HydroRLError

        left = []
        for path in paths:
            try:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            except OSError as e:
                left.append(f"{path} ({e.strerror or e})")
        if left:
            raise HydroRLError(
                "the runs were deleted from the database, but these files could not be "
                f"removed: {', '.join(left)}; remove them by hand"
            )

    def agents(self, run_id: int | RunInfo) -> pd.DataFrame:
        """The agents of a training run: status, progress, best peak reward and best validation
        (a share of the bound on the run's held-aside scenarios), errors."""
        ident: int = key(run_id)
        self._look_for_deaths()
        with self.database.read() as session:
            frame = run_store.agent_table(session, ident)
            run = session.get(models.ProjectRun, ident)
            target = run.settings.get("timesteps") if run else None
        frame["status"] = frame["status"].map(str)
        frame.insert(4, "phase", [_phase(*r) for r in frame[["status", "status_reason"]].values])
        frame.insert(6, "timesteps", target)
        done = pd.to_numeric(frame["timesteps_done"]).astype(float)
        progress = (done / target).clip(0.0, 1.0) if target else np.nan
        frame.insert(7, "progress", progress)  # SB3 may overshoot its budget by a rollout
        frame.insert(8, "eta_s", self._etas(frame, target))
        return frame

    def _etas(self, agents: pd.DataFrame, target: int | None) -> pd.Series:
        """Seconds left per agent while it learns, from its measured rate: the timesteps of its
        learning curves (rewards, losses: whatever it recorded last) over its last minute or
        more, validations and checkpoints included; NaN where no rate is measured yet (start-up,
        imitation, the first rollout) or it is not learning."""
        eta = pd.Series(np.nan, index=agents.index, dtype=float)
        learning = agents["phase"] == "learning"
        if not target or not learning.any():
            return eta
        with self.database.read() as session:
            for i, agent_id in agents.loc[learning, "id"].items():
                found = run_store.rate_points(session, int(agent_id), RATE_WINDOW_S)
                if not found:
                    continue
                last = max((r[0] for r in found), key=lambda p: p.wall_time)
                earlier = max(
                    (p for r in found for p in r if p.wall_time <= last.wall_time - RATE_WINDOW_S),
                    key=lambda p: p.wall_time,
                    default=min((r[1] for r in found), key=lambda p: p.wall_time),
                )
                seconds = last.wall_time - earlier.wall_time
                steps = last.timestep - earlier.timestep
                if seconds > 0 and steps > 0:
                    done = max(float(agents.at[i, "timesteps_done"] or 0), float(last.timestep))
                    eta.at[i] = max(target - done, 0.0) / (steps / seconds)
        return eta

    def curves(
        self,
        run_id: int | RunInfo,
        series: str | None = "episode_reward",
        *,
        after_id: int | Mapping[int, int] = 0,
        every: int = 1,
    ) -> pd.DataFrame:
        """Learning-curve points of a run's agents, oldest first.

        ``series`` names the curve (None: all of them); ``every`` keeps one point in
        ``every`` (by id), for an overview of a long run.  For live plots pass the
        watermark of the last read as ``after_id``: the frame's
        ``attrs["watermark"]``, the last id seen per agent.  That read misses nothing
        on any backend: each agent's points are committed in order by its one writer,
        while ids of different agents may become visible out of order (PostgreSQL
        under concurrent commits), so one id for the whole run would skip points.
        A plain int ``after_id`` returns every point with a larger id.
        """
        ident: int = key(run_id)
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValidationError(f"every = {every!r} must be an integer >= 1")
        seen = dict(after_id) if isinstance(after_id, Mapping) else {}
        with self.database.read() as session:
            frame = run_store.read_curves(session, ident, series, after_id, every)
        frame["wall_time"] = pd.to_datetime(frame["wall_time"], unit="s")
        if len(frame):
            seen.update(frame.groupby("agent")["id"].max().astype(int).to_dict())
        frame.attrs["watermark"] = {int(k): int(w) for k, w in seen.items()}
        return frame

    def curve_points(self, run_id: int | RunInfo, series: str | None = "episode_reward") -> int:
        """How many learning-curve points a run has stored."""
        ident: int = key(run_id)
        with self.database.read() as session:
            return run_store.count_curve_points(session, ident, series)

    def stop(self, run_id: int | RunInfo, agent: int | None = None) -> None:
        """Ask a run (or one agent, by index) to stop; it ends within seconds, checkpoints kept."""
        from hydrorl.training import launch

        ident: int = key(run_id)
        self.database.run_write(lambda s: launch.request_stop(s, ident, agent))

    def resume(self, run_id: int | RunInfo) -> RunInfo:
        """Go on with a failed or stopped run from its agents' last checkpoints."""
        from hydrorl.training import launch

        ident: int = key(run_id)
        self.database.run_write(lambda s: launch.prepare_resume(s, ident))
        launch.start_process(self.database, "supervisor", ident)
        return self.run(ident)

    def wait(
        self,
        run_id: int | RunInfo,
        timeout: float | None = None,
        poll: float = 1.0,
        *,
        until_learning: bool = False,
    ) -> RunInfo:
        """Block until the run has ended (or ``timeout`` seconds passed); return its status.

        With ``until_learning`` it returns as soon as every agent of the run is
        learning by reinforcement (its preparation and imitation done: nothing in its status
        reason) and has saved a checkpoint (or the run has ended).
        """
        run_id = key(run_id)
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._reap_unless_locked()
            info = self.run(run_id)
            if info.done or (deadline is not None and time.monotonic() > deadline):
                return info
            if until_learning:
                agents = self.agents(run_id)
                learning = (
                    (agents["status"] == "running")
                    & agents["checkpoint_path"].notna()
                    & (agents["status_reason"] == "")
                )
                if len(agents) and learning.all():
                    return info
            time.sleep(poll)

    def evaluate(
        self, run_id: int | RunInfo, forecast: str | int | None = None, *, agent: int | None = None
    ) -> RunInfo:
        """Evaluate a training run's best agent (or ``agent``) on every scenario, in the background.

        ``forecast`` defaults to the training forecast; any forecast of the same
        system works (e.g. held-out scenarios).
        """
        run_id, forecast = key(run_id), key(forecast)
        from hydrorl.training import launch

        def create(session: Any) -> int:
            source = session.get(models.ProjectRun, run_id)
            if source is None:
                raise NotFoundError(f"no run {run_id}")
            target = (
                source.forecast
                if forecast is None
                else forecast_store.get_forecast(session, forecast, source.forecast.system)
            )
            return launch.create_evaluation_run(session, source, target, agent).id

        eval_id = self.database.run_write(create)
        launch.start_process(self.database, "evaluate", eval_id)
        return self.run(eval_id)

    def episodes(self, run_id: int | RunInfo) -> pd.DataFrame:
        """The episodes of an evaluation run: one per scenario, with the bound, the SDP benchmark
        and the forecast planner of the same scenario; ``vs_best_classical`` is the agent over
        the better of the two policies."""
        ident: int = key(run_id)
        with self.database.read() as session:
            frame = run_store.episode_table(session, ident)
        frame["share_of_bound"] = frame["total_eur"] / frame["bound_eur"]
        frame["vs_benchmark"] = frame["total_eur"] / frame["benchmark_eur"]
        frame["planner_eur"] = frame["planner_eur"].astype(float)  # NaN: evaluated before it
        best = frame[["benchmark_eur", "planner_eur"]].max(axis=1)  # NaN-skipping
        frame["vs_best_classical"] = frame["total_eur"] / best
        return frame

    def episode_series(self, episode_id: int) -> pd.DataFrame:
        """Per-step series of one episode (one column each), indexed by time."""
        key(episode_id)  # (an id no row can have)
        with self.database.read() as session:
            episode = session.get(models.EvaluationEpisode, episode_id)
            if episode is None:
                raise NotFoundError(f"no evaluation episode {episode_id}")
            forecast = episode.series_link.forecast
            columns = run_store.episode_columns(session, episode)
            times = pd.date_range(
                forecast.start_time,
                periods=forecast.n_steps,
                freq=pd.Timedelta(seconds=forecast.step_seconds),
            )
        return pd.DataFrame(columns, index=pd.Index(times, name="time"))

    def reap(self, *, lock_wait: float | None = None) -> list[Any]:
        """Fail runs and agents whose processes are gone, with the reason; return them.

        Looking is a read; only what is found dead is written.  ``run``, ``runs`` and
        ``agents`` call it themselves (at most every ``HYDRORL_REAP_INTERVAL_S``), so an
        open dashboard or notebook sees a death within seconds.  ``lock_wait``: the most
        seconds to wait for another process's transaction on the rows to fail (default:
        SQLite's busy timeout); past it :class:`~hydrorl.db.LockWaitTimeout` is raised.
        """
        import time

        from hydrorl import settings
        from hydrorl.jobs.reaper import find_stale, reap_stale

        self._last_reap = time.monotonic()
        with self.database.read() as session:
            found = find_stale(session)
        if not found:
            return []
        if lock_wait is None:
            lock_wait = settings.sqlite_busy_timeout_ms() / 1000
        # Judged again, under the lock.
        return self.database.run_write(lambda s: reap_stale(s), lock_wait=lock_wait)

    def _reap_unless_locked(self) -> None:
        """Reap in passing: a process stuck inside a write (stopped, swapped out) holds its
        rows locked, and a reader must not hang behind it; the next look tries again."""
        from hydrorl.db import LockWaitTimeout

        with contextlib.suppress(LockWaitTimeout):
            self.reap(lock_wait=_PASSING_LOCK_WAIT_S)

    def _look_for_deaths(self) -> None:
        import time

        from hydrorl import settings

        last = getattr(self, "_last_reap", None)
        if last is None or time.monotonic() - last >= settings.reap_interval_seconds():
            self._reap_unless_locked()
