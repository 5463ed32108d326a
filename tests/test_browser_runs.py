"""The runs tab of the served dashboard in a real browser: sort, filter, select, compare, rename,
delete with confirmation (runs written as agents write them: no training here)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hydrorl
from hydrorl.training.agent import run_folder
from tests.conftest import long_forecast
from tests.test_browser import (  # noqa: F401  (browser: a fixture)
    ARTIFACTS,
    _free_port,
    _legend_in_page,
    _start,
    _wait_for_port,
    browser,
)
from tests.test_run_management import written_evaluation, written_run

SAC = {"algorithm": "SAC", "timesteps": 5000, "seed": 0, "hyperparameters": {"gamma": 0.95}}


@pytest.fixture
def served_runs(tmp_path: Path) -> Iterator[tuple[str, hydrorl.Workbench, dict[str, int]]]:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    wb = hydrorl.connect(url)
    wb.setup_demo(scenarios=2, years=1)
    wb.upload_forecast("Demo river", long_forecast(scenarios=2, steps=24), "spring")
    runs = {"ppo": written_run(wb), "sac": written_run(wb, forecast="spring", settings=SAC)}
    runs["other"] = written_run(wb, validations=(0.6, 0.7))
    runs["evaluation"] = written_evaluation(wb, runs["ppo"])
    port = _free_port()
    server = _start(
        [sys.executable, "-m", "hydrorl", "dashboard", "--port", str(port)],
        tmp_path / "dashboard.log",
        env={**os.environ, "HYDRORL_DATABASE_URL": url},  # (and this test's HYDRORL_HOME)
    )
    try:
        _wait_for_port(port, server)
        yield f"http://localhost:{port}/", wb, runs
    finally:
        server.terminate()
        server.wait(timeout=30)
        wb.close()


def _runs_in_page(root) -> list[str]:  # noqa: ANN001
    """The runs the table lists, in its order; ``root``: the page, or the part holding the
    workbench (a notebook's output area in JupyterLab)."""
    cells = root.locator(".tabulator-row .tabulator-cell[tabulator-field='run']")
    return [t.strip() for t in cells.all_inner_texts()]


def _row(root, run_id: int):  # noqa: ANN001, ANN202
    # (``has`` is looked for inside each row: a locator of the page's, not one under ``root``)
    cells = getattr(root, "page", root).locator(".tabulator-cell[tabulator-field='run']")
    cell = cells.filter(has_text=re.compile(rf"^\s*{run_id}\s*$"))
    return root.locator(".tabulator-row").filter(has=cell)


def _wait_for_runs(page, expected: list[str], root=None, name: str = "runs-table") -> None:  # noqa: ANN001
    root = root or page
    for _ in range(60):
        if _runs_in_page(root) == expected:
            return
        page.wait_for_timeout(250)
    if _runs_in_page(root) != expected:
        page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
    assert _runs_in_page(root) == expected


def _shown(locator, timeout: float) -> None:  # noqa: ANN001
    """Wait until ``locator`` is in the page, then scroll to it: in JupyterLab a notebook's
    output below the window is laid out but not drawn, hence not visible, till scrolled to."""
    locator.wait_for(state="attached", timeout=timeout)
    locator.scroll_into_view_if_needed(timeout=timeout)
    locator.wait_for(timeout=timeout)


def _select_and_compare(  # noqa: ANN001
    page, first: int, second: int, forecast: str, root=None, name: str = "runs-table"
) -> None:
    """Tick ``first`` (PPO) and ``second`` (SAC, on ``forecast``, another forecast): the mark
    and the settings side by side; Compare opens them in the Train tab, the second's mean
    named as on another forecast in the legend."""
    root = root or page
    for run in (first, second):
        _row(root, run).locator("input[type=checkbox]").check()
    _shown(root.get_by_text("not comparable point for point").first, 15_000)
    _shown(root.get_by_text("Settings and hyper-parameters side by side"), 15_000)
    _shown(root.get_by_text("hyperparameters.gamma"), 15_000)
    page.screenshot(path=str(ARTIFACTS / f"{name}-selected.png"), full_page=True)
    root.get_by_role("button", name="Compare").click()
    _shown(root.get_by_text(f"Run {first}: completed"), 30_000)  # the Train tab
    _shown(root.get_by_text(f"run {second} on forecast '{forecast}'").first, 30_000)
    entry = f"run {second} (mean) · other forecast: {forecast}"
    for _ in range(120):
        if entry in _legend_in_page(page):
            break
        page.wait_for_timeout(250)
    assert entry in _legend_in_page(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}-compare.png"), full_page=True)


def test_the_runs_tab_sorts_filters_compares_renames_and_deletes(browser, served_runs) -> None:  # noqa: ANN001, F811
    address, wb, runs = served_runs
    ppo, sac, other, evaluation = (runs[k] for k in ("ppo", "sac", "other", "evaluation"))
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    outside: list[str] = []  # every resource comes from the dashboard's server
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((address, "data:", "blob:", "ws://localhost"))
            else outside.append(r.url)
        ),
    )
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(address, timeout=60_000)
    page.get_by_text("Runs", exact=True).first.click(timeout=60_000)
    _wait_for_runs(page, [str(ppo), str(sac), str(other), str(evaluation)])

    # Sort by the algorithm (a click on its header, twice: descending), then filter the kind.
    title = page.locator(".tabulator-col[tabulator-field='algorithm'] .tabulator-col-title")
    title.click()
    _wait_for_runs(page, [str(ppo), str(other), str(evaluation), str(sac)])  # PPO, then SAC
    title.click()
    _wait_for_runs(page, [str(sac), str(ppo), str(other), str(evaluation)])
    kind = page.locator(".tabulator-col[tabulator-field='kind'] .tabulator-header-filter input")
    kind.press_sequentially("train")
    _wait_for_runs(page, [str(sac), str(ppo), str(other)])
    page.screenshot(path=str(ARTIFACTS / "runs-table-sorted-filtered.png"), full_page=True)

    # Two runs on different forecasts: marked before and after Compare.
    _select_and_compare(page, ppo, sac, "spring")

    # Rename one, after saying yes in the page.
    page.get_by_text("Runs", exact=True).first.click()  # (drawn anew: sorted as it was)
    _wait_for_runs(page, [str(sac), str(ppo), str(other), str(evaluation)])
    for run in (ppo, sac):  # still ticked from the comparison
        _row(page, run).locator("input[type=checkbox]").uncheck()
    _row(page, other).locator("input[type=checkbox]").check()
    name = page.get_by_placeholder("a name for the run")
    name.fill("lower validation")
    name.press("Enter")
    page.get_by_role("button", name="Rename", exact=True).first.click()
    page.get_by_text(f"Rename run {other} to 'lower validation'?").wait_for(timeout=15_000)
    page.get_by_role("button", name="Yes, go ahead").click()
    page.get_by_text(f"now run {other} 'lower validation'").wait_for(timeout=15_000)
    assert wb.run(other).name == "lower validation"
    _row(page, other).get_by_text("lower validation").wait_for(timeout=15_000)

    # Delete it: Cancel first (nothing changes), then Yes.
    page.get_by_role("button", name="Delete", exact=True).first.click()
    page.get_by_text(f"Delete run {other} 'lower validation'?").wait_for(timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "runs-table-confirm-delete.png"), full_page=True)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("Cancelled: nothing was changed.").wait_for(timeout=15_000)
    assert other in set(wb.runs()["id"])
    page.get_by_role("button", name="Delete", exact=True).first.click()
    page.get_by_role("button", name="Yes, go ahead").click()
    page.get_by_text(f"Deleted run {other}.").wait_for(timeout=15_000)
    _wait_for_runs(page, [str(sac), str(ppo), str(evaluation)])
    assert other not in set(wb.runs()["id"]) and not run_folder(wb.url, other).exists()
    success = page.locator(".alert-success").filter(has_text=f"Deleted run {other}.")
    assert success.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.screenshot(path=str(ARTIFACTS / "runs-table-deleted.png"), full_page=True)
    # A run started elsewhere (a notebook, another page) appears while the tab is shown.
    new = written_run(wb)
    _wait_for_runs(page, [str(sac), str(ppo), str(evaluation), str(new)])  # (ties: id order)
    assert dialogs == []  # no browser confirm(): the question is in the page
    assert errors == [] and failed == [] and outside == []
