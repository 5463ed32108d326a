"""``hydrorl.connect``: the local workbench or a server's, chosen by the URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hydrorl.service.client import RemoteWorkbench
    from hydrorl.workbench import Workbench


def connect(url: str | None = None, *, token: str | None = None) -> Workbench | RemoteWorkbench:
    """Open HydroRL's workbench: a HydroRL server's for an ``http(s)://`` URL, else a database's.

    - ``http://host:8000`` or ``https://...``: a :class:`~hydrorl.service.client.RemoteWorkbench`
      with ``token`` (default ``$HYDRORL_TOKEN``); nothing heavy is imported.
    - any SQLAlchemy URL or a file path: the local :class:`~hydrorl.Workbench`, creating or
      upgrading the database as needed (see :func:`hydrorl.workbench.connect`).
    - nothing: ``$HYDRORL_DATABASE_URL``, either of the above (so a notebook or dashboard
      written as ``hydrorl.connect()`` works on a server when that names one), or else
      ``~/.hydrorl/hydrorl.db``.
    """
    if url is None:
        from hydrorl import settings

        url = settings.default_database_url()
    if is_server(url):
        from hydrorl.service.client import RemoteWorkbench

        return RemoteWorkbench(url, token)
    if token is not None:
        raise ValueError("a token is for a HydroRL server (http:// or https://), not a database")
    from hydrorl.workbench import connect as connect_local

    return connect_local(url)


def is_server(url: str | None) -> bool:
    """Whether ``url`` names a HydroRL server (``http(s)://``) rather than a database."""
    return url is not None and url.lower().startswith(("http://", "https://"))
