"""The workbench: HydroRL's one high-level interface (DESIGN.md §4).

``hydrorl.connect()`` returns a :class:`Workbench`; its verbs hide the tables
and hand back plain data: pandas DataFrames for tables and series, frozen
dataclasses for single objects.  The UI components, notebooks, CLI and HTTP
server are built on this object only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hydrorl import demo
from hydrorl.db import Database, bulk, models
from hydrorl.db import forecasts as forecast_store
from hydrorl.db import projects as project_store
from hydrorl.db import systems as system_store
from hydrorl.db.problems import load_problem
from hydrorl.errors import NotFoundError
from hydrorl.forecast import ForecastTable, read_forecast
from hydrorl.physics import Problem
from hydrorl.project import TrainingSettings
from hydrorl.system import HydroSystem, PowerStation

SystemSource: TypeAlias = HydroSystem | Mapping[str, Any] | str | Path
ForecastSource: TypeAlias = str | Path | pd.DataFrame | ForecastTable


@dataclasses.dataclass(frozen=True)
class ForecastInfo:
    """A stored forecast: its time grid, scenarios and the upload it came from."""

    id: int
    name: str
    system: str
    start_time: pd.Timestamp
    step: pd.Timedelta
    n_steps: int
    scenario_names: tuple[str, ...]
    file_name: str | None
    content_hash: str | None
    description: str = ""

    @property
    def end_time(self) -> pd.Timestamp:
        return self.start_time + self.step * self.n_steps


@dataclasses.dataclass(frozen=True)
class ProjectInfo:
    """A stored project and its training settings."""

    id: int
    name: str
    system: str
    settings: TrainingSettings
    description: str = ""


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

    @property
    def done(self) -> bool:
        return self.status in ("completed", "stopped", "failed")


def connect(url: str | None = None) -> Workbench:
    """Open (creating or upgrading as needed) a HydroRL database and return its workbench.

    ``url`` is any SQLAlchemy URL; by default ``$HYDRORL_DATABASE_URL`` or the
    SQLite file ``~/.hydrorl/hydrorl.db`` (``$HYDRORL_HOME`` moves the folder).
    A plain file path is taken as an SQLite file.
    """
    if url is not None and "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return Workbench(Database(url))


class Workbench:
    """Systems, forecasts and projects of one HydroRL database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.reap()

    @property
    def url(self) -> str:
        return self.database.url

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hydrorl.Workbench {self.database!r}>"

    # ------------------------------------------------------------------ systems

    def create_system(self, system: SystemSource) -> HydroSystem:
        """Store a hydro system given as a HydroSystem, a mapping or a YAML/JSON file path."""
        if isinstance(system, str | Path):
            spec = HydroSystem.from_file(system)
        elif isinstance(system, Mapping):
            spec = HydroSystem.from_dict(system)
        else:
            spec = system.validate()
        with self.database.write() as session:
            system_store.add_system(session, spec)
        return spec

    def systems(self) -> pd.DataFrame:
        """All systems, with counts of reservoirs, stations, forecasts and projects."""
        with self.database.read() as session:
            return system_store.list_systems(session)

    def system(self, name: str | int) -> HydroSystem:
        """A stored system as plain data."""
        with self.database.read() as session:
            return system_store.to_spec(system_store.get_system(session, name))

    def reservoirs(self, system: str | int) -> pd.DataFrame:
        """The reservoirs of a system, one row each, in definition order."""
        spec = self.system(system)
        frame = pd.DataFrame([dataclasses.asdict(r) for r in spec.reservoirs])
        # object dtype keeps None (the sea) as None rather than NaN
        frame["spill_to"] = pd.Series(
            [spec.spill_target(r.name) for r in spec.reservoirs], dtype=object
        )
        frame["energy_to_sea_kwh_m3"] = [spec.energy_to_sea_kwh_m3(r.name) for r in spec.reservoirs]
        return frame

    def power_stations(self, system: str | int) -> pd.DataFrame:
        """The power stations of a system, one row each (downstream None: the sea)."""
        spec = self.system(system)
        columns = [f.name for f in dataclasses.fields(PowerStation)]
        frame = pd.DataFrame([dataclasses.asdict(s) for s in spec.power_stations], columns=columns)
        frame["downstream"] = pd.Series([s.downstream for s in spec.power_stations], dtype=object)
        return frame

    def delete_system(self, name: str | int, *, cascade: bool = False) -> None:
        """Delete a system; with forecasts or projects only when ``cascade`` is true."""
        with self.database.write() as session:
            system_store.delete_system(session, name, cascade=cascade)

    # ------------------------------------------------------------------ forecasts

    def read_forecast(self, source: ForecastSource, *, name: str | None = None) -> ForecastTable:
        """Read and validate a forecast without storing it (a preview)."""
        if isinstance(source, ForecastTable):
            return source
        return read_forecast(source, name=name)

    def upload_forecast(
        self,
        system: str | int,
        source: ForecastSource,
        name: str | None = None,
        *,
        description: str = "",
        allow_duplicate: bool = False,
    ) -> ForecastInfo:
        """Validate and store a forecast for ``system`` in one transaction.

        ``source`` is a CSV, Parquet or Excel file, a DataFrame (format: see
        :mod:`hydrorl.forecast`) or a ForecastTable.  On any error nothing is
        written.  The same content uploaded twice raises DuplicateUploadError
        unless ``allow_duplicate`` is true.
        """
        table = self.read_forecast(source)
        if name is None:
            name = Path(table.source_name).stem if table.source_format != "dataframe" else None
            if not name:
                raise ValueError("name the forecast: name='...'")
        with self.database.write() as session:
            system_row = system_store.get_system(session, system)
            row = forecast_store.add_forecast(
                session,
                system_row,
                table,
                name,
                description=description,
                allow_duplicate=allow_duplicate,
            )
            return _forecast_info(row)

    def forecasts(self, system: str | int | None = None) -> pd.DataFrame:
        """All forecasts (of one system if given)."""
        with self.database.read() as session:
            row = system_store.get_system(session, system) if system is not None else None
            return forecast_store.list_forecasts(session, row)

    def forecast(self, name: str | int, system: str | int | None = None) -> ForecastInfo:
        with self.database.read() as session:
            return _forecast_info(self._forecast_row(session, name, system))

    def scenarios(self, forecast: str | int, system: str | int | None = None) -> pd.DataFrame:
        """The scenarios of a forecast (one SeriesLink each)."""
        with self.database.read() as session:
            return forecast_store.list_scenarios(
                session, self._forecast_row(session, forecast, system)
            )

    def forecast_table(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> ForecastTable:
        """Stored values as (scenarios, steps) arrays: the fast path for plots and physics."""
        with self.database.read() as session:
            row = self._forecast_row(session, forecast, system)
            return forecast_store.read_table(session, row, scenarios)

    def forecast_data(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> pd.DataFrame:
        """Stored values in the upload's long format: time, scenario, price, inflow."""
        return self.forecast_table(forecast, scenarios, system).to_frame()

    def uploads(self) -> pd.DataFrame:
        """Every upload: file name, format, content hash, size, rows, time."""
        u = models.Upload
        with self.database.read() as session:
            stmt = sa.select(
                u.id,
                u.file_name,
                u.file_format,
                u.content_hash,
                u.size_bytes,
                u.row_count,
                u.uploaded_at,
            ).order_by(u.id)
            return pd.DataFrame(
                session.execute(stmt).all(), columns=list(stmt.selected_columns.keys())
            )

    def delete_forecast(self, name: str | int, system: str | int | None = None) -> None:
        with self.database.write() as session:
            forecast_store.delete_forecast(session, self._forecast_row(session, name, system))

    def _forecast_row(
        self, session: Any, name: str | int, system: str | int | None
    ) -> models.Forecast:
        system_row = system_store.get_system(session, system) if system is not None else None
        return forecast_store.get_forecast(session, name, system_row)

    def problem(
        self,
        forecast: str | int,
        system: str | int | None = None,
        scenarios: Sequence[str | int] | None = None,
    ) -> Problem:
        """A forecast and its system as plain arrays for the physics, bound and evaluation."""
        with self.database.read() as session:
            row = self._forecast_row(session, forecast, system)
            return load_problem(session, row, scenarios)

    def baselines(
        self,
        forecast: str | int,
        system: str | int | None = None,
        *,
        scenarios: Sequence[str | int] | None = None,
        steps: int | None = None,
        start_volumes: Sequence[float] | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Per scenario: the perfect-foresight bound, the SDP benchmark and the naive rules (EUR).

        Values are revenue plus end water value over the whole horizon (or its
        first ``steps``) from ``start_volumes`` (Mm³ per reservoir; default half
        full).  The benchmark's water values come from all scenarios of the forecast.
        """
        from hydrorl.comparison import baseline_table

        training = self.problem(forecast, system)
        problem = self.problem(forecast, system, scenarios)
        if steps is not None:
            problem, training = problem.horizon(steps), training.horizon(steps)
        volumes = None if start_volumes is None else np.asarray(start_volumes, dtype=float)
        return baseline_table(problem, volumes, training=training, progress=progress)

    # ------------------------------------------------------------------ projects

    def create_project(
        self,
        system: str | int,
        name: str,
        settings: TrainingSettings | Mapping[str, Any] | None = None,
        *,
        description: str = "",
        **overrides: Any,
    ) -> ProjectInfo:
        """Create a project on ``system``; settings default to :class:`TrainingSettings`."""
        if settings is None:
            settings = TrainingSettings()
        elif isinstance(settings, Mapping):
            settings = TrainingSettings.from_dict(settings)
        settings = settings.replace(**overrides) if overrides else settings.validate()
        with self.database.write() as session:
            system_row = system_store.get_system(session, system)
            row = project_store.add_project(session, system_row, name, settings, description)
            return _project_info(row)

    def projects(self, system: str | int | None = None) -> pd.DataFrame:
        with self.database.read() as session:
            row = system_store.get_system(session, system) if system is not None else None
            return project_store.list_projects(session, row)

    def project(self, name: str | int, system: str | int | None = None) -> ProjectInfo:
        with self.database.read() as session:
            system_row = system_store.get_system(session, system) if system is not None else None
            return _project_info(project_store.get_project(session, name, system_row))

    def delete_project(self, name: str | int, system: str | int | None = None) -> None:
        with self.database.write() as session:
            system_row = system_store.get_system(session, system) if system is not None else None
            session.delete(project_store.get_project(session, name, system_row))

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

        def create(session: Any) -> int:
            system_row = system_store.get_system(session, system) if system is not None else None
            project_row = project_store.get_project(session, project, system_row)
            forecast_row = forecast_store.get_forecast(session, forecast, project_row.system)
            settings = TrainingSettings.from_dict(project_row.settings)
            settings = settings.replace(**overrides) if overrides else settings
            volumes = launch.check_start_volumes(
                project_row.system,
                None
                if start_volumes is None
                else (dict(start_volumes) if isinstance(start_volumes, Mapping) else start_volumes),
            )
            return launch.create_training_run(
                session, project_row, forecast_row, settings, volumes
            ).id

        run_id = self.database.run_write(create)
        launch.start_process(self.database, "supervisor", run_id)
        return self.run(run_id)

    def runs(self, project: str | int | None = None) -> pd.DataFrame:
        """Every run (of one project if given), newest last."""
        r, p, f = models.ProjectRun, models.Project, models.Forecast
        agents = sa.select(sa.func.count()).where(models.Agent.run_id == r.id).scalar_subquery()
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
            )
            .join(p, r.project_id == p.id)
            .join(f, r.forecast_id == f.id)
            .order_by(r.id)
        )
        with self.database.read() as session:
            if project is not None:
                stmt = stmt.where(r.project_id == project_store.get_project(session, project).id)
            rows = session.execute(stmt).all()
        frame = pd.DataFrame(rows, columns=list(stmt.selected_columns.keys()))
        for column in ("kind", "status"):
            frame[column] = frame[column].map(str)
        return frame

    def run(self, run_id: int) -> RunInfo:
        """One run's status, reason and error (the traceback of what failed)."""
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
            )

    def agents(self, run_id: int) -> pd.DataFrame:
        """The agents of a training run: status, progress, best peak reward, errors."""
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
        with self.database.read() as session:
            rows = session.execute(stmt).all()
            run = session.get(models.ProjectRun, run_id)
            target = run.settings.get("timesteps") if run else None
        frame = pd.DataFrame(rows, columns=list(stmt.selected_columns.keys()))
        frame["status"] = frame["status"].map(str)
        frame.insert(5, "timesteps", target)
        frame.insert(6, "progress", frame["timesteps_done"] / target if target else np.nan)
        return frame

    def curves(
        self, run_id: int, series: str | None = "episode_reward", *, after_id: int = 0
    ) -> pd.DataFrame:
        """Learning-curve points of a run's agents, oldest first.

        ``series`` names the curve (None: all of them); ``after_id`` returns only
        points newer than the last one seen (the ``id`` column), for live plots.
        """
        a, d, v = models.Agent, models.TrainStepData, models.TrainStepValue
        stmt = (
            sa.select(
                v.id,
                a.index.label("agent"),
                d.name.label("series"),
                v.timestep,
                v.wall_time,
                v.value,
            )
            .join(d, v.data_id == d.id)
            .join(a, d.agent_id == a.id)
            .where(a.run_id == run_id, v.id > after_id)
            .order_by(v.id)
        )
        if series is not None:
            stmt = stmt.where(d.name == series)
        with self.database.read() as session:
            rows = session.execute(stmt).all()
        frame = pd.DataFrame(rows, columns=list(stmt.selected_columns.keys()))
        frame["wall_time"] = pd.to_datetime(frame["wall_time"], unit="s")
        return frame

    def stop(self, run_id: int, agent: int | None = None) -> None:
        """Ask a run (or one agent, by index) to stop; it ends within seconds, checkpoints kept."""
        from hydrorl.training import launch

        self.database.run_write(lambda s: launch.request_stop(s, run_id, agent))

    def resume(self, run_id: int) -> RunInfo:
        """Go on with a failed or stopped run from its agents' last checkpoints."""
        from hydrorl.training import launch

        self.database.run_write(lambda s: launch.prepare_resume(s, run_id))
        launch.start_process(self.database, "supervisor", run_id)
        return self.run(run_id)

    def wait(self, run_id: int, timeout: float | None = None, poll: float = 1.0) -> RunInfo:
        """Block until the run has ended (or ``timeout`` seconds passed); return its status."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.reap()
            info = self.run(run_id)
            if info.done or (deadline is not None and time.monotonic() > deadline):
                return info
            time.sleep(poll)

    def evaluate(
        self, run_id: int, forecast: str | int | None = None, *, agent: int | None = None
    ) -> RunInfo:
        """Evaluate a training run's best agent (or ``agent``) on every scenario, in the background.

        ``forecast`` defaults to the training forecast; any forecast of the same
        system works (e.g. held-out scenarios).
        """
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

    def episodes(self, run_id: int) -> pd.DataFrame:
        """The episodes of an evaluation run: one per scenario, with bound and benchmark."""
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
            )
            .join(link, e.series_link_id == link.id)
            .outerjoin(a, e.agent_id == a.id)
            .where(e.run_id == run_id)
            .order_by(link.scenario_index)
        )
        with self.database.read() as session:
            rows = session.execute(stmt).all()
        frame = pd.DataFrame(rows, columns=list(stmt.selected_columns.keys()))
        frame["share_of_bound"] = frame["total_eur"] / frame["bound_eur"]
        frame["vs_benchmark"] = frame["total_eur"] / frame["benchmark_eur"]
        return frame

    def episode_series(self, episode_id: int) -> pd.DataFrame:
        """Per-step series of one episode (one column each), indexed by time."""
        d, v = models.ReportData, models.ReportValue
        with self.database.read() as session:
            episode = session.get(models.EvaluationEpisode, episode_id)
            if episode is None:
                raise NotFoundError(f"no evaluation episode {episode_id}")
            forecast = episode.series_link.forecast
            data = session.execute(
                sa.select(d.id, d.name).where(d.episode_id == episode_id).order_by(d.id)
            ).all()
            columns = {
                name: bulk.read_values(session, v.__table__, "data_id", data_id, forecast.n_steps)  # type: ignore[arg-type]
                for data_id, name in data
            }
            times = pd.date_range(
                forecast.start_time,
                periods=forecast.n_steps,
                freq=pd.Timedelta(seconds=forecast.step_seconds),
            )
        return pd.DataFrame(columns, index=pd.Index(times, name="time"))

    def reap(self) -> list[Any]:
        """Fail runs and agents whose processes are gone (run on start-up and by supervisors)."""
        from hydrorl.jobs.reaper import reap_stale

        return self.database.run_write(lambda s: reap_stale(s))

    # ------------------------------------------------------------------ demo

    def setup_demo(self, *, seed: int = 0, scenarios: int = 20, years: int = 5) -> dict[str, Any]:
        """Create the demo system, forecast and project where missing; say what is there."""
        created = []
        names = set(self.systems()["name"])
        if demo.DEMO_SYSTEM_NAME not in names:
            self.create_system(demo.demo_system())
            created.append("system")
        if demo.DEMO_FORECAST_NAME not in set(self.forecasts(demo.DEMO_SYSTEM_NAME)["name"]):
            table = demo.demo_forecast(seed=seed, scenarios=scenarios, years=years)
            self.upload_forecast(
                demo.DEMO_SYSTEM_NAME,
                table,
                demo.DEMO_FORECAST_NAME,
                description=table.source_name,
                allow_duplicate=True,
            )
            created.append("forecast")
        if demo.DEMO_PROJECT_NAME not in set(self.projects(demo.DEMO_SYSTEM_NAME)["name"]):
            self.create_project(
                demo.DEMO_SYSTEM_NAME,
                demo.DEMO_PROJECT_NAME,
                description="PPO agents on the demo river",
            )
            created.append("project")
        return {
            "created": created,
            "system": self.system(demo.DEMO_SYSTEM_NAME),
            "forecast": self.forecast(demo.DEMO_FORECAST_NAME, demo.DEMO_SYSTEM_NAME),
            "project": self.project(demo.DEMO_PROJECT_NAME, demo.DEMO_SYSTEM_NAME),
        }

    def summary(self) -> str:
        """A short text of what the database holds."""
        lines = [f"HydroRL database: {self.database!r}"]
        systems = self.systems()
        if systems.empty:
            lines.append("  (empty: run `hydrorl demo` or create a system)")
        for row in systems.itertuples():
            lines.append(
                f"  system {row.name!r}: {row.reservoirs} reservoirs, "
                f"{row.power_stations} power stations"
            )
            for f in self.forecasts(row.name).itertuples():
                lines.append(
                    f"    forecast {f.name!r}: {f.scenarios} scenarios x {f.n_steps} "
                    f"steps of {_step_text(f.step)} from {f.start_time} to {f.end_time}"
                )
            for p in self.projects(row.name).itertuples():
                lines.append(
                    f"    project {p.name!r}: {p.algorithm}, {p.agents} agents x "
                    f"{p.timesteps} timesteps, {p.runs} runs"
                )
        return "\n".join(lines)


def _forecast_info(row: models.Forecast) -> ForecastInfo:
    return ForecastInfo(
        id=row.id,
        name=row.name,
        system=row.system.name,
        start_time=pd.Timestamp(row.start_time),
        step=pd.Timedelta(seconds=row.step_seconds),
        n_steps=row.n_steps,
        scenario_names=tuple(s.scenario_name for s in row.series_links),
        file_name=row.upload.file_name if row.upload else None,
        content_hash=row.upload.content_hash if row.upload else None,
        description=row.description,
    )


def _project_info(row: models.Project) -> ProjectInfo:
    return ProjectInfo(
        id=row.id,
        name=row.name,
        system=row.system.name,
        settings=TrainingSettings.from_dict(row.settings),
        description=row.description,
    )


def _step_text(step: pd.Timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
