"""Binder, without docker: binder/ builds and serves the Voila dashboard as repo2docker would.

repo2docker, for a repository with ``binder/requirements.txt``, ``binder/runtime.txt`` and
``binder/postBuild``: a Python of the version runtime.txt names, ``pip install -r
binder/requirements.txt`` from the repository root, then ``binder/postBuild``, then a Jupyter
server on which mybinder.org opens the ``urlpath`` of the launch link
(``voila/render/dashboards/workbench.ipynb``: Voila as a Jupyter server extension). This test
does each step in a fresh virtual environment and opens that page in chromium.

Slow on purpose: one venv build (about 1.5 min with pip's cache warm, on 2 cores), the full
demo of postBuild, a kernel start. It runs under ``CI=true`` like everything else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_browser import (  # noqa: F401 (browser is a fixture)
    ARTIFACTS,
    ROOT,
    _free_port,
    _start,
    _wait_for_port,
    browser,
)
from tests.test_browser_offline import TABS, Recorder

BINDER = ROOT / "binder"
URLPATH = "voila/render/dashboards/workbench.ipynb"
TOKEN = "binder-test-token"

pytestmark = pytest.mark.slow


def _runtime_python() -> str:
    """The interpreter runtime.txt asks for (``python-3.11`` -> ``python3.11``)."""
    wanted = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", wanted)
    assert match, f"binder/runtime.txt should read python-X.Y, not {wanted!r}"
    found = shutil.which(f"python{match[1]}")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"python{match[1]} (binder/runtime.txt) is missing on this CI machine")
        pytest.skip(f"python{match[1]} (binder/runtime.txt) is not installed here")
    return found


def _binder_environment(prefix: Path, home: Path) -> dict[str, str]:
    """A shell as repo2docker's: the environment's bin first, its own HOME, no HydroRL settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HYDRORL_", "JUPYTER_")) and key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(prefix)
    env["HOME"] = str(home)
    # The requirements' extra index (PyTorch's CPU wheels) is unreachable where only the
    # package registries are: its name does not resolve, and pip's default five retries with
    # backoff cost about 8 s per package (measured), some 20 minutes over the ~150 packages.
    # Failing at once changes nothing where the index answers (mybinder.org).
    env["PIP_RETRIES"] = "0"
    return env


def _run(args: list[str], env: dict[str, str], log: Path, seconds: float) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=seconds
        )
    if done.returncode:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{log.read_text()[-4000:]}")


def test_binder_builds_and_opens_the_voila_dashboard(browser, tmp_path: Path) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    python = _runtime_python()
    prefix, home = tmp_path / "binder-env", tmp_path / "home"
    home.mkdir()
    subprocess.run([python, "-m", "venv", str(prefix)], check=True, timeout=120)
    env = _binder_environment(prefix, home)
    # pip's cache lives in the real HOME: repeated builds reuse what they downloaded.
    pip_env = {**env, "HOME": os.environ.get("HOME", str(home))}
    log = tmp_path / "build.log"
    _run(
        [str(prefix / "bin" / "pip"), "install", "-r", "binder/requirements.txt"],
        pip_env,
        log,
        seconds=1500,
    )
    _run([str(BINDER / "postBuild")], env, log, seconds=600)
    assert (home / ".hydrorl" / "hydrorl.db").is_file(), "postBuild made no demo database"

    port = _free_port()
    server = _start(
        [
            str(prefix / "bin" / "jupyter"),
            "server",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--no-browser",
            "--allow-root",  # (CI runs as root; repo2docker's user does not need it)
            f"--IdentityProvider.token={TOKEN}",
        ],
        tmp_path / "server.log",
        cwd=ROOT,
        env=env,
    )
    page = None
    try:
        _wait_for_port(port, server, seconds=120)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        seen = Recorder(page)
        page.goto(f"http://127.0.0.1:{port}/{URLPATH}?token={TOKEN}", timeout=120_000)
        page.get_by_text("Hoegfjell PS").first.wait_for(timeout=180_000)  # the demo's data
        for tab in TABS:
            assert page.get_by_text(tab, exact=True).count() >= 1, f"no {tab!r} tab"
        page.get_by_text("Train", exact=True).first.click()
        page.locator("button", has_text="Start").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "binder-voila.png"))
        seen.check()
    except BaseException:
        if page is not None:
            page.screenshot(path=str(ARTIFACTS / "binder-voila-failure.png"))
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)
