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


# ----------------------------------------------------------------- forecast uploads
# Memory ceiling of an upload: under 3 x the stored values (scenarios x steps x 8 bytes x
# 2: price and inflow), whatever the file's size on disk: 2.66 x (1.1 MB per MB of file)
# measured on a 197 MB CSV of 350 scenarios x 14,608 steps (benchmarks/upload.py).


def cors_origins() -> tuple[str, ...]:
    """Web origins whose pages may call the HTTP API (``HYDRORL_CORS_ORIGINS``, comma-separated;
    default none: CORS off, a browser lets only the server's own pages in)."""
    text = os.environ.get("HYDRORL_CORS_ORIGINS", "")
    return tuple(part.strip() for part in text.split(",") if part.strip())


def max_upload_bytes() -> int:
    """The largest CSV or Parquet forecast file accepted (default 2 GB).

    At most 2,147,483,647: ``Upload.size_bytes`` is a 32-bit integer on PostgreSQL.
    """
    return int(os.environ.get("HYDRORL_MAX_UPLOAD_BYTES", str(2 * 1000**3)))


def max_forecast_rows() -> int:
    """The most rows (scenarios x steps) one forecast may have (default 30 million).

    This bounds the memory of an upload: 16 bytes per row are stored, under 48 are
    held at the peak (480 MB stored, at most about 1.4 GB at the peak for 30 million rows).
    """
    return int(os.environ.get("HYDRORL_MAX_FORECAST_ROWS", "30000000"))


def max_excel_bytes() -> int:
    """The largest Excel (.xlsx) forecast file accepted (default 25 MB).

    Excel parses about 100 times slower than CSV: larger forecasts belong in CSV or Parquet.
    """
    return int(os.environ.get("HYDRORL_MAX_EXCEL_BYTES", str(25 * 1000**2)))


def max_excel_uncompressed_bytes() -> int:
    """The most bytes an .xlsx may inflate to, summed over its parts (default 200 MB).

    Checked on the sizes the zip declares, before the workbook is parsed: parsing time
    grows with the inflated size (about 3-10 MB/s), and the zip reader never inflates a
    part past its declared size.
    """
    return int(os.environ.get("HYDRORL_MAX_EXCEL_UNCOMPRESSED_BYTES", str(200 * 1000**2)))


def max_excel_compression_ratio() -> float:
    """The highest inflation ratio of any part of an .xlsx over 1 MB (default 100).

    Spreadsheets of numbers compress 4-10 times; a far higher ratio is a zip bomb.
    """
    return float(os.environ.get("HYDRORL_MAX_EXCEL_COMPRESSION_RATIO", "100"))


def max_abs_price_eur_mwh() -> float:
    """Prices beyond +/- this (EUR/MWh, default 1e5) are refused as implausible
    unless the upload allows implausible values (the highest market caps are 1e4)."""
    return float(os.environ.get("HYDRORL_MAX_ABS_PRICE_EUR_MWH", "1e5"))


def max_inflow_m3s() -> float:
    """Inflows above this (m3/s, default 1e6) are refused as implausible unless the
    upload allows implausible values (the Amazon's mouth carries about 2e5 m3/s)."""
    return float(os.environ.get("HYDRORL_MAX_INFLOW_M3S", "1e6"))


def upload_chunk_rows() -> int:
    """Rows per read chunk and per write transaction of a forecast upload (default 50,000).

    Each chunk of values is its own short committed transaction (a few tenths of a
    second on SQLite), so that heartbeats and other writers never wait long behind it.
    """
    return max(1, int(os.environ.get("HYDRORL_UPLOAD_CHUNK_ROWS", "50000")))


def staged_upload_max_age_seconds() -> float:
    """Staged values of an upload older than this (default 6 h) are an interrupted
    upload's leftovers, which the next upload (or ``sweep_staged_series``) deletes."""
    return float(os.environ.get("HYDRORL_STAGED_UPLOAD_MAX_AGE_S", str(6 * 3600)))
