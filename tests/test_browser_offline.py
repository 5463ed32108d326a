"""Every face offline: served Panel, Voila and JupyterLab make no request off this machine.

Each test records every request and websocket the page opens and fails on any whose host
is not the local server, and on any console error; JupyterLab's own calls to the internet
(news, update check, extension manager) are switched off by configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

import hydrorl
from hydrorl.ui.resources import local_stylesheet
from hydrorl.voila import install_voila_template
from tests.test_browser import (  # noqa: F401 (browser is a fixture)
    ARTIFACTS,
    ROOT,
    _free_port,
    _start,
    _wait_for_port,
    browser,
    voila_process,
)

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TABS = ["Upload a forecast", "Train", "Episodes", "Runs", "System & forecasts"]
TRANSPARENT = "rgba(0, 0, 0, 0)"


class Recorder:
    """What a page asked of the network, and what it wrote to its console as errors."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.external: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self._see(r.url))
        page.on("websocket", lambda w: self._see(w.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _see(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about"):
            return
        if parsed.hostname not in LOCAL_HOSTS:
            self.external.append(url)

    def check(self) -> None:
        assert self.external == [], f"{len(self.external)} requests off this machine"
        assert self.errors == [], "\n".join(self.errors)


@pytest.fixture
def demo_db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'offline.db'}"
    with hydrorl.connect(url) as wb:
        wb.setup_demo(scenarios=2, years=1)
    yield url


def start_voila(url: str, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """Voila serving the workbench notebook on the database at ``url``; the process and port.

    From the repository's root, where ``voila.json`` keeps the pyviz lab extension out of
    Voila, with the ``hydrorl`` template installed as ``hydrorl demo`` does (an editable
    install copies no data).
    """
    install_voila_template()
    port = _free_port()
    voila = voila_process(port, tmp_path / "voila.log", {**os.environ, "HYDRORL_DATABASE_URL": url})
    return voila, port


def start_lab(lab_root: Path, url: str, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """JupyterLab on the notebooks in ``lab_root`` and the database at ``url``, making no call
    to the internet of its own; the process and port."""
    config = tmp_path / "jupyter-config"
    # No announcements at all (neither the news request nor the toast asking about it), and
    # no debugger: it logs "Could not restore the debugger state" when the kernel it asked
    # is busy running the cells the test starts at once, a console error that is not ours.
    off = {
        "@jupyterlab/apputils-extension:announcements": True,
        "@jupyterlab/debugger-extension": True,
    }
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": off}))
    port = _free_port()
    env = {
        **os.environ,
        "HYDRORL_DATABASE_URL": url,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    lab = _start(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--port={port}",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--IdentityProvider.token=",
            "--allow-root",  # (CI runs as root)
            f"--ServerApp.root_dir={lab_root}",
            "--LabApp.expose_app_in_browser=True",  # lets the test run the cells by command
            # JupyterLab's own calls to the internet, off:
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ],
        tmp_path / "jupyterlab.log",
        env=env,
    )
    return lab, port


def _visit_tabs(page, root, name: str) -> None:  # noqa: ANN001
    """Open every tab, as a user would: each renders its components anew (Tabs are dynamic)."""
    for tab in TABS:
        root.get_by_text(tab, exact=True).first.click()
        if tab == "Runs":  # Panel's Tabulator, loaded from the server like the rest
            root.locator(".tabulator").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / f"offline-{name}-{tab.split()[0].lower()}.png"))


def _styled_danger_alert(page, root, tmp_path: Path) -> None:  # noqa: ANN001
    """A refused file shows a danger alert with Panel's (Bootstrap's) colours, not bare text."""
    root.get_by_text("Upload a forecast", exact=True).first.click()
    broken = tmp_path / "broken.csv"
    broken.write_text("time,scenario,price,inflow\n2027-01-01,S01,abc,1\n")
    root.locator("input[type=file]").set_input_files(str(broken))
    alert = root.locator(".alert-danger").first
    alert.wait_for(timeout=30_000)
    assert alert.evaluate("e => getComputedStyle(e).backgroundColor") != TRANSPARENT
    store = root.locator("button", has_text="Store forecast").first
    assert store.evaluate("e => getComputedStyle(e).backgroundColor") != TRANSPARENT


def test_served_dashboard_makes_no_external_request(browser, demo_db, tmp_path: Path) -> None:  # noqa: F811
    """``hydrorl dashboard`` (panel serve): Panel's and Bokeh's files come from the server."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    server = _start(
        [sys.executable, "-m", "hydrorl", "dashboard", "--port", str(port)],
        tmp_path / "dashboard.log",
        env={**os.environ, "HYDRORL_DATABASE_URL": demo_db},
    )
    try:
        _wait_for_port(port, server)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        seen = Recorder(page)
        page.goto(f"http://localhost:{port}/", timeout=60_000)
        page.get_by_text("Hoegfjell PS").first.wait_for(timeout=60_000)
        _visit_tabs(page, page, "dashboard")
        _styled_danger_alert(page, page, tmp_path)
        page.screenshot(path=str(ARTIFACTS / "offline-dashboard-alert.png"), full_page=True)
        seen.check()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_voila_dashboard_makes_no_external_request(browser, demo_db, tmp_path: Path) -> None:  # noqa: F811
    """Voila: stylesheets inline (alerts and buttons styled), no Font Awesome link, one title."""
    ARTIFACTS.mkdir(exist_ok=True)
    voila, port = start_voila(demo_db, tmp_path)
    try:
        _wait_for_port(port, voila)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        seen = Recorder(page)
        page.goto(f"http://127.0.0.1:{port}/", timeout=90_000)
        page.get_by_text("Hoegfjell PS").first.wait_for(timeout=90_000)
        assert page.locator("h1", has_text="HydroRL workbench").count() == 1  # the app's own
        _visit_tabs(page, page, "voila")
        _styled_danger_alert(page, page, tmp_path)
        page.screenshot(path=str(ARTIFACTS / "offline-voila-alert.png"), full_page=True)
        seen.check()
    finally:
        voila.terminate()
        voila.wait(timeout=30)


def _quickstart_opening(path: Path) -> None:
    """The quick start's cells up to its first component (the system and forecast view)."""
    notebook = json.loads((ROOT / "notebooks" / "01_quickstart.ipynb").read_text())
    cells = []
    for cell in notebook["cells"]:
        cells.append(
            {**cell, "outputs": [], "execution_count": None} if "outputs" in cell else cell
        )
        if "".join(cell["source"]).strip().startswith("ForecastExplorer(wb"):
            break
    else:
        pytest.fail("the quick start no longer shows a ForecastExplorer")
    path.write_text(json.dumps({**notebook, "cells": cells}))


def _run_cells(page, shows, seconds: float) -> None:  # noqa: ANN001
    """Run all cells until ``shows`` appears, again when the kernel idles without showing it.

    Seen here: JupyterLab's first kernel connection failed (a 500 on its channels), Lab
    started another kernel and the cells after the first never ran; a user runs them again.
    The cells are idempotent (``setup_demo`` creates nothing twice).
    """
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + seconds
    last = -1e9
    while not shows.is_visible():
        assert time.monotonic() < deadline, "the notebook's cells did not show their output"
        if accept.is_visible():
            accept.click()  # JupyterLab asks which kernel to start: the one it proposes
        elif idle.is_visible() and time.monotonic() - last > 15:
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            last = time.monotonic()
        page.wait_for_timeout(500)


def test_jupyterlab_runs_the_quickstart_offline(browser, demo_db, tmp_path: Path) -> None:  # noqa: F811
    """JupyterLab: the quick start's opening cells render Panel components, offline."""
    ARTIFACTS.mkdir(exist_ok=True)
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    _quickstart_opening(lab_root / "quickstart.ipynb")
    lab, port = start_lab(lab_root, demo_db, tmp_path)
    page = None
    try:
        _wait_for_port(port, lab)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        seen = Recorder(page)
        page.goto(f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb", timeout=90_000)
        page.wait_for_function(
            "() => window.jupyterapp?.commands.isEnabled('notebook:run-all-cells')",
            timeout=90_000,
        )
        output = page.locator(".jp-OutputArea-output")
        _run_cells(page, shows=output.get_by_text("Hoegfjell PS").first, seconds=90)
        page.get_by_text("using 'Demo forecast").first.wait_for(timeout=10_000)  # the note
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "offline-jupyterlab-quickstart.png"))
        assert page.get_by_text("Bokeh or Panel library is missing").count() == 0
        seen.check()
    except BaseException:
        if page is not None:
            page.screenshot(path=str(ARTIFACTS / "offline-jupyterlab-failure.png"))
        raise
    finally:
        lab.terminate()
        lab.wait(timeout=30)


def test_local_stylesheet_reads_panels_own_file() -> None:
    from panel.io.resources import CDN_DIST

    url = local_stylesheet(f"{CDN_DIST}css/loading.css?v=1")
    assert url.startswith("data:text/css;base64,")
    assert local_stylesheet("https://example.org/x.css") == "https://example.org/x.css"
