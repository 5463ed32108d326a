"""Process-wide settings and their ``HYDRORL_*`` environment overrides, in one place."""

from __future__ import annotations

import hashlib
import os
import re
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


def database_key(url: str) -> str:
    """A short name for a database, the same in every process: its name and a hash.

    An SQLite file is known by its absolute path; a server database by its URL
    without the password.
    """
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser().resolve()
        name, canonical = path.stem, f"sqlite:{path}"
    else:
        name = parsed.database or parsed.get_backend_name()
        canonical = parsed.set(password=None).render_as_string(hide_password=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{digest}"


def sqlite_busy_timeout_ms() -> int:
    """Busy timeout for SQLite connections (default 30 s)."""
    return int(os.environ.get(SQLITE_BUSY_TIMEOUT_MS_ENV, "30000"))


def stale_after_seconds() -> float:
    """Heartbeats older than this mark a run or agent of another host as dead (default 20 s).

    A process of this host is judged by its pid and start time, never by its heartbeat.
    """
    return float(os.environ.get("HYDRORL_STALE_AFTER_S", "20"))


def start_grace_seconds() -> float:
    """How long queued work of another host may take to write its first heartbeat (10 min):
    importing torch on a loaded machine takes minutes."""
    return float(os.environ.get("HYDRORL_START_GRACE_S", "600"))


def reap_interval_seconds() -> float:
    """How often a reader (``wb.run``, a dashboard's refresh) looks for dead work (5 s)."""
    return float(os.environ.get("HYDRORL_REAP_INTERVAL_S", "5"))


def heartbeat_seconds() -> float:
    """How often live processes write their heartbeat (default 2 s)."""
    return float(os.environ.get("HYDRORL_HEARTBEAT_S", "2"))


def max_agents() -> int:
    """The most agents one run may have (default 64): each is a process of its own."""
    return int(os.environ.get("HYDRORL_MAX_AGENTS", "64"))
