"""The workbench dashboard over the HTTP API, in a real browser: ``hydrorl dashboard --url``
and the Voila dashboard against a ``hydrorl serve`` process, each holding only the server's URL
and a token.

What the page does goes through the server; what the test checks is read from the database
behind it by the local workbench.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hydrorl
from hydrorl.db import tokens as token_store
from tests.test_browser import (  # noqa: F401 (browser: a fixture)
    ARTIFACTS,
    KNOWN_OFFLINE_CDN,
    TINY,
    _free_port,
    _start,
    _the_whole_story,
    _wait_for_port,
    browser,
    voila_process,
)


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[str, hydrorl.Workbench, dict[str, str], Path]]:
    """A ``hydrorl serve`` process on a demo database: its URL, the workbench on the database
    behind it (for the checks), the environment of a process that knows only the server's URL
    and a token, and that process's home (where a database of its own would appear)."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    wb = hydrorl.connect(url)
    wb.setup_demo(scenarios=2, years=1)
    wb.create_project("Demo river", "tiny", TINY)
    token = wb.database.run_write(lambda s: token_store.create_token(s, "dashboard"))
    api_port = _free_port()
    api = _start(
        [sys.executable, "-m", "hydrorl", "serve", "--port", str(api_port)],
        tmp_path / "api.log",
        env={**os.environ, "HYDRORL_DATABASE_URL": url},
    )
    client_home = tmp_path / "client-home"
    client_env = {k: v for k, v in os.environ.items() if k != "HYDRORL_DATABASE_URL"}
    client_env.update(HYDRORL_TOKEN=token, HYDRORL_HOME=str(client_home))
    try:
        _wait_for_port(api_port, api)
        yield f"http://127.0.0.1:{api_port}", wb, client_env, client_home
    finally:
        api.terminate()
        api.wait(timeout=30)
        for pid in wb.agents(1)["pid"].dropna() if not wb.runs().empty else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        wb.close()


@pytest.fixture
def over_the_api(api_server, tmp_path: Path) -> Iterator[tuple[str, hydrorl.Workbench, Path]]:  # noqa: ANN001
    server, wb, client_env, client_home = api_server
    port = _free_port()
    dashboard = _start(
        [sys.executable, "-m", "hydrorl", "dashboard", "--url", server, "--port", str(port)],
        tmp_path / "dashboard.log",
        env=client_env,
    )
    try:
        _wait_for_port(port, dashboard)
        yield f"http://localhost:{port}/", wb, client_home
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_the_dashboard_works_through_a_server(browser, over_the_api, tmp_path: Path) -> None:  # noqa: F811
    address, wb, client_home = over_the_api
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(address, timeout=60_000)
    page.get_by_text("Hoegfjell PS").first.wait_for(timeout=60_000)
    _the_whole_story(page, wb, tmp_path, "service", reload=False)
    assert failed == []
    assert errors == []
    # The dashboard's process never opened a database of its own.
    assert not client_home.exists() or not list(client_home.rglob("*.db"))


def test_the_voila_dashboard_works_through_a_server(browser, api_server, tmp_path: Path) -> None:  # noqa: F811
    """The Voila dashboard, unchanged (its notebook calls ``hydrorl.connect()``), on a server
    named in ``$HYDRORL_DATABASE_URL``: the whole story through the HTTP API."""
    server, wb, client_env, client_home = api_server
    from hydrorl.voila import install_voila_template

    install_voila_template()
    port = _free_port()
    voila = voila_process(
        port, tmp_path / "voila.log", {**client_env, "HYDRORL_DATABASE_URL": server}
    )
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        refused: list[str] = []
        page.on(
            "response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        _wait_for_port(port, voila)
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.get_by_text("Hoegfjell PS").first.wait_for(timeout=120_000)
        _the_whole_story(page, wb, tmp_path, "voila-service", reload=False)
        assert [u for u in failed if not u.startswith(KNOWN_OFFLINE_CDN)] == []
        assert refused == [] and errors == []
        assert not client_home.exists() or not list(client_home.rglob("*.db"))
    finally:
        voila.terminate()
        voila.wait(timeout=30)
