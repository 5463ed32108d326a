"""Whether the process that owns a run or an agent is alive: the one liveness model.

A process is named by its host, its pid and its start (the boot it started in and
its start time in clock ticks, from ``/proc``): a pid alone may have been reused by
the kernel for a stranger.  On its own host a process is judged by that name alone,
whatever its heartbeat says: a busy machine, a slow import or a long write by
someone else delay heartbeats, never kill work.  On another host only its heartbeat
tells, with a start-up grace before the first one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import os
import socket

from hydrorl import settings


class Verdict(enum.StrEnum):
    ALIVE = "alive"  # its process runs on this host
    GONE = "gone"  # its process has ended (or its pid belongs to another process now)
    FRESH = "fresh"  # not judged by process: its heartbeat (or start-up grace) is recent
    STALE = "stale"  # not judged by process: no heartbeat for too long


@dataclasses.dataclass(frozen=True)
class Owner:
    """What a row says of its process: where, which, and when it last spoke."""

    host: str | None
    pid: int | None
    process_start: str | None
    heartbeat_at: dt.datetime | None
    waiting_since: dt.datetime | None  # queued (or created) at: the start-up grace's start


@functools.cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown-boot"


def process_start(pid: int) -> str | None:
    """The start of process ``pid`` of this host as ``boot:ticks`` (None where unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return f"{_boot_id()}:{fields[19]}"  # field 22 of stat; the first two are cut off above


def owner_columns(pid: int | None = None) -> dict[str, object]:
    """The columns that name process ``pid`` of this host (default: the caller) as an owner."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "process_start": process_start(pid)}


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether process ``pid`` of this host exists, is no zombie and (if given) started at
    ``start``."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(") ", 1)[1][:1] in ("Z", "X"):
                return False
    except (OSError, IndexError):
        return True  # no /proc: existence is all we can tell
    return start is None or process_start(pid) in (None, start)


def judge(
    owner: Owner,
    now: dt.datetime,
    *,
    stale_after: dt.timedelta | None = None,
    start_grace: dt.timedelta | None = None,
    host: str | None = None,
    check_processes: bool = True,
) -> Verdict:
    """Alive, gone, fresh or stale: see the module docstring."""
    host = host or socket.gethostname()
    if check_processes and owner.pid and owner.host == host:
        return Verdict.ALIVE if process_alive(owner.pid, owner.process_start) else Verdict.GONE
    if owner.heartbeat_at is not None:
        limit = stale_after or dt.timedelta(seconds=settings.stale_after_seconds())
        return Verdict.STALE if now - owner.heartbeat_at > limit else Verdict.FRESH
    grace = start_grace or dt.timedelta(seconds=settings.start_grace_seconds())
    if owner.waiting_since is not None and now - owner.waiting_since > grace:
        return Verdict.STALE
    return Verdict.FRESH
