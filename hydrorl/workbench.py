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

from hydrorl import demo
from hydrorl.db import Database, models
from hydrorl.db import forecasts as forecast_store
from hydrorl.db import projects as project_store
from hydrorl.db import runs as run_store
from hydrorl.db import systems as system_store
from hydrorl.db.problems import forecast_statistics, load_problem
from hydrorl.errors import AlreadyExistsError, InUseError, NotFoundError
from hydrorl.forecast import ForecastTable, read_forecast
from hydrorl.physics import Problem
from hydrorl.project import TrainingSettings
from hydrorl.system import HydroSystem, PowerStation
from hydrorl.workbench_runs import RunVerbs, key

SystemSource: TypeAlias = HydroSystem | Mapping[str, Any] | str | Path
ForecastSource: TypeAlias = str | Path | pd.DataFrame | ForecastTable | bytes


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


def connect(url: str | None = None) -> Workbench:
    """Open (creating or upgrading as needed) a HydroRL database and return its workbench.

    ``url`` is any SQLAlchemy URL; by default ``$HYDRORL_DATABASE_URL`` or the
    SQLite file ``~/.hydrorl/hydrorl.db`` (``$HYDRORL_HOME`` moves the folder).
    A plain file path is taken as an SQLite file.
    """
    if url is not None and "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return Workbench(Database(url))


