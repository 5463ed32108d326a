"""The HTTP API: a FastAPI application over one local :class:`hydrorl.Workbench`.

Every route is a workbench verb and answers what the verb returns: a DataFrame as an Arrow
IPC stream, an object as the JSON of its :mod:`hydrorl.service.wire` model (the models the
OpenAPI document is generated from), an error as RFC 9457 problem details naming the
HydroRL exception class.  Every route but ``/health`` needs a bearer token.

The handlers are plain functions: FastAPI runs them in its thread pool, so a long poll
(``/runs/{id}/wait``) holds a thread, not the event loop.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import hydrorl
from hydrorl import settings
from hydrorl.db import tokens as token_store
from hydrorl.errors import HydroRLError, NotFoundError, ValidationError
from hydrorl.service import wire
from hydrorl.service.wire import (
    ARROW,
    PROBLEM,
    DemoModel,
    DemoSetup,
    EvaluationStart,
    ForecastModel,
    ForecastStatistics,
    Health,
    ProjectCreate,
    ProjectModel,
    ReapedModel,
    Rename,
    RunModel,
    Summary,
    SystemModel,
    TrainingStart,
    ref_value,
)
from hydrorl.workbench import Workbench

#: The longest a long poll (``/runs/{id}/wait``) holds a request; the client polls again.
MAX_WAIT_S = 60.0
#: A forecast upload's request may exceed the file limit by this much (the form's fields).
FORM_OVERHEAD_BYTES = 1_000_000
#: The largest request body of any other route (JSON: settings, a system); an upload's is the
#: upload limits' (HYDRORL_MAX_UPLOAD_BYTES, HYDRORL_MAX_EXCEL_BYTES) plus the form's overhead.
MAX_BODY_BYTES = 1_000_000

TokenCheck = Callable[[str], bool]

# Module level: the routes' annotations are strings (postponed), resolved in this module.
_bearer = HTTPBearer(auto_error=False)

_ARROW_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A DataFrame as an Arrow IPC stream",
        "content": {ARROW: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, text in (
        (401, "No token, or one that is wrong or revoked"),
        (404, "No such object (NotFoundError)"),
        (409, "A name is taken or an object is in use"),
        (422, "Input that is not valid (ValidationError and its subclasses)"),
    )
}


def _frame(frame: pd.DataFrame) -> Response:
    return Response(content=wire.frame_to_arrow(frame), media_type=ARROW)


def database_tokens(workbench: Workbench) -> TokenCheck:
    """A token check against the tokens stored in ``workbench``'s database."""

    def check(secret: str) -> bool:
        with workbench.database.read() as session:
            return token_store.check_secret(session, secret)

    return check


def check_origins(origins: Sequence[str]) -> list[str]:
    """``origins`` as CORS allows them (``scheme://host[:port]``), or a ValidationError naming
    the one that is not an origin."""
    checked = []
    for origin in origins:
        parts = urllib.parse.urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValidationError(
                f"CORS origin {origin!r} is not an origin: give scheme://host[:port] "
                f"(as https://dashboards.example.com), nothing after it"
            )
        checked.append(f"{parts.scheme}://{parts.netloc}")
    return checked


