"""Process-wide settings and their ``HYDRORL_*`` environment overrides, in one place."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the database (any SQLAlchemy URL).
DATABASE_URL_ENV = "HYDRORL_DATABASE_URL"
#: Environment variable naming the folder for HydroRL's files (database, checkpoints).
HOME_ENV = "HYDRORL_HOME"
#: How long (ms) an SQLite connection waits for a lock before giving up.
SQLITE_BUSY_TIMEOUT_MS_ENV = "HYDRORL_SQLITE_BUSY_TIMEOUT_MS"


def home_dir() -> Path:
    """The folder for HydroRL's files: ``$HYDRORL_HOME`` or ``~/.hydrorl``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".hydrorl"


def default_database_url() -> str:
    """``$HYDRORL_DATABASE_URL`` or an SQLite file ``hydrorl.db`` in :func:`home_dir`."""
    value = os.environ.get(DATABASE_URL_ENV)
    if value:
        return value
    return f"sqlite:///{home_dir() / 'hydrorl.db'}"


def sqlite_busy_timeout_ms() -> int:
    """Busy timeout for SQLite connections (default 30 s)."""
    return int(os.environ.get(SQLITE_BUSY_TIMEOUT_MS_ENV, "30000"))


def stale_after_seconds() -> float:
    """Heartbeats older than this mark a run or agent as dead (default 30 s)."""
    return float(os.environ.get("HYDRORL_STALE_AFTER_S", "30"))


def heartbeat_seconds() -> float:
    """How often live processes write their heartbeat (default 2 s)."""
    return float(os.environ.get("HYDRORL_HEARTBEAT_S", "2"))