class Workbench(RunVerbs):
    """Systems, forecasts and projects of one HydroRL database."""

    def __init__(self, database: Database | str) -> None:
        """``database``: a :class:`~hydrorl.db.Database` or its SQLAlchemy URL (or see
        :func:`connect`)."""
        self.database = Database(database) if isinstance(database, str) else database
        self._reap_unless_locked()

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
        """Delete a system; with forecasts or projects only when ``cascade`` is true, which
        deletes them too, with their runs and the runs' folders (refused, InUseError, nothing
        deleted, while one of the runs is queued, running or stopping)."""
        name = key(name)
        if not cascade:
            with self.database.write() as session:
                system_store.delete_system(session, name, cascade=False)
            return

        def runs(session: Any) -> list[int]:
            row = system_store.get_system(session, name)
            return sorted(i for p in row.projects for i in run_store.runs_of_project(session, p))

        self._delete_runs(
            runs, lambda session: system_store.delete_system(session, name, cascade=True)
        )

    # ------------------------------------------------------------------ forecasts

    def read_forecast(self, source: ForecastSource, *, name: str | None = None) -> ForecastTable:
        """Read and validate a forecast without storing it (a preview); bytes need ``name``."""
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
        file_name: str | None = None,
        allow_implausible: bool = False,
    ) -> ForecastInfo:
        """Validate and store a forecast for ``system``; it is there all at once or not at all.

        ``source`` is a CSV, Parquet or Excel file, a DataFrame (format: see
        :mod:`hydrorl.forecast`) or a ForecastTable.  Files are read in chunks
        within the limits of :mod:`hydrorl.settings`; the values are written as a
        staged upload in short transactions, and the forecast appears in one last
        short one, so other processes never wait long (see
        :func:`hydrorl.db.forecasts.store_forecast`).  On any error nothing is
        left written.  The same content uploaded twice raises
        DuplicateUploadError unless ``allow_duplicate`` is true; prices and
        inflows beyond the plausible are refused unless ``allow_implausible``.
        ``source`` may also be a file's bytes (from a browser upload), with its
        ``file_name``.
        """
        if name is not None:  # before a large file is read
            forecast_store.check_name("forecast name", name)
        if isinstance(source, ForecastTable):
            table = source
        else:
            table = read_forecast(source, name=file_name, allow_implausible=allow_implausible)
        if name is None:
            name = Path(table.source_name).stem if table.source_format != "dataframe" else None
            if not name:
                raise ValueError("name the forecast: name='...'")
        forecast_id = forecast_store.store_forecast(
            self.database,
            system,
            table,
            name,
            description=description,
            allow_duplicate=allow_duplicate,
            allow_implausible=allow_implausible,
        )
        with self.database.read() as session:
            return _forecast_info(forecast_store.get_forecast(session, forecast_id))

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

    def forecast_statistics(
        self, forecast: str | int, system: str | int | None = None
    ) -> dict[str, float]:
        """Over every scenario and step of a forecast: the price's mean and standard deviation
        (EUR/MWh) and the inflow's mean (m³/s), as its :meth:`problem` is scaled by (computed
        by the database: nothing big is read)."""
        with self.database.read() as session:
            row = self._forecast_row(session, forecast, system)
            return forecast_statistics(session, row)

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
        with self.database.read() as session:
            return forecast_store.list_uploads(session)

    def rename_forecast(
        self, forecast: str | int | ForecastInfo, name: str, system: str | int | None = None
    ) -> ForecastInfo:
        """Give a forecast another name; return it renamed.  Its runs keep pointing at it.

        Raises NotFoundError for no such forecast, AlreadyExistsError when its system has a
        forecast of that name, ForecastValidationError for a blank or too long name.
        """
        ref: str | int = key(forecast)
        system = key(system)

        def rename(session: Any) -> int:
            row = self._forecast_row(session, ref, system)
            forecast_store.rename_forecast(session, row, name)
            return row.id

        return self.forecast(self.database.run_write(rename))

    def delete_forecast(
        self,
        name: str | int | ForecastInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]:
        """Delete a forecast with its scenarios, values and (if no other forecast has it) its
        upload; return the ids of the runs deleted with it.

        A forecast that runs trained or were evaluated on is refused (InUseError naming the
        runs, nothing deleted) unless ``cascade`` is true, which deletes those runs too, with
        the evaluations of them and their folders, as :meth:`delete_run` does.  A queued,
        running or stopping run is refused either way: stop it first.
        """
        ref: str | int = key(name)
        system = key(system)

        def runs(session: Any) -> list[int]:
            return run_store.runs_on_forecast(session, self._forecast_row(session, ref, system))

        def refuse(session: Any, ids: list[int]) -> None:
            if ids and not cascade:
                row = self._forecast_row(session, ref, system)
                raise InUseError(
                    f"forecast {row.name!r} is used by {len(ids)} run(s): "
                    f"{run_store.run_list_text(session, ids)}; delete them first "
                    f"(wb.delete_run) or pass cascade=True to delete them with it"
                )

        def delete(session: Any) -> None:
            forecast_store.delete_forecast(session, self._forecast_row(session, ref, system))

        return self._delete_runs(runs, delete, refuse=refuse)

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
        from hydrorl.training.algorithm import check_settings

        with self.database.read() as session:
            n_stations = len(system_store.get_system(session, system).power_stations)
        check_settings(settings, n_stations)  # outside the write: it may import SB3
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

    def rename_project(
        self, project: str | int | ProjectInfo, name: str, system: str | int | None = None
    ) -> ProjectInfo:
        """Give a project another name; return it renamed.

        Raises NotFoundError for no such project, AlreadyExistsError when its system has a
        project of that name, ValidationError for a blank or too long name.
        """
        ref: str | int = key(project)
        system = key(system)

        def rename(session: Any) -> int:
            row = self._project_row(session, ref, system)
            project_store.rename_project(session, row, name)
            return row.id

        return self.project(self.database.run_write(rename))

    def delete_project(
        self,
        name: str | int | ProjectInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]:
        """Delete a project; return the ids of the runs deleted with it.

        A project with runs is refused (InUseError naming them, nothing deleted) unless
        ``cascade`` is true, which deletes its runs too (agents, curves, episodes, folders),
        as :meth:`delete_run` does.  A queued, running or stopping run is refused either
        way: stop it first.
        """
        ref: str | int = key(name)
        system = key(system)

        def runs(session: Any) -> list[int]:
            return run_store.runs_of_project(session, self._project_row(session, ref, system))

        def refuse(session: Any, ids: list[int]) -> None:
            if ids and not cascade:
                row = self._project_row(session, ref, system)
                raise InUseError(
                    f"project {row.name!r} has {len(ids)} run(s): "
                    f"{run_store.run_list_text(session, ids)}; delete them first "
                    f"(wb.delete_run) or pass cascade=True to delete them with it"
                )

        def delete(session: Any) -> None:
            session.delete(self._project_row(session, ref, system))
            session.flush()

        return self._delete_runs(runs, delete, refuse=refuse)

    def _project_row(self, session: Any, name: str | int, system: str | int | None) -> Any:
        system_row = system_store.get_system(session, system) if system is not None else None
        return project_store.get_project(session, name, system_row)

    # ------------------------------------------------------------------ demo

    def setup_demo(self, *, seed: int = 0, scenarios: int = 20, years: int = 5) -> dict[str, Any]:
        """Create the demo system, forecast and project where missing; say what is there.

        The forecast is the one these settings generate: ``"Demo forecast"`` when that one was
        made with them (or does not exist yet), else a forecast named after the settings
        (``"Demo forecast (seed 0, 4 scenarios, 1 year)"``), created beside it. So a small
        ``setup_demo(scenarios=4, years=1)`` on a database that holds the full demo gets the
        small one, never silently the 20 x 5-year one. ``result["note"]`` says which it uses.

        The arguments are checked before anything is written, and what is missing is
        written in one transaction: a failure (or Ctrl-C) midway leaves no half demo.
        """
        demo.check_demo_arguments(seed=seed, scenarios=scenarios, years=years)
        wanted = demo.demo_description(seed=seed, scenarios=scenarios, years=years)
        same = {wanted, demo.legacy_description(seed=seed, scenarios=scenarios, years=years)}
        variant = f"{demo.DEMO_FORECAST_NAME} ({wanted.removeprefix('demo forecast (')}"

        def forecast_name(existing: dict[str, str]) -> str:
            base = existing.get(demo.DEMO_FORECAST_NAME)
            return demo.DEMO_FORECAST_NAME if base is None or base in same else variant

        def existing_forecasts() -> dict[str, str]:
            if demo.DEMO_SYSTEM_NAME not in set(self.systems()["name"]):
                return {}
            frame = self.forecasts(demo.DEMO_SYSTEM_NAME)
            return dict(zip(frame["name"], frame["description"].fillna(""), strict=True))

        table = None
        before = existing_forecasts()
        if forecast_name(before) not in before:
            # Generated before the write transaction: other writers wait on it.
            table = demo.demo_forecast(seed=seed, scenarios=scenarios, years=years)
        created = []
        with self.database.write() as session:
            try:
                system_row = system_store.get_system(session, demo.DEMO_SYSTEM_NAME)
            except NotFoundError:
                system_row = system_store.add_system(session, demo.demo_system())
                created.append("system")
            forecasts = forecast_store.list_forecasts(session, system_row)
            existing = dict(
                zip(forecasts["name"], forecasts["description"].fillna(""), strict=True)
            )
            name = forecast_name(existing)
            if name not in existing:
                if table is None:  # deleted since we looked
                    table = demo.demo_forecast(seed=seed, scenarios=scenarios, years=years)
                forecast_store.add_forecast(
                    session,
                    system_row,
                    table,
                    name,
                    description=table.source_name,
                    allow_duplicate=True,
                )
                created.append("forecast")
            elif existing[name] not in same:
                raise AlreadyExistsError(
                    f"the forecast {name!r} is not the demo forecast of seed {seed}, "
                    f"{scenarios} scenarios and {years} years ({existing[name]!r}): "
                    f"rename or delete it"
                )
            projects = project_store.list_projects(session, system_row)
            if demo.DEMO_PROJECT_NAME not in set(projects["name"]):
                project_store.add_project(
                    session,
                    system_row,
                    demo.DEMO_PROJECT_NAME,
                    TrainingSettings().validate(),
                    "agents correcting the forecast planner on the demo river, learning as they go",
                )
                created.append("project")
        forecast = self.forecast(name, demo.DEMO_SYSTEM_NAME)
        note = (
            f"using {name!r}: {demo.count(len(forecast.scenario_names), 'scenario')} x "
            f"{demo.count(years, 'year')} "
            f"of {_step_text(forecast.step)} steps (seed {seed})"
        )
        if name != demo.DEMO_FORECAST_NAME:
            note += f"; {demo.DEMO_FORECAST_NAME!r} holds {before[demo.DEMO_FORECAST_NAME]}"
        return {
            "created": created,
            "note": note,
            "system": self.system(demo.DEMO_SYSTEM_NAME),
            "forecast": forecast,
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
