"""The workbench over HTTP: :class:`RemoteWorkbench` has the verbs of :class:`hydrorl.Workbench`
and returns the same types (DataFrames, ForecastInfo, ProjectInfo, RunInfo, HydroSystem),
raising the same HydroRL exceptions with the same messages.

It talks to a ``hydrorl serve`` server with httpx; it imports neither the server's framework
nor torch or Stable-Baselines3.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from hydrorl.forecast import ForecastTable
from hydrorl.service import wire
from hydrorl.service.wire import (
    ARROW,
    AuthenticationError,
    DemoModel,
    ForecastModel,
    ForecastStatistics,
    ProjectModel,
    ReapedModel,
    RunModel,
    ServiceError,
    Summary,
    SystemModel,
    ref_text,
)
from hydrorl.system import HydroSystem
from hydrorl.workbench import ForecastInfo, ProjectInfo
from hydrorl.workbench_runs import RunInfo, key

if TYPE_CHECKING:
    from hydrorl.physics import Problem

#: The environment variable holding the bearer token when none is passed.
TOKEN_ENV = "HYDRORL_TOKEN"
#: How long one long poll of :meth:`RemoteWorkbench.wait` asks the server to hold it.
LONG_POLL_S = 30.0


def _ref(thing: Any) -> str | None:
    """A name, an id or what the workbench returned for it, as the URL writes it."""
    found = key(thing)
    return None if found is None else ref_text(found)


def _named(thing: Any) -> str:
    """As :func:`_ref`, for a reference that must be given."""
    return ref_text(key(thing))


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones left at None."""
    return {k: v for k, v in values.items() if v is not None}