def create_app(
    workbench: Workbench,
    tokens: TokenCheck | None = None,
    *,
    cors_origins: Sequence[str] | None = None,
) -> FastAPI:
    """The HTTP API over ``workbench``; ``tokens`` checks a bearer token's secret (default:
    the tokens of ``workbench``'s database, ``hydrorl token create``); ``cors_origins``: web
    origins whose pages may call it (default ``HYDRORL_CORS_ORIGINS``; none: CORS off)."""
    check = tokens if tokens is not None else database_tokens(workbench)
    origins = check_origins(settings.cors_origins() if cors_origins is None else cors_origins)
    wb = workbench
    app = FastAPI(
        title="HydroRL",
        version=hydrorl.__version__,
        description=(
            "The HydroRL workbench over HTTP. Tables come as Arrow IPC streams "
            f"({ARROW}), objects as JSON, errors as RFC 9457 problem details naming the "
            "HydroRL exception class. Objects are named by name or by id: `id:3`, "
            "`name:Demo river` (a bare text is a name)."
        ),
    )

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None or not check(credentials.credentials):
            raise _Unauthorised

    _install_errors(app)
    app.add_middleware(_ProblemWhenTooLarge)
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        # Tokens travel in the Authorization header, never in cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Whether the server is up (no token needed)."""
        return Health(status="ok", version=hydrorl.__version__)

    # The body's size is counted while it streams in (and judged by its Content-Length
    # before): 413 past it.  On the routes, not on the app: the app's limit answers outside
    # every middleware of ours, so its plain-text 413 could not become a problem document.
    api = APIRouter(
        dependencies=[Depends(authorised)], responses=_PROBLEMS, max_body_size=MAX_BODY_BYTES
    )

    # ------------------------------------------------------------------ systems

    @api.get("/systems", responses=_ARROW_RESPONSE, tags=["systems"])
    def systems() -> Response:
        return _frame(wb.systems())

    @api.post("/systems", response_model=SystemModel, tags=["systems"])
    def create_system(system: SystemModel) -> SystemModel:
        return SystemModel.of(wb.create_system(system.model_dump(mode="json")))

    @api.get("/systems/{system}", response_model=SystemModel, tags=["systems"])
    def system(system: str) -> SystemModel:
        return SystemModel.of(wb.system(_ref(system)))

    @api.get("/systems/{system}/reservoirs", responses=_ARROW_RESPONSE, tags=["systems"])
    def reservoirs(system: str) -> Response:
        return _frame(wb.reservoirs(_ref(system)))

    @api.get("/systems/{system}/power_stations", responses=_ARROW_RESPONSE, tags=["systems"])
    def power_stations(system: str) -> Response:
        return _frame(wb.power_stations(_ref(system)))

    @api.delete("/systems/{system}", status_code=204, tags=["systems"])
    def delete_system(system: str, cascade: bool = False) -> Response:
        wb.delete_system(_ref(system), cascade=cascade)
        return Response(status_code=204)

    # ------------------------------------------------------------------ forecasts

    @api.get("/forecasts", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def forecasts(system: str | None = None) -> Response:
        return _frame(wb.forecasts(ref_value(system)))

    @api.get("/forecasts/{forecast}", response_model=ForecastModel, tags=["forecasts"])
    def forecast(forecast: str, system: str | None = None) -> ForecastModel:
        return ForecastModel.of(wb.forecast(_ref(forecast), ref_value(system)))

    @api.get("/forecasts/{forecast}/scenarios", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def scenarios(forecast: str, system: str | None = None) -> Response:
        return _frame(wb.scenarios(_ref(forecast), ref_value(system)))

    @api.get("/forecasts/{forecast}/data", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def forecast_data(
        forecast: str,
        system: str | None = None,
        scenarios: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        chosen = None if scenarios is None else [_ref(s) for s in scenarios]
        return _frame(wb.forecast_data(_ref(forecast), chosen, ref_value(system)))

    upload_limit = (
        max(settings.max_upload_bytes(), settings.max_excel_bytes()) + FORM_OVERHEAD_BYTES
    )

    @api.post(
        "/systems/{system}/forecasts",
        response_model=ForecastModel,
        tags=["forecasts"],
        max_body_size=upload_limit,
    )
    def upload_forecast(
        system: str,
        file: Annotated[UploadFile, File(description="CSV, Parquet, Excel or Arrow IPC")],
        name: Annotated[str | None, Form()] = None,
        description: Annotated[str, Form()] = "",
        allow_duplicate: Annotated[bool, Form()] = False,
        allow_implausible: Annotated[bool, Form()] = False,
    ) -> ForecastModel:
        """Upload a forecast file, validated and stored as a local upload is (the same
        limits, the same messages: the file's size is checked on the file received, the
        request's against the limits while it streams in). A DataFrame is sent as an Arrow
        IPC stream."""
        with tempfile.TemporaryDirectory(prefix="hydrorl-upload-") as folder:
            source: Path | pd.DataFrame
            if file.content_type == ARROW:
                source = wire.frame_from_arrow(file.file.read())
                file_name = None
            else:
                # Named by its own base name (``file_name``): the validation's messages name
                # the file as a local upload of it does. On disk under a name of ours with its
                # extension (the format): a client's name never becomes a path.
                file_name = Path(file.filename or "").name or "upload"
                source = Path(folder) / f"upload{Path(file_name).suffix}"
                with source.open("wb") as out:
                    shutil.copyfileobj(file.file, out, 1 << 20)
            info = wb.upload_forecast(
                _ref(system),
                source,
                name,
                description=description,
                allow_duplicate=allow_duplicate,
                file_name=file_name,
                allow_implausible=allow_implausible,
            )
        return ForecastModel.of(info)

    @api.delete("/forecasts/{forecast}", response_model=list[int], tags=["forecasts"])
    def delete_forecast(
        forecast: str, system: str | None = None, cascade: bool = False
    ) -> list[int]:
        """Delete a forecast; answers the ids of the runs deleted with it."""
        return wb.delete_forecast(_ref(forecast), ref_value(system), cascade=cascade)

    @api.patch("/forecasts/{forecast}", response_model=ForecastModel, tags=["forecasts"])
    def rename_forecast(forecast: str, body: Rename, system: str | None = None) -> ForecastModel:
        info = wb.rename_forecast(_ref(forecast), _name(body), ref_value(system))
        return ForecastModel.of(info)

    @api.get("/uploads", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def uploads() -> Response:
        return _frame(wb.uploads())

    # ------------------------------------------------------------------ projects

    @api.get("/projects", responses=_ARROW_RESPONSE, tags=["projects"])
    def projects(system: str | None = None) -> Response:
        return _frame(wb.projects(ref_value(system)))

    @api.post("/projects", response_model=ProjectModel, tags=["projects"])
    def create_project(body: ProjectCreate) -> ProjectModel:
        info = wb.create_project(
            _ref(body.system), body.name, body.settings, description=body.description
        )
        return ProjectModel.of(info)

    @api.get("/projects/{project}", response_model=ProjectModel, tags=["projects"])
    def project(project: str, system: str | None = None) -> ProjectModel:
        return ProjectModel.of(wb.project(_ref(project), ref_value(system)))

    @api.patch("/projects/{project}", response_model=ProjectModel, tags=["projects"])
    def rename_project(project: str, body: Rename, system: str | None = None) -> ProjectModel:
        return ProjectModel.of(wb.rename_project(_ref(project), _name(body), ref_value(system)))

    @api.delete("/projects/{project}", response_model=list[int], tags=["projects"])
    def delete_project(project: str, system: str | None = None, cascade: bool = False) -> list[int]:
        return wb.delete_project(_ref(project), ref_value(system), cascade=cascade)

    # ------------------------------------------------------------------ runs

    @api.post("/runs", response_model=RunModel, tags=["runs"])
    def start_training(body: TrainingStart) -> RunModel:
        """Start training in background processes; answers at once with the queued run."""
        info = wb.start_training(
            _ref(body.project),
            _ref(body.forecast),
            start_volumes=body.start_volumes,
            system=ref_value(body.system),
            **body.overrides,
        )
        return RunModel.of(info)

    @api.get("/runs", responses=_ARROW_RESPONSE, tags=["runs"])
    def runs(project: str | None = None) -> Response:
        return _frame(wb.runs(ref_value(project)))

    @api.get("/runs/{run_id}", response_model=RunModel, tags=["runs"])
    def run(run_id: int) -> RunModel:
        return RunModel.of(wb.run(run_id))

    @api.patch("/runs/{run_id}", response_model=RunModel, tags=["runs"])
    def rename_run(run_id: int, body: Rename) -> RunModel:
        """Name a run (None or blank: take its name away)."""
        return RunModel.of(wb.rename_run(run_id, body.name))

    @api.delete("/runs/{run_id}", response_model=list[int], tags=["runs"])
    def delete_run(run_id: int) -> list[int]:
        return wb.delete_run(run_id)

    @api.post("/runs/{run_id}/stop", status_code=204, tags=["runs"])
    def stop(run_id: int, agent: int | None = None) -> Response:
        wb.stop(run_id, agent)
        return Response(status_code=204)

    @api.post("/runs/{run_id}/resume", response_model=RunModel, tags=["runs"])
    def resume(run_id: int) -> RunModel:
        return RunModel.of(wb.resume(run_id))

    @api.get("/runs/{run_id}/wait", response_model=RunModel, tags=["runs"])
    def wait(
        run_id: int,
        timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 30.0,
        until_learning: bool = False,
    ) -> RunModel:
        """Long poll: answers when the run has ended (or its agents learn, with
        ``until_learning``), or after ``timeout`` seconds with the run as it stands."""
        return RunModel.of(
            wb.wait(run_id, timeout=timeout, poll=0.25, until_learning=until_learning)
        )

    @api.get("/runs/{run_id}/agents", responses=_ARROW_RESPONSE, tags=["runs"])
    def agents(run_id: int) -> Response:
        return _frame(wb.agents(run_id))

    @api.get("/runs/{run_id}/curves", responses=_ARROW_RESPONSE, tags=["runs"])
    def curves(
        run_id: int,
        series: str | None = "episode_reward",
        all_series: bool = False,
        after_id: int = 0,
        watermark: Annotated[
            str | None, Query(description='JSON {"agent index": last id seen}')
        ] = None,
        every: int = 1,  # (checked by the workbench, in its words)
    ) -> Response:
        """Learning-curve points; incremental with ``watermark`` (the last frame's
        ``attrs["watermark"]``) or ``after_id``."""
        after: int | dict[int, int] = after_id
        if watermark is not None:
            after = _watermark(watermark)
        chosen = None if all_series else series
        return _frame(wb.curves(run_id, chosen, after_id=after, every=every))

    @api.get("/runs/{run_id}/curve_points", response_model=int, tags=["runs"])
    def curve_points(
        run_id: int, series: str | None = "episode_reward", all_series: bool = False
    ) -> int:
        """How many learning-curve points the run has stored."""
        return wb.curve_points(run_id, None if all_series else series)

    @api.post("/runs/{run_id}/evaluate", response_model=RunModel, tags=["runs"])
    def evaluate(run_id: int, body: EvaluationStart) -> RunModel:
        """Evaluate a run's best agent (or ``agent``) in the background; answers at once."""
        return RunModel.of(wb.evaluate(run_id, _ref(body.forecast), agent=body.agent))

    @api.get("/runs/{run_id}/episodes", responses=_ARROW_RESPONSE, tags=["runs"])
    def episodes(run_id: int) -> Response:
        return _frame(wb.episodes(run_id))

    @api.get("/episodes/{episode_id}/series", responses=_ARROW_RESPONSE, tags=["runs"])
    def episode_series(episode_id: int) -> Response:
        return _frame(wb.episode_series(episode_id))

    # ------------------------------------------------------------------ baselines

    @api.get("/forecasts/{forecast}/table", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def forecast_table(
        forecast: str,
        system: str | None = None,
        scenarios: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        """The stored values as arrays (one row per scenario and step, scenario-major; the
        shape, times and source in the stream's metadata)."""
        chosen = None if scenarios is None else [_ref(s) for s in scenarios]
        table = wb.forecast_table(_ref(forecast), chosen, ref_value(system))
        return _frame(wire.table_to_frame(table))

    @api.get(
        "/forecasts/{forecast}/statistics", response_model=ForecastStatistics, tags=["forecasts"]
    )
    def forecast_statistics(forecast: str, system: str | None = None) -> ForecastStatistics:
        """The whole forecast's price mean and standard deviation and inflow mean: the scales
        of its problem (which the client builds from the system, table and these)."""
        found = wb.forecast_statistics(_ref(forecast), ref_value(system))
        return ForecastStatistics.model_validate(found)

    @api.get("/forecasts/{forecast}/baselines", responses=_ARROW_RESPONSE, tags=["forecasts"])
    def baselines(
        forecast: str,
        system: str | None = None,
        scenarios: Annotated[list[str] | None, Query()] = None,
        steps: int | None = None,
        start_volumes: Annotated[list[float] | None, Query()] = None,
    ) -> Response:
        """Per scenario: the perfect-foresight bound, the SDP benchmark and the naive rules
        (EUR), computed by the server while the request waits."""
        chosen = None if scenarios is None else [_ref(s) for s in scenarios]
        return _frame(
            wb.baselines(
                _ref(forecast),
                ref_value(system),
                scenarios=chosen,
                steps=steps,
                start_volumes=start_volumes,
            )
        )

    # ------------------------------------------------------------------ database

    @api.get("/summary", response_model=Summary, tags=["service"])
    def summary() -> Summary:
        """What the server's database holds, as :meth:`hydrorl.Workbench.summary` says it."""
        return Summary(text=wb.summary())

    @api.post("/reap", response_model=list[ReapedModel], tags=["runs"])
    def reap(
        lock_wait: Annotated[float | None, Query(gt=0, le=600)] = None,
    ) -> list[ReapedModel]:
        """Fail the runs and agents whose processes are gone, with the reason (the server
        also does it in passing, as every reader does)."""
        return [
            ReapedModel(kind=r.kind, id=r.id, reason=r.reason) for r in wb.reap(lock_wait=lock_wait)
        ]

    # ------------------------------------------------------------------ demo

    @api.post("/demo", response_model=DemoModel, tags=["demo"])
    def setup_demo(body: DemoSetup) -> DemoModel:
        return DemoModel.of(
            wb.setup_demo(seed=body.seed, scenarios=body.scenarios, years=body.years)
        )

    app.include_router(api)
    _add_problem_schema(app)
    return app


def _ref(text: str | None) -> Any:
    return ref_value(text)


def _name(body: Rename) -> str:
    if body.name is None:
        raise ValueError("name: a forecast or project needs a name, got null")
    return body.name


def _watermark(text: str) -> dict[int, int]:
    try:
        found = json.loads(text)
        return {int(k): int(v) for k, v in found.items()}
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f'watermark: expected a JSON object {{"agent index": last id}}, got {text!r}'
        ) from None


class _UnauthorisedError(Exception):
    """Raised by the token check; answered 401 with a ``WWW-Authenticate`` challenge."""


_Unauthorised = _UnauthorisedError()


def _too_large(scope: Scope) -> ValidationError:
    """The refusal of a request body beyond its route's limit."""
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)  # the route's, while it answers
    at_most = f"at most {limit:,} bytes" if isinstance(limit, int) else "smaller"
    return ValidationError(
        f"the request is too large: its body must be {at_most} on "
        f"{scope.get('method', '')} {scope.get('path', '')}"
    )


class _ProblemWhenTooLarge:
    """Starlette's body limit answers a request beyond it by itself, in plain text, before
    any exception handler: this turns that answer into the problem document (a
    ValidationError naming the limit) that every other refusal is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_problem(message: Message) -> None:
            nonlocal replaced
            if replaced:  # the plain text's body, answered already
                return
            headers = dict(message.get("headers", ()))
            if (
                message["type"] == "http.response.start"
                and message["status"] == 413
                and not headers.get(b"content-type", b"").startswith(PROBLEM.encode())
            ):
                body = json.dumps(wire.problem_of(_too_large(scope), 413)).encode()
                replaced = True
                start = {"type": "http.response.start", "status": 413}
                start["headers"] = [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_problem)


def _install_errors(app: FastAPI) -> None:
    def problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)

    @app.exception_handler(_UnauthorisedError)
    def unauthorised(_request: Request, _error: Exception) -> Any:
        body = {
            "type": "urn:hydrorl:error:AuthenticationError",
            "title": "AuthenticationError",
            "status": 401,
            "detail": "a valid bearer token is needed (hydrorl token create; HYDRORL_TOKEN)",
            "error": "AuthenticationError",
        }
        return problem(401, body, {"WWW-Authenticate": "Bearer"})

    def known(_request: Request, error: Exception) -> Any:
        status = wire.status_of(error) or 500
        return problem(status, wire.problem_of(error, status))

    for cls in (HydroRLError, ValueError, TypeError):
        app.add_exception_handler(cls, known)

    @app.exception_handler(Exception)
    def bug(_request: Request, error: Exception) -> Any:
        # A server's bug or a broken database: no text of it leaves the server (it may name
        # paths or SQL); the traceback goes to the server's log.
        body = {
            "type": "urn:hydrorl:error:InternalError",
            "title": "InternalError",
            "status": 500,
            "detail": f"internal error ({type(error).__name__}): the server's log has the "
            "traceback",
            "error": "InternalError",
        }
        return problem(500, body)

    @app.exception_handler(StarletteHTTPException)
    def refused_by_the_framework(request: Request, error: Exception) -> Any:
        # What the framework itself refuses (a body it cannot parse, a method the path has
        # not): a problem document like every other refusal.  (A body beyond the size limit
        # is answered by Starlette's middleware, not here: _ProblemWhenTooLarge.)
        assert isinstance(error, StarletteHTTPException)
        status, detail = error.status_code, str(error.detail)
        if status == 404:
            body = wire.problem_of(NotFoundError(detail), 404)
        elif status == 413:  # the body limit, met while a handler read the body
            body = wire.problem_of(_too_large(request.scope), status)
        elif status in (400, 422):
            refused = ValidationError(f"the request is not readable: {detail}")
            body = wire.problem_of(refused, status)
        else:
            body = {
                "type": "urn:hydrorl:error:HTTPError",
                "title": "HTTPError",
                "status": status,
                "detail": detail,
                "error": "HTTPError",
            }
        return problem(status, body, dict(error.headers or {}) or None)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_request: Request, error: Exception) -> Any:
        # A request the routes' models refuse (a missing field, a wrong type): HydroRL's
        # ValidationError, in the same problem form as every other error.
        found = error.errors() if isinstance(error, RequestValidationError) else []
        text = "; ".join(
            f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', '')}" for e in found
        )
        refused = ValidationError(f"the request is not valid: {text or error}")
        return problem(422, wire.problem_of(refused, 422))


def _add_problem_schema(app: FastAPI) -> None:
    """Declare the problem details' schema in the OpenAPI document the routes refer to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = {
                "type": "object",
                "description": "RFC 9457 problem details; `error` names the HydroRL class",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "error": {"type": "string"},
                },
                "required": ["type", "title", "status", "detail", "error"],
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
