"""Starting HydroRL's worker processes so that they outlive whoever started them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydrorl.settings import DATABASE_URL_ENV


def spawn(kind: str, url: str, row_id: int, log: Path, *, detach: bool) -> subprocess.Popen[bytes]:
    """Start ``python -m hydrorl.worker KIND ID`` on the database ``url``, output in ``log``.

    The URL travels in the child's environment (``$HYDRORL_DATABASE_URL``), not
    on its command line, which every user of the machine can read in ``ps``.
    ``detach`` starts it in a session of its own: closing the notebook kernel,
    Voila page or server that launched it does not take it down.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", DATABASE_URL_ENV: url}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hydrorl.worker", kind, str(row_id)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=detach,
            close_fds=True,
        )


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
