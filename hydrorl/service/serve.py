"""``hydrorl serve`` and ``hydrorl token``: the HTTP API in a uvicorn process, and its tokens.

Exposure is opt-in: the server listens on loopback by default and refuses any other address
while no token exists (every route but ``/health`` needs one anyway).  No secret reaches a
log line or a command line: tokens are created here and printed once, the server reads their
hashes from the database, and uvicorn's access log shows paths, never headers.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence

from hydrorl.db import tokens as token_store
from hydrorl.errors import HydroRLError, ValidationError
from hydrorl.workbench import Workbench


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


def check_exposure(workbench: Workbench, host: str) -> bool:
    """Refuse to listen beyond loopback while no token exists; return whether one exists."""
    with workbench.database.read() as session:
        any_token = token_store.has_tokens(session)
    if not any_token and not is_loopback(host):
        raise ValidationError(
            f"refusing to listen on {host!r} (beyond this machine) while no token exists: "
            f"create one first (hydrorl token create NAME), or serve on 127.0.0.1"
        )
    return any_token


def serve(
    workbench: Workbench,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    cors_origins: Sequence[str] | None = None,
) -> None:
    """Serve the HTTP API over ``workbench`` until interrupted; ``cors_origins``: web origins
    whose pages may call it (default ``HYDRORL_CORS_ORIGINS``; none: CORS off)."""
    import uvicorn

    from hydrorl.service.app import create_app

    app = create_app(workbench, cors_origins=cors_origins)  # (refuses a bad origin first)
    if not check_exposure(workbench, host):
        print(
            "hydrorl: no token exists: every route but /health refuses requests "
            "until one is created (hydrorl token create NAME)",
            file=sys.stderr,
            flush=True,
        )
    shown = f"[{host}]" if ":" in host else host
    print(
        f"Serving the HydroRL API on http://{shown}:{port}/ ({workbench.database!r}); "
        f"OpenAPI at /docs",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


def token_command(workbench: Workbench, command: str, name: str | None) -> None:
    """``hydrorl token create NAME | list | revoke NAME``."""
    database = workbench.database
    if command == "create":
        assert name is not None  # argparse requires it
        secret = database.run_write(lambda s: token_store.create_token(s, name))
        # The secret alone on stdout (export HYDRORL_TOKEN=$(hydrorl token create me));
        # what it is on stderr.
        print(
            f"Created token {name.strip()!r}; its secret follows, shown this once: "
            f"keep it in HYDRORL_TOKEN, never on a command line",
            file=sys.stderr,
        )
        print(secret, flush=True)
    elif command == "list":
        with database.read() as session:
            frame = token_store.list_tokens(session)
        if frame.empty:
            print("no tokens (hydrorl token create NAME)")
        else:
            print(frame.to_string(index=False))
    elif command == "revoke":
        assert name is not None
        database.run_write(lambda s: token_store.revoke_token(s, name))
        print(f"Revoked token {name!r}")
    else:  # pragma: no cover - argparse allows only the three
        raise HydroRLError(f"unknown token command {command!r}")
