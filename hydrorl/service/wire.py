"""What crosses the wire between the HydroRL server and its client, defined once for both.

- **DataFrames** travel as Arrow IPC streams (:data:`ARROW`): dtypes, time zones, the index
  and None in object columns come back as they left.  Arrow keeps most of it itself (the
  pandas metadata of :meth:`pyarrow.Table.from_pandas`); what it does not is recorded in the
  schema's metadata: object columns (pandas 3 would read them back as ``str`` with NaN for
  None), columns of dicts or lists or of values of mixed types (each value sent as JSON
  text; a value JSON cannot hold, as its text), a time index's ``freq`` and ``frame.attrs``
  (the curves' watermark).
- **Objects** (a forecast, a project, a run, a system) travel as JSON through the pydantic
  models below; FastAPI builds the OpenAPI document from the same models, and the client
  turns them back into the workbench's own dataclasses.
- **Errors** travel as RFC 9457 problem details (:data:`PROBLEM`) naming the HydroRL
  exception class and carrying its message unchanged, so that the client raises the same
  class with the same text as the local workbench would.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field

from hydrorl import errors
from hydrorl.forecast import ForecastTable
from hydrorl.project import TrainingSettings
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from hydrorl.workbench import ForecastInfo, ProjectInfo
from hydrorl.workbench_runs import RunInfo

#: The media type of a DataFrame on the wire.
ARROW = "application/vnd.apache.arrow.stream"
#: The media type of an error (RFC 9457).
PROBLEM = "application/problem+json"

_META_OBJECT = b"hydrorl.object_columns"
_META_JSON = b"hydrorl.json_columns"
_META_ATTRS = b"hydrorl.attrs"
_META_FREQ = b"hydrorl.index_freq"


# ---------------------------------------------------------------------- DataFrames


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict | list | tuple)


def _arrow_can_take(column: pd.Series) -> bool:
    """Whether Arrow can hold an object column as one type (not, e.g., numbers and text: a
    user's DataFrame with a typo in it, whose upload must be refused as a local one is)."""
    try:
        pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def frame_to_arrow(frame: pd.DataFrame) -> bytes:
    """``frame`` as the bytes of one Arrow IPC stream (see the module's docstring)."""
    frame = frame.copy(deep=False)
    object_columns, json_columns = [], []
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        object_columns.append(str(name))
        if column.map(_is_nested).any() or not _arrow_can_take(column):
            json_columns.append(str(name))
            frame[name] = column.map(lambda v: None if v is None else json.dumps(v, default=str))
    table = pa.Table.from_pandas(frame, preserve_index=True)
    metadata = dict(table.schema.metadata or {})
    metadata[_META_OBJECT] = json.dumps(object_columns).encode()
    metadata[_META_JSON] = json.dumps(json_columns).encode()
    metadata[_META_ATTRS] = json.dumps(frame.attrs, default=str).encode()
    freq = getattr(frame.index, "freqstr", None)  # a time index's step (Arrow keeps none)
    if freq:
        metadata[_META_FREQ] = freq.encode()
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def frame_from_arrow(data: bytes) -> pd.DataFrame:
    """The DataFrame :func:`frame_to_arrow` wrote."""
    table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    metadata = table.schema.metadata or {}
    frame = table.to_pandas()
    for name in json.loads(metadata.get(_META_OBJECT, b"[]")):
        if name in frame.columns:
            column = table.column(name)
            values = column.to_pylist()  # None stays None
            if pa.types.is_timestamp(column.type) or pa.types.is_duration(column.type):
                convert = pd.Timestamp if pa.types.is_timestamp(column.type) else pd.Timedelta
                values = [None if v is None else convert(v) for v in values]
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
    for name in json.loads(metadata.get(_META_JSON, b"[]")):
        values = [None if v is None else json.loads(v) for v in table.column(name).to_pylist()]
        frame[name] = pd.Series(values, index=frame.index, dtype=object)
    if _META_FREQ in metadata and isinstance(frame.index, pd.DatetimeIndex | pd.TimedeltaIndex):
        frame.index.freq = metadata[_META_FREQ].decode()
    attrs = json.loads(metadata.get(_META_ATTRS, b"{}"))
    if "watermark" in attrs:  # JSON object keys are text; agent indexes are ints
        attrs["watermark"] = {int(k): int(v) for k, v in attrs["watermark"].items()}
    frame.attrs.update(attrs)
    return frame


# ---------------------------------------------------------------------- objects


class SystemModel(BaseModel):
    """A hydro system (:class:`hydrorl.HydroSystem`)."""

    name: str
    description: str = ""
    reservoirs: list[Reservoir]
    power_stations: list[PowerStation] = Field(default_factory=list)

    @classmethod
    def of(cls, system: HydroSystem) -> SystemModel:
        return cls.model_validate(system.to_dict())

    def to_system(self) -> HydroSystem:
        return HydroSystem.from_dict(self.model_dump(mode="json"))


class ForecastModel(BaseModel):
    """A stored forecast (:class:`hydrorl.ForecastInfo`); ``step_seconds`` its step."""

    id: int
    name: str
    system: str
    start_time: dt.datetime
    step_seconds: float
    n_steps: int
    scenario_names: list[str]
    file_name: str | None
    content_hash: str | None
    description: str = ""

    @classmethod
    def of(cls, info: ForecastInfo) -> ForecastModel:
        return cls(
            id=info.id,
            name=info.name,
            system=info.system,
            start_time=info.start_time.to_pydatetime(),
            step_seconds=info.step.total_seconds(),
            n_steps=info.n_steps,
            scenario_names=list(info.scenario_names),
            file_name=info.file_name,
            content_hash=info.content_hash,
            description=info.description,
        )

    def to_info(self) -> ForecastInfo:
        return ForecastInfo(
            id=self.id,
            name=self.name,
            system=self.system,
            start_time=pd.Timestamp(self.start_time),
            step=pd.Timedelta(seconds=self.step_seconds),
            n_steps=self.n_steps,
            scenario_names=tuple(self.scenario_names),
            file_name=self.file_name,
            content_hash=self.content_hash,
            description=self.description,
        )


class ProjectModel(BaseModel):
    """A project and its training settings (:class:`hydrorl.ProjectInfo`)."""

    id: int
    name: str
    system: str
    settings: dict[str, Any]
    description: str = ""

    @classmethod
    def of(cls, info: ProjectInfo) -> ProjectModel:
        return cls(
            id=info.id,
            name=info.name,
            system=info.system,
            settings=info.settings.to_dict(),
            description=info.description,
        )

    def to_info(self) -> ProjectInfo:
        return ProjectInfo(
            id=self.id,
            name=self.name,
            system=self.system,
            settings=TrainingSettings.from_dict(self.settings),
            description=self.description,
        )


def _timestamp(value: dt.datetime | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


class RunModel(BaseModel):
    """A training or evaluation run (:class:`hydrorl.RunInfo`); times naive UTC."""

    id: int
    kind: str
    status: str
    status_reason: str
    project: str
    forecast: str
    settings: dict[str, Any]
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    source_run_id: int | None = None
    name: str | None = None

    @classmethod
    def of(cls, info: RunInfo) -> RunModel:
        def when(t: pd.Timestamp | None) -> dt.datetime | None:
            return None if t is None else t.to_pydatetime()

        return cls(
            id=info.id,
            kind=info.kind,
            status=info.status,
            status_reason=info.status_reason,
            project=info.project,
            forecast=info.forecast,
            settings=info.settings,
            error=info.error,
            created_at=info.created_at.to_pydatetime(),
            started_at=when(info.started_at),
            finished_at=when(info.finished_at),
            source_run_id=info.source_run_id,
            name=info.name,
        )

    def to_info(self) -> RunInfo:
        return RunInfo(
            id=self.id,
            kind=self.kind,
            status=self.status,
            status_reason=self.status_reason,
            project=self.project,
            forecast=self.forecast,
            settings=self.settings,
            error=self.error,
            created_at=pd.Timestamp(self.created_at),
            started_at=_timestamp(self.started_at),
            finished_at=_timestamp(self.finished_at),
            source_run_id=self.source_run_id,
            name=self.name,
        )


class DemoModel(BaseModel):
    """What :meth:`hydrorl.Workbench.setup_demo` returns."""

    created: list[str]
    note: str
    system: SystemModel
    forecast: ForecastModel
    project: ProjectModel

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> DemoModel:
        return cls(
            created=list(result["created"]),
            note=result["note"],
            system=SystemModel.of(result["system"]),
            forecast=ForecastModel.of(result["forecast"]),
            project=ProjectModel.of(result["project"]),
        )

    def to_result(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "note": self.note,
            "system": self.system.to_system(),
            "forecast": self.forecast.to_info(),
            "project": self.project.to_info(),
        }


class ProjectCreate(BaseModel):
    """The body of ``POST /projects``: :meth:`hydrorl.Workbench.create_project`'s arguments."""

    system: str
    name: str
    settings: dict[str, Any] | None = None
    description: str = ""


class TrainingStart(BaseModel):
    """The body of ``POST /runs``: :meth:`hydrorl.Workbench.start_training`'s arguments;
    ``overrides`` change the project's settings for this run."""

    project: str
    forecast: str
    system: str | None = None
    start_volumes: list[float] | dict[str, float] | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


class EvaluationStart(BaseModel):
    """The body of ``POST /runs/{run_id}/evaluate``."""

    forecast: str | None = None
    agent: int | None = None


class Rename(BaseModel):
    """The body of a ``PATCH`` that renames a run, forecast or project (None: a run unnamed)."""

    name: str | None


class DemoSetup(BaseModel):
    """The body of ``POST /demo``."""

    seed: int = 0
    scenarios: int = 20
    years: int = 5


class Health(BaseModel):
    status: str
    version: str


class ForecastStatistics(BaseModel):
    """:meth:`hydrorl.Workbench.forecast_statistics`: a whole forecast's scales."""

    price_mean: float
    price_std: float
    inflow_mean: float


class Summary(BaseModel):
    """What :meth:`hydrorl.Workbench.summary` says of the server's database."""

    text: str


class ReapedModel(BaseModel):
    """A run or agent failed because its process is gone (:meth:`hydrorl.Workbench.reap`)."""

    kind: str
    id: int
    reason: str


def table_to_frame(table: ForecastTable) -> pd.DataFrame:
    """A :class:`hydrorl.forecast.ForecastTable` as a frame for the wire: one row per
    scenario and step (scenario-major), what it came from in ``attrs``."""
    n_s, n_t = table.price_eur_mwh.shape
    frame = pd.DataFrame(
        {
            "scenario": np.repeat(np.arange(n_s), n_t),
            "price_eur_mwh": table.price_eur_mwh.reshape(-1),
            "inflow_m3s": table.inflow_m3s.reshape(-1),
        }
    )
    frame.attrs.update(
        scenario_names=list(table.scenario_names),
        steps=int(n_t),
        start_time=table.start_time.isoformat(),
        step_seconds=table.step.total_seconds(),
        source_name=table.source_name,
        source_format=table.source_format,
        content_hash=table.content_hash,
        size_bytes=int(table.size_bytes),
    )
    return frame


def table_from_frame(frame: pd.DataFrame) -> ForecastTable:
    """The :class:`~hydrorl.forecast.ForecastTable` :func:`table_to_frame` sent."""
    a = frame.attrs
    shape = (len(a["scenario_names"]), int(a["steps"]))
    return ForecastTable(
        scenario_names=tuple(a["scenario_names"]),
        start_time=pd.Timestamp(a["start_time"]),
        step=pd.Timedelta(seconds=a["step_seconds"]),
        price_eur_mwh=frame["price_eur_mwh"].to_numpy(dtype=float).reshape(shape),
        inflow_m3s=frame["inflow_m3s"].to_numpy(dtype=float).reshape(shape),
        source_name=a["source_name"],
        source_format=a["source_format"],
        content_hash=a["content_hash"],
        size_bytes=int(a["size_bytes"]),
    )


# ---------------------------------------------------------------------- references

# A forecast, project or system is named by its name or its id; in a URL both are text, so
# an id travels as "id:<n>" and a name as "name:<text>" (a bare text is a name too).


def ref_text(ref: str | int) -> str:
    """How the client writes a name or an id into a URL."""
    return f"id:{ref}" if isinstance(ref, int) else f"name:{ref}"


def ref_value(text: str | None) -> str | int | None:
    """The name or id :func:`ref_text` wrote."""
    if text is None:
        return None
    if text.startswith("id:") and text[3:].isdigit():
        return int(text[3:])
    return text.removeprefix("name:")


# ---------------------------------------------------------------------- errors

#: HTTP status per exception class (the first base class listed that matches).
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.NotFoundError, 404),
    (errors.AlreadyExistsError, 409),
    (errors.DuplicateUploadError, 409),
    (errors.InUseError, 409),
    (errors.ValidationError, 422),
    (errors.HydroRLError, 400),
    (ValueError, 422),
    (TypeError, 422),
)
#: Exceptions that are the user's doing and cross the wire by class name; anything else is
#: a server error, reported without its text.
_BUILTIN: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error is answered with; None for one that is not the user's doing."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return None


def problem_of(error: BaseException, status: int) -> dict[str, Any]:
    """RFC 9457 problem details of a HydroRL (or user input) error."""
    name = type(error).__name__
    return {
        "type": f"urn:hydrorl:error:{name}",
        "title": name,
        "status": status,
        "detail": str(error),
        "error": name,
    }


def error_of(problem: Mapping[str, Any], status: int) -> Exception:
    """The exception a problem stands for: the same HydroRL class (the root one for a class
    this client does not know) with the same message."""
    name = str(problem.get("error") or "")
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.HydroRLError):
        return cls(detail)
    if name in _BUILTIN:
        return _BUILTIN[name](detail)
    return errors.HydroRLError(detail)


class ServiceError(errors.HydroRLError):
    """The server could not be reached or answered with an error that is not HydroRL's."""


class AuthenticationError(errors.HydroRLError):
    """The server refused the token (missing, wrong or revoked)."""