class RemoteWorkbench:
    """A HydroRL server's workbench: the verbs of :class:`hydrorl.Workbench` over HTTP.

    ``token`` defaults to ``$HYDRORL_TOKEN``.  ``client`` replaces the httpx client (for
    tests: FastAPI's TestClient, which is one); ``timeout`` is the seconds a request may take.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=timeout)
        client.headers.update(headers)
        self._http = client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteWorkbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hydrorl.RemoteWorkbench {self.url}>"  # never the token

    # ------------------------------------------------------------------ transport

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ServiceError(f"HydroRL server {self.url}: {e}") from e
        if response.is_success:
            return response
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        if response.status_code == 401:
            raise AuthenticationError(
                f"HydroRL server {self.url} refused the token: "
                f"{problem.get('detail', 'unauthorised')}"
            )
        if "error" not in problem or response.status_code >= 500:
            # Not one of HydroRL's problems (the framework's, a proxy's) or a server's bug.
            detail = problem.get("detail", response.text[:500])
            raise ServiceError(
                f"HydroRL server {self.url}: {method} {path}: HTTP {response.status_code}: {detail}"
            )
        raise wire.error_of(problem, response.status_code)

    def _frame(self, path: str, **params: Any) -> pd.DataFrame:
        response = self._request("GET", path, params=_params(**params))
        return wire.frame_from_arrow(response.content)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ------------------------------------------------------------------ service

    def health(self) -> dict[str, Any]:
        """The server's status and version (no token needed)."""
        return dict(self._json("GET", "/health"))

    # ------------------------------------------------------------------ systems

    def create_system(self, system: HydroSystem | Mapping[str, Any] | str | Path) -> HydroSystem:
        """Store a hydro system (a HydroSystem, a mapping or a local YAML/JSON file)."""
        if isinstance(system, str | Path):
            spec = HydroSystem.from_file(system)
        elif isinstance(system, Mapping):
            spec = HydroSystem.from_dict(system)
        else:
            spec = system.validate()
        body = SystemModel.of(spec).model_dump(mode="json")
        return SystemModel.model_validate(self._json("POST", "/systems", json=body)).to_system()

    def systems(self) -> pd.DataFrame:
        return self._frame("/systems")

    def system(self, name: str | int) -> HydroSystem:
        found = self._json("GET", f"/systems/{_named(name)}")
        return SystemModel.model_validate(found).to_system()

    def reservoirs(self, system: str | int) -> pd.DataFrame:
        return self._frame(f"/systems/{_named(system)}/reservoirs")

    def power_stations(self, system: str | int) -> pd.DataFrame:
        return self._frame(f"/systems/{_named(system)}/power_stations")

    def delete_system(self, name: str | int, *, cascade: bool = False) -> None:
        self._request("DELETE", f"/systems/{_ref(name)}", params={"cascade": cascade})

    # ------------------------------------------------------------------ forecasts

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
        """Upload a forecast (a file, its bytes, a DataFrame or a ForecastTable): the server
        validates and stores it as a local upload does, with the same limits and messages.
        A file is streamed from disk, never read whole into memory."""
        data = {
            "description": description,
            "allow_duplicate": str(allow_duplicate).lower(),
            "allow_implausible": str(allow_implausible).lower(),
        }
        if name is not None:
            data["name"] = name
        path = f"/systems/{_named(system)}/forecasts"
        if isinstance(source, ForecastTable):
            source = source.to_frame()
        if isinstance(source, pd.DataFrame):
            frame_file: dict[str, Any] = {
                "file": ("frame.arrow", wire.frame_to_arrow(source), ARROW)
            }
            return self._forecast("POST", path, data=data, files=frame_file)
        if isinstance(source, bytes | bytearray):
            if not file_name:
                from hydrorl.errors import ForecastValidationError

                raise ForecastValidationError(
                    "name the uploaded file: its extension tells the format"
                )
            raw_file: dict[str, Any] = {
                "file": (file_name, bytes(source), "application/octet-stream")
            }
            return self._forecast("POST", path, data=data, files=raw_file)
        file = Path(source)
        label = file_name or file.name
        if not file.is_file():
            from hydrorl.errors import ForecastValidationError

            raise ForecastValidationError(f"{label}: no such file {str(file)!r}")
        with file.open("rb") as stream:
            files: dict[str, Any] = {"file": (label, stream, "application/octet-stream")}
            return self._forecast("POST", path, data=data, files=files)

    def _forecast(self, method: str, path: str, **kwargs: Any) -> ForecastInfo:
        return ForecastModel.model_validate(self._json(method, path, **kwargs)).to_info()

    def forecasts(self, system: str | int | None = None) -> pd.DataFrame:
        return self._frame("/forecasts", system=_ref(system))

    def forecast(self, name: str | int, system: str | int | None = None) -> ForecastInfo:
        return self._forecast(
            "GET", f"/forecasts/{_named(name)}", params=_params(system=_ref(system))
        )

    def scenarios(self, forecast: str | int, system: str | int | None = None) -> pd.DataFrame:
        return self._frame(f"/forecasts/{_named(forecast)}/scenarios", system=_ref(system))

    def forecast_data(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> pd.DataFrame:
        """Stored values in the upload's long format: time, scenario, price, inflow."""
        chosen = None if scenarios is None else [ref_text(s) for s in scenarios]
        return self._frame(
            f"/forecasts/{_named(forecast)}/data", system=_ref(system), scenarios=chosen
        )

    def rename_forecast(
        self, forecast: str | int | ForecastInfo, name: str, system: str | int | None = None
    ) -> ForecastInfo:
        return self._forecast(
            "PATCH",
            f"/forecasts/{_ref(forecast)}",
            params=_params(system=_ref(system)),
            json={"name": name},
        )

    def uploads(self) -> pd.DataFrame:
        return self._frame("/uploads")

    def delete_forecast(
        self,
        name: str | int | ForecastInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]:
        params = _params(system=_ref(system), cascade=cascade)
        return list(self._json("DELETE", f"/forecasts/{_ref(name)}", params=params))

    # ------------------------------------------------------------------ projects

    def create_project(
        self,
        system: str | int,
        name: str,
        settings: Any = None,
        *,
        description: str = "",
        **overrides: Any,
    ) -> ProjectInfo:
        """Create a project; the server checks the settings as the local workbench does."""
        if settings is not None and not isinstance(settings, Mapping):
            settings = settings.to_dict()
        if overrides:
            settings = {**(settings or {}), **overrides}
        body = {
            "system": _named(system),
            "name": name,
            "settings": None if settings is None else dict(settings),
            "description": description,
        }
        return ProjectModel.model_validate(self._json("POST", "/projects", json=body)).to_info()

    def projects(self, system: str | int | None = None) -> pd.DataFrame:
        return self._frame("/projects", system=_ref(system))

    def project(self, name: str | int, system: str | int | None = None) -> ProjectInfo:
        found = self._json("GET", f"/projects/{_named(name)}", params=_params(system=_ref(system)))
        return ProjectModel.model_validate(found).to_info()

    def rename_project(
        self, project: str | int | ProjectInfo, name: str, system: str | int | None = None
    ) -> ProjectInfo:
        found = self._json(
            "PATCH",
            f"/projects/{_ref(project)}",
            params=_params(system=_ref(system)),
            json={"name": name},
        )
        return ProjectModel.model_validate(found).to_info()

    def delete_project(
        self,
        name: str | int | ProjectInfo,
        system: str | int | None = None,
        *,
        cascade: bool = False,
    ) -> list[int]:
        params = _params(system=_ref(system), cascade=cascade)
        return list(self._json("DELETE", f"/projects/{_ref(name)}", params=params))

    # ------------------------------------------------------------------ runs

    def _run(self, method: str, path: str, **kwargs: Any) -> RunInfo:
        return RunModel.model_validate(self._json(method, path, **kwargs)).to_info()

    def start_training(
        self,
        project: str | int,
        forecast: str | int,
        *,
        start_volumes: Sequence[float] | Mapping[str, float] | None = None,
        system: str | int | None = None,
        **overrides: Any,
    ) -> RunInfo:
        """Start training on the server; returns at once with the queued run."""
        volumes: Any = None
        if start_volumes is not None:
            volumes = (
                dict(start_volumes)
                if isinstance(start_volumes, Mapping)
                else [float(v) for v in start_volumes]
            )
        body = {
            "project": _ref(project),
            "forecast": _ref(forecast),
            "system": _ref(system),
            "start_volumes": volumes,
            "overrides": overrides,
        }
        return self._run("POST", "/runs", json=body)

    def runs(self, project: str | int | None = None) -> pd.DataFrame:
        return self._frame("/runs", project=_ref(project))

    def run(self, run_id: int | RunInfo) -> RunInfo:
        return self._run("GET", f"/runs/{key(run_id)}")

    def rename_run(self, run_id: int | RunInfo, name: str | None) -> RunInfo:
        return self._run("PATCH", f"/runs/{key(run_id)}", json={"name": name})

    def delete_run(self, run_id: int | RunInfo) -> list[int]:
        return list(self._json("DELETE", f"/runs/{key(run_id)}"))

    def agents(self, run_id: int | RunInfo) -> pd.DataFrame:
        return self._frame(f"/runs/{key(run_id)}/agents")

    def curves(
        self,
        run_id: int | RunInfo,
        series: str | None = "episode_reward",
        *,
        after_id: int | Mapping[int, int] = 0,
        every: int = 1,
    ) -> pd.DataFrame:
        """Learning-curve points; pass the last frame's ``attrs["watermark"]`` as ``after_id``
        for the points since (see :meth:`hydrorl.Workbench.curves`)."""
        params: dict[str, Any] = {"every": every}
        if series is None:
            params["all_series"] = True
        else:
            params["series"] = series
        if isinstance(after_id, Mapping):
            params["watermark"] = json.dumps({str(k): int(v) for k, v in after_id.items()})
        else:
            params["after_id"] = int(after_id)
        return self._frame(f"/runs/{key(run_id)}/curves", **params)

    def curve_points(self, run_id: int | RunInfo, series: str | None = "episode_reward") -> int:
        params = {"all_series": True} if series is None else {"series": series}
        return int(self._json("GET", f"/runs/{key(run_id)}/curve_points", params=params))

    def stop(self, run_id: int | RunInfo, agent: int | None = None) -> None:
        self._request("POST", f"/runs/{key(run_id)}/stop", params=_params(agent=agent))

    def resume(self, run_id: int | RunInfo) -> RunInfo:
        return self._run("POST", f"/runs/{key(run_id)}/resume")

    def wait(
        self,
        run_id: int | RunInfo,
        timeout: float | None = None,
        poll: float = 1.0,
        *,
        until_learning: bool = False,
    ) -> RunInfo:
        """Block until the run has ended (or ``timeout`` seconds passed), by long polls of at
        most :data:`LONG_POLL_S` each; ``poll`` is unused (the server watches)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            hold = LONG_POLL_S
            if deadline is not None:
                hold = max(0.0, min(hold, deadline - time.monotonic()))
            params = {"timeout": hold, "until_learning": until_learning}
            asked = time.monotonic()
            # Within the client's timeout (120 s by default): the server holds it for ``hold``.
            info = self._run("GET", f"/runs/{key(run_id)}/wait", params=params)
            # The server answers before its hold only when what was waited for happened.
            early = time.monotonic() - asked < hold - 0.1
            if info.done or (until_learning and early):
                return info
            if deadline is not None and time.monotonic() >= deadline:
                return info

    def evaluate(
        self, run_id: int | RunInfo, forecast: str | int | None = None, *, agent: int | None = None
    ) -> RunInfo:
        """Evaluate a training run's best agent (or ``agent``) on the server; returns at once."""
        body = {"forecast": _ref(forecast), "agent": agent}
        return self._run("POST", f"/runs/{key(run_id)}/evaluate", json=body)

    def episodes(self, run_id: int | RunInfo) -> pd.DataFrame:
        return self._frame(f"/runs/{key(run_id)}/episodes")

    def episode_series(self, episode_id: int) -> pd.DataFrame:
        return self._frame(f"/episodes/{int(episode_id)}/series")

    def read_forecast(
        self, source: str | Path | pd.DataFrame | ForecastTable | bytes, *, name: str | None = None
    ) -> ForecastTable:
        """Read and validate a forecast without storing it (a preview): here, as the local
        workbench does, with the server's limits left to the upload."""
        if isinstance(source, ForecastTable):
            return source
        from hydrorl.forecast import read_forecast

        return read_forecast(source, name=name)

    def forecast_table(
        self,
        forecast: str | int,
        scenarios: Sequence[str | int] | None = None,
        system: str | int | None = None,
    ) -> ForecastTable:
        """Stored values as (scenarios, steps) arrays."""
        chosen = None if scenarios is None else [ref_text(s) for s in scenarios]
        frame = self._frame(
            f"/forecasts/{_named(forecast)}/table", system=_ref(system), scenarios=chosen
        )
        return wire.table_from_frame(frame)

    def forecast_statistics(
        self, forecast: str | int, system: str | int | None = None
    ) -> dict[str, float]:
        """The whole forecast's price mean and std and inflow mean (its problem's scales)."""
        path = f"/forecasts/{_named(forecast)}/statistics"
        found = self._json("GET", path, params=_params(system=_ref(system)))
        return ForecastStatistics.model_validate(found).model_dump()

    def problem(
        self,
        forecast: str | int,
        system: str | int | None = None,
        scenarios: Sequence[str | int] | None = None,
    ) -> Problem:
        """A forecast and its system as plain arrays for the physics, bound and evaluation,
        built here from the server's system, table and statistics as the local workbench
        builds it from its database (the same arrays and scales)."""
        from hydrorl.problems import build_problem

        info = self.forecast(forecast, system)
        return build_problem(
            self.system(info.system),
            self.forecast_table(info.id, scenarios),
            self.forecast_statistics(info.id),
        )

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
        """Per scenario: the perfect-foresight bound, the SDP benchmark and the naive rules
        (EUR), computed by the server; ``progress`` shows that the request waits (the server's
        own progress does not cross the wire)."""
        chosen = None if scenarios is None else [ref_text(s) for s in scenarios]
        volumes = None if start_volumes is None else [float(v) for v in start_volumes]
        path = f"/forecasts/{_named(forecast)}/baselines"
        params = _params(system=_ref(system), scenarios=chosen, steps=steps, start_volumes=volumes)
        if not progress:
            return self._frame(path, **params)
        from tqdm.auto import tqdm

        with tqdm(total=1, desc="baselines on the server", unit="request") as bar:
            frame = self._frame(path, **params)
            bar.update(1)
        return frame

    # ------------------------------------------------------------------ database

    def summary(self) -> str:
        """What the server's database holds."""
        text = Summary.model_validate(self._json("GET", "/summary")).text
        return f"HydroRL server {self.url}\n{text}"

    def reap(self, *, lock_wait: float | None = None) -> list[Any]:
        """Have the server fail the runs and agents whose processes are gone; return them."""
        from hydrorl.jobs.reaper import Reaped

        found = self._json("POST", "/reap", params=_params(lock_wait=lock_wait))
        return [Reaped(**ReapedModel.model_validate(item).model_dump()) for item in found]

    # ------------------------------------------------------------------ demo

    def setup_demo(self, *, seed: int = 0, scenarios: int = 20, years: int = 5) -> dict[str, Any]:
        body = {"seed": seed, "scenarios": scenarios, "years": years}
        return DemoModel.model_validate(self._json("POST", "/demo", json=body)).to_result()
