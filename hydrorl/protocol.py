"""The workbench's verbs as one typed interface, whichever side holds the database.

:class:`hydrorl.Workbench` (a database, through SQLAlchemy) and
:class:`hydrorl.service.client.RemoteWorkbench` (a ``hydrorl serve`` server, over HTTP) both
implement :class:`WorkbenchVerbs`; the dashboard's components, the command line and the
notebooks are written against it, so they cannot tell which one they talk to.  mypy checks
both implementations against it (the end of this module); ``tests/test_service.py`` checks
that their signatures agree and runs one contract suite on four backends.

Every verb returns the same types on both sides (DataFrames, :class:`~hydrorl.ForecastInfo`,
:class:`~hydrorl.ProjectInfo`, :class:`~hydrorl.RunInfo`, :class:`~hydrorl.HydroSystem`,
:class:`~hydrorl.forecast.ForecastTable`) and raises the same :mod:`hydrorl.errors` classes
with the same messages: :class:`~hydrorl.NotFoundError` for a name or id that does not exist,
:class:`~hydrorl.ValidationError` (and its subclasses) for bad input,
:class:`~hydrorl.AlreadyExistsError` for a name taken, :class:`~hydrorl.InUseError` for a
deletion that others depend on.  A remote workbench may also raise
:class:`~hydrorl.service.wire.ServiceError` (the server unreachable or failing) and
:class:`~hydrorl.service.wire.AuthenticationError` (its token refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from hydrorl.forecast import ForecastTable
    from hydrorl.physics import Problem
    from hydrorl.project import TrainingSettings
    from hydrorl.system import HydroSystem
    from hydrorl.workbench import ForecastInfo, ProjectInfo
    from hydrorl.workbench_runs import RunInfo

__all__ = ["WorkbenchVerbs"]


class WorkbenchVerbs(Protocol):
    """What the workbench does: systems, forecasts, projects, runs, curves and episodes.

    See :class:`hydrorl.Workbench` for each verb's full description.
    """

    @property
    def url(self) -> str:
        """The database's URL, or the server's."""
        ...

    def close(self) -> None: ...

    # ------------------------------------------------------------------ systems

    def create_system(self, system: HydroSystem | Mapping[str, Any] | str | Path) -> HydroSystem:
        """Store a hydro system; ValidationError naming the rule it breaks, AlreadyExistsError."""
        ...

    def systems(self) -> pd.DataFrame:
        """One row per system, with its counts."""
        ...

    def system(self, name: str | int) -> HydroSystem:
        """A stored system; NotFoundError."""
        ...

    def reservoirs(self, system: str | int) -> pd.DataFrame: ...

    def power_stations(self, system: str | int) -> pd.DataFrame: ...

    def delete_system(self, name: str | int, *, cascade: bool = False) -> None:
        """InUseError while it has forecasts or projects, unless ``cascade``."""
        ...

    # ------------------------------------------------------------------ forecasts

    def read_forecast(
        self, source: str | Path | pd.DataFrame | ForecastTable | bytes, *, name: str | None = None
    ) -> ForecastTable:
        """A validated preview, nothing stored; ForecastValidationError naming where."""
        ...

    def upload_forecast(
        self,
        system: str | int,
        source: str | Path | pd.DataFrame | ForecastTable | bytes,
        name: str | None = None,
        *,
        description: str = "",
        allow_duplicate: bool = False,
        file_name: str | None = None,
        allow_implausible: bool = False,
    ) -> ForecastInfo:
        """Validate and store; ForecastValidationError (file, column, row), DuplicateUploadError;
        nothing half-written."""
        ...

    def forecasts(self, system: str | int | None = None) -> pd.DataFrame: ...

    def forecast(self, name: str | int, system: str | int | None = None) -> ForecastInfo: ...

    def scenarios(self, forecast: str | int, system: str | int | None = None) -> pd.DataFrame: ...

    def forecast_data(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> pd.DataFrame:
        """The stored values in the upload's long format."""
        ...

    def forecast_table(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> ForecastTable:
        """The stored values as (scenarios, steps) arrays."""
        ...

    def forecast_statistics(
        self, forecast: str | int, system: str | int | None = None
    ) -> dict[str, float]:
        """The whole forecast's price mean and std, inflow mean: its problem's scales."""
        ...

    def problem(
        self,
        forecast: str | int,
        system: str | int | None = None,
        scenarios: Sequence[str | int] | None = None,
    ) -> Problem:
        """A forecast and its system as plain arrays for the physics, bound and evaluation,
        built on the caller's side (on a server's: from its system, table and statistics)."""
        ...

    def rename_forecast(
        self, forecast: str | int | ForecastInfo, name: str, system: str | int | None = None
    ) -> ForecastInfo: ...

    def uploads(self) -> pd.DataFrame: ...

    def delete_forecast(
        self,
        name: str | int | ForecastInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]:
        """The ids of the runs deleted with it; InUseError while runs use it, unless ``cascade``."""
        ...

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
        """Per scenario: the perfect-foresight bound, the SDP benchmark, the naive rules."""
        ...

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
        """ValidationError naming the setting (with a close match for a typo)."""
        ...

    def projects(self, system: str | int | None = None) -> pd.DataFrame: ...

    def project(self, name: str | int, system: str | int | None = None) -> ProjectInfo: ...

    def rename_project(
        self, project: str | int | ProjectInfo, name: str, system: str | int | None = None
    ) -> ProjectInfo: ...

    def delete_project(
        self,
        name: str | int | ProjectInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]: ...

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
        """Returns at once with the queued run; settings refused before any process starts."""
        ...

    def runs(self, project: str | int | None = None) -> pd.DataFrame: ...

    def run(self, run_id: int | RunInfo) -> RunInfo: ...

    def rename_run(self, run_id: int | RunInfo, name: str | None) -> RunInfo: ...

    def delete_run(self, run_id: int | RunInfo) -> list[int]:
        """The ids deleted (the run and its evaluations); InUseError while it runs."""
        ...

    def agents(self, run_id: int | RunInfo) -> pd.DataFrame: ...

    def curves(
        self,
        run_id: int | RunInfo,
        series: str | None = "episode_reward",
        *,
        after_id: int | Mapping[int, int] = 0,
        every: int = 1,
    ) -> pd.DataFrame:
        """Learning-curve points; ``attrs["watermark"]`` is the ``after_id`` of the next read."""
        ...

    def curve_points(self, run_id: int | RunInfo, series: str | None = "episode_reward") -> int: ...

    def stop(self, run_id: int | RunInfo, agent: int | None = None) -> None: ...

    def resume(self, run_id: int | RunInfo) -> RunInfo: ...

    def wait(
        self,
        run_id: int | RunInfo,
        timeout: float | None = None,
        poll: float = 1.0,
        *,
        until_learning: bool = False,
    ) -> RunInfo: ...

    def evaluate(
        self, run_id: int | RunInfo, forecast: str | int | None = None, *, agent: int | None = None
    ) -> RunInfo:
        """Returns at once with the queued evaluation run."""
        ...

    def episodes(self, run_id: int | RunInfo) -> pd.DataFrame: ...

    def episode_series(self, episode_id: int) -> pd.DataFrame: ...

    def reap(self, *, lock_wait: float | None = None) -> list[Any]:
        """The runs and agents failed because their processes are gone."""
        ...

    # ------------------------------------------------------------------ the database

    def summary(self) -> str: ...

    def setup_demo(
        self, *, seed: int = 0, scenarios: int = 20, years: int = 5
    ) -> dict[str, Any]: ...


if TYPE_CHECKING:  # mypy checks that both workbenches have every verb, as typed above
    from hydrorl.service.client import RemoteWorkbench
    from hydrorl.workbench import Workbench

    def _local(workbench: Workbench) -> WorkbenchVerbs:
        return workbench

    def _remote(workbench: RemoteWorkbench) -> WorkbenchVerbs:
        return workbench
