"""The seed's data model as typed SQLAlchemy 2.0 tables (DESIGN.md §1).

Names follow the concepts (HydroSystem, Forecast, SeriesLink, ProjectRun,
Agent, TrainStepValue, EvaluationEpisode, ...); columns carry their units.
Times are stored as naive UTC datetimes (see :func:`utcnow`) so that SQLite and
PostgreSQL read back the same values.  Nothing here is SQLite-specific except
the ``sqlite_with_rowid`` table option on the two big value tables, which other
dialects ignore.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names keep Alembic migrations portable between dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Now as a naive UTC datetime, the form every time column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON}


class SeriesKind(enum.StrEnum):
    """What a TimeDataSeries holds."""

    PRICE = "price"
    INFLOW = "inflow"


class RunKind(enum.StrEnum):
    TRAIN = "train"
    EVALUATE = "evaluate"


class Status(enum.StrEnum):
    """The one closed set of states of runs and agents."""

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


class ControlCommand(enum.StrEnum):
    STOP = "stop"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings (no native ENUM type) so every dialect agrees.
    return Enum(
        cls,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


# --------------------------------------------------------------------------- systems


class HydroSystem(Base):
    __tablename__ = "hydro_system"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    reservoirs: Mapped[list[Reservoir]] = relationship(
        back_populates="system", cascade="all, delete-orphan", order_by="Reservoir.position"
    )
    power_stations: Mapped[list[PowerStation]] = relationship(
        back_populates="system", cascade="all, delete-orphan", order_by="PowerStation.position"
    )
    forecasts: Mapped[list[Forecast]] = relationship(back_populates="system")
    projects: Mapped[list[Project]] = relationship(back_populates="system")


class Reservoir(Base):
    __tablename__ = "reservoir"
    __table_args__ = (UniqueConstraint("system_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("hydro_system.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    min_volume_mm3: Mapped[float] = mapped_column(Float)
    max_volume_mm3: Mapped[float] = mapped_column(Float)
    inflow_factor: Mapped[float] = mapped_column(Float)

    system: Mapped[HydroSystem] = relationship(back_populates="reservoirs")


class PowerStation(Base):
    __tablename__ = "power_station"
    __table_args__ = (UniqueConstraint("system_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("hydro_system.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    upstream_reservoir_id: Mapped[int] = mapped_column(
        ForeignKey("reservoir.id", ondelete="CASCADE")
    )
    # None: the station releases to the sea.
    downstream_reservoir_id: Mapped[int | None] = mapped_column(
        ForeignKey("reservoir.id", ondelete="CASCADE")
    )
    max_discharge_m3s: Mapped[float] = mapped_column(Float)
    energy_equivalent_kwh_m3: Mapped[float] = mapped_column(Float)

    system: Mapped[HydroSystem] = relationship(back_populates="power_stations")
    upstream_reservoir: Mapped[Reservoir] = relationship(foreign_keys=[upstream_reservoir_id])
    downstream_reservoir: Mapped[Reservoir | None] = relationship(
        foreign_keys=[downstream_reservoir_id]
    )


# --------------------------------------------------------------------------- forecasts


class Upload(Base):
    """Traceability of every forecast: what file it came from."""

    __tablename__ = "upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    file_format: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Forecast(Base):
    __tablename__ = "forecast"
    __table_args__ = (UniqueConstraint("system_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("hydro_system.id", ondelete="CASCADE"))
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("upload.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    start_time: Mapped[dt.datetime] = mapped_column(DateTime)
    step_seconds: Mapped[int] = mapped_column(Integer)
    n_steps: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    system: Mapped[HydroSystem] = relationship(back_populates="forecasts")
    upload: Mapped[Upload | None] = relationship()
    series_links: Mapped[list[SeriesLink]] = relationship(
        back_populates="forecast",
        cascade="all, delete-orphan",
        order_by="SeriesLink.scenario_index",
    )


class TimeDataSeries(Base):
    __tablename__ = "time_data_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SeriesKind] = mapped_column(_enum(SeriesKind))
    unit: Mapped[str] = mapped_column(String(32))
    length: Mapped[int] = mapped_column(Integer)


class TimeDataValue(Base):
    """One value of a series; the primary key is the read path (series, step)."""

    __tablename__ = "time_data_value"
    __table_args__ = {"sqlite_with_rowid": False}

    series_id: Mapped[int] = mapped_column(
        ForeignKey("time_data_series.id", ondelete="CASCADE"), primary_key=True
    )
    step_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class SeriesLink(Base):
    """One scenario of a forecast: its price series and its inflow series."""

    __tablename__ = "series_link"
    __table_args__ = (
        UniqueConstraint("forecast_id", "scenario_index"),
        UniqueConstraint("forecast_id", "scenario_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    forecast_id: Mapped[int] = mapped_column(ForeignKey("forecast.id", ondelete="CASCADE"))
    scenario_index: Mapped[int] = mapped_column(Integer)
    scenario_name: Mapped[str] = mapped_column(String(200))
    price_series_id: Mapped[int] = mapped_column(
        ForeignKey("time_data_series.id", ondelete="CASCADE")
    )
    inflow_series_id: Mapped[int] = mapped_column(
        ForeignKey("time_data_series.id", ondelete="CASCADE")
    )

    forecast: Mapped[Forecast] = relationship(back_populates="series_links")
    price_series: Mapped[TimeDataSeries] = relationship(foreign_keys=[price_series_id])
    inflow_series: Mapped[TimeDataSeries] = relationship(foreign_keys=[inflow_series_id])


# --------------------------------------------------------------------------- projects and runs


class Project(Base):
    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("system_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("hydro_system.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    system: Mapped[HydroSystem] = relationship(back_populates="projects")
    runs: Mapped[list[ProjectRun]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectRun.id"
    )


class ProjectRun(Base):
    __tablename__ = "project_run"
    __table_args__ = (
        Index("ix_project_run_status_heartbeat", "status", "heartbeat_at"),
        # A unique index rather than a constraint: SQLite adds it without rebuilding the table.
        Index("ix_project_run_project_id_name", "project_id", "name", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    forecast_id: Mapped[int] = mapped_column(ForeignKey("forecast.id", ondelete="RESTRICT"))
    # An evaluation run points at the training run whose agent it evaluates.
    source_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("project_run.id", ondelete="CASCADE")
    )
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind))
    # What the user calls the run (None: "run <id>"); unique within its project.
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.CREATED)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    # The owner's start (boot and clock ticks, see hydrorl.jobs.liveness): pid + start
    # name one process, where a pid alone may have been reused.
    process_start: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # When it was (last) queued: the start-up grace before a first heartbeat counts from here.
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="runs")
    forecast: Mapped[Forecast] = relationship()
    start_volumes: Mapped[list[ProjectRunStartVolume]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )
    agents: Mapped[list[Agent]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Agent.index"
    )
    controls: Mapped[list[ProjectRunControl]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )


class ProjectRunStartVolume(Base):
    __tablename__ = "project_run_start_volume"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("project_run.id", ondelete="CASCADE"), primary_key=True
    )
    reservoir_id: Mapped[int] = mapped_column(
        ForeignKey("reservoir.id", ondelete="CASCADE"), primary_key=True
    )
    volume_mm3: Mapped[float] = mapped_column(Float)

    run: Mapped[ProjectRun] = relationship(back_populates="start_volumes")
    reservoir: Mapped[Reservoir] = relationship()


class Agent(Base):
    __tablename__ = "agent"
    __table_args__ = (
        UniqueConstraint("run_id", "index"),
        Index("ix_agent_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("project_run.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.CREATED)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    timesteps_done: Mapped[int] = mapped_column(Integer, default=0)
    best_peak_reward: Mapped[float | None] = mapped_column(Float)
    # The best validation score (a share of the bound on the held-aside episodes).
    best_validation: Mapped[float | None] = mapped_column(Float)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1000))
    best_checkpoint_path: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    # The owner's start (boot and clock ticks, see hydrorl.jobs.liveness): pid + start
    # name one process, where a pid alone may have been reused.
    process_start: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # When it was (last) queued: the start-up grace before a first heartbeat counts from here.
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow)

    run: Mapped[ProjectRun] = relationship(back_populates="agents")
    train_step_data: Mapped[list[TrainStepData]] = relationship(
        back_populates="agent", cascade="all, delete-orphan"
    )
    controls: Mapped[list[AgentControl]] = relationship(
        back_populates="agent", cascade="all, delete-orphan"
    )


class TrainStepData(Base):
    """One learning curve of an agent (episode reward, loss, entropy, ...)."""

    __tablename__ = "train_step_data"
    __table_args__ = (UniqueConstraint("agent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32), default="")

    agent: Mapped[Agent] = relationship(back_populates="train_step_data")


class TrainStepValue(Base):
    """One point of a curve; read "rows newer than the last seen" by (data_id, id)."""

    __tablename__ = "train_step_value"
    __table_args__ = (Index("ix_train_step_value_data_id_id", "data_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    data_id: Mapped[int] = mapped_column(ForeignKey("train_step_data.id", ondelete="CASCADE"))
    timestep: Mapped[int] = mapped_column(Integer)
    # Seconds since the Unix epoch, so curves can be drawn against wall time.
    wall_time: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)


class EvaluationEpisode(Base):
    """One scenario played by one policy in an evaluation run."""

    __tablename__ = "evaluation_episode"
    __table_args__ = (UniqueConstraint("run_id", "agent_id", "series_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("project_run.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    series_link_id: Mapped[int] = mapped_column(ForeignKey("series_link.id", ondelete="CASCADE"))
    total_reward: Mapped[float] = mapped_column(Float)
    revenue_eur: Mapped[float] = mapped_column(Float)
    spill_mm3: Mapped[float] = mapped_column(Float)
    end_volume_mm3: Mapped[float] = mapped_column(Float)
    end_water_value_eur: Mapped[float] = mapped_column(Float, default=0.0)
    bound_revenue_eur: Mapped[float | None] = mapped_column(Float)
    benchmark_revenue_eur: Mapped[float | None] = mapped_column(Float)
    #: The forecast planner's value (revenue + end water value) on the same scenario.
    planner_eur: Mapped[float | None] = mapped_column(Float)

    series_link: Mapped[SeriesLink] = relationship()
    report_data: Mapped[list[ReportData]] = relationship(
        back_populates="episode", cascade="all, delete-orphan"
    )


class ReportData(Base):
    """One per-step series of an episode (volume of a reservoir, discharge, price, ...)."""

    __tablename__ = "report_data"
    __table_args__ = (UniqueConstraint("episode_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("evaluation_episode.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32), default="")

    episode: Mapped[EvaluationEpisode] = relationship(back_populates="report_data")


class ReportValue(Base):
    __tablename__ = "report_value"
    __table_args__ = {"sqlite_with_rowid": False}

    data_id: Mapped[int] = mapped_column(
        ForeignKey("report_data.id", ondelete="CASCADE"), primary_key=True
    )
    step_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ProjectRunControl(Base):
    """An early-stop signal for a whole run (a record: it is passed on to the agents at once)."""

    __tablename__ = "project_run_control"
    __table_args__ = (Index("ix_project_run_control_pending", "run_id", "handled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("project_run.id", ondelete="CASCADE"))
    command: Mapped[ControlCommand] = mapped_column(_enum(ControlCommand))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    run: Mapped[ProjectRun] = relationship(back_populates="controls")


class AgentControl(Base):
    """An early-stop signal for one agent; handled_at is set by the agent's process."""

    __tablename__ = "agent_control"
    __table_args__ = (Index("ix_agent_control_pending", "agent_id", "handled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    command: Mapped[ControlCommand] = mapped_column(_enum(ControlCommand))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    agent: Mapped[Agent] = relationship(back_populates="controls")


# --------------------------------------------------------------------------- service


class ApiToken(Base):
    """A bearer token of the HTTP API, kept as the SHA-256 of its secret (never the secret)."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Hex SHA-256 of the secret: the secret is shown once, at creation, and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
