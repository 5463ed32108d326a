"""The workbench dashboard over the HTTP API, in a real browser: ``hydrorl dashboard --url``
against a ``hydrorl serve`` process, the dashboard holding only the server's URL and a token.

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
    TINY,
    _free_port,
    _start,
    _the_whole_story,
    _wait_for_port,
    browser,
)


@pytest.fixture
def over_the_api(tmp_path: Path) -> Iterator[tuple[str, hydrorl.Workbench, Path]]:
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
    # The dashboard's process knows the server and the token, no database.
    client_home = tmp_path / "client-home"
    client_env = {k: v for k, v in os.environ.items() if k != "HYDRORL_DATABASE_URL"}
    client_env.update(HYDRORL_TOKEN=token, HYDRORL_HOME=str(client_home))
    port = _free_port()
    dashboard = None
    try:
        _wait_for_port(api_port, api)
        dashboard = _start(
            [
                sys.executable,
                "-m",
                "hydrorl",
                "dashboard",
                "--url",
                f"http://127.0.0.1:{api_port}",
                "--port",
                str(port),
            ],
            tmp_path / "dashboard.log",
            env=client_env,
        )
        _wait_for_port(port, dashboard)
        yield f"http://localhost:{port}/", wb, client_home
    finally:
        for process in (dashboard, api):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        for pid in wb.agents(1)["pid"].dropna() if not wb.runs().empty else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        wb.close()


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
