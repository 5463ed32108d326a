"""The runs table, the curves and the episode views in Voila and in JupyterLab, in chromium.

Served Panel has its own tests of each (``test_browser_runs``, ``test_browser_curves``,
``test_browser_episodes``); here the same checks run in the two notebook faces, where Panel
talks through ipywidgets, on a database filled beforehand without training (runs written as
agents write them, on two forecasts; an evaluation with its episodes and series), one
server start per face: sort and filter the runs, tick two on different forecasts (marked,
their settings side by side), Compare (the other forecast named in the curve plot's legend,
the y axis labelled with the series and its unit, a hover tool), the Episodes tab with no
key or legend over a plot, the table or a toolbar at 1400x900 and at 1024x768, and both CSV
downloads; no console error and no request off this machine.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import hydrorl
from tests.conftest import long_forecast
from tests.test_browser import (  # noqa: F401  (browser: a fixture)
    ARTIFACTS,
    ROOT,
    _wait_for_port,
    browser,
)
from tests.test_browser_episodes import (
    _LAYOUT_JS,
    _downloads_named_after,
    _keys_clear_of_data,
    _overlap,
    _show_episodes,
)
from tests.test_browser_offline import Recorder, _run_cells, start_lab, start_voila
from tests.test_browser_runs import SAC, _select_and_compare, _wait_for_runs
from tests.test_episode_views import eight_weeks, store_evaluation
from tests.test_run_management import written_run

#: The curve plots shown: the frame and the legends in page coordinates, the axes' labels
#: and the hover tools, of each Bokeh plot drawn with a legend.
_CURVE_JS = """() => {
    const plots = [], seen = new Set();
    const box = (r) => ({x: r.x, y: r.y, w: r.width, h: r.height});
    function walk(view) {
        if (!view || seen.has(view)) return;
        seen.add(view);
        if (view.frame && view.canvas_view) {
            const c = view.canvas_view.el.getBoundingClientRect(), f = view.frame.bbox;
            const m = view.model, legends = [];
            for (const r of view.renderer_views?.values?.() ?? [])
                if (r.model.type === "Legend" && r.model.items.length && r.bbox)
                    legends.push({x: c.x + r.bbox.x, y: c.y + r.bbox.y,
                                  w: r.bbox.width, h: r.bbox.height});
            const labels = (side) => side.filter(a => a.type.endsWith("Axis"))
                                         .map(a => a.axis_label);
            if (legends.length)
                plots.push({
                    frame: {x: c.x + f.x, y: c.y + f.y, w: f.width, h: f.height},
                    legends,
                    y: labels([...m.left, ...m.right]),
                    x: labels([...m.below, ...m.above]),
                    hovers: m.toolbar.tools.filter(t => t.type === "HoverTool").length,
                });
        }
        for (const child of view.child_views ?? []) walk(child);
    }
    for (const view of Object.values(Bokeh.index)) walk(view);
    return plots;
}"""


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[hydrorl.Workbench, dict[str, int]]]:
    """The demo, a PPO run on its forecast, a SAC run on 'spring', an evaluation of eight
    weeks with its episodes: written as the agents and the evaluator write them."""
    wb = hydrorl.connect(f"sqlite:///{tmp_path / 'faces.db'}")
    wb.setup_demo(scenarios=2, years=1)
    wb.upload_forecast("Demo river", long_forecast(scenarios=2, steps=24), "spring")
    runs = {"ppo": written_run(wb), "sac": written_run(wb, forecast="spring", settings=SAC)}
    runs["evaluation"] = store_evaluation(wb, eight_weeks(wb))  # (and the run it evaluates)
    runs["evaluated"] = int(wb.run(runs["evaluation"]).source_run_id)
    yield wb, runs
    wb.close()


def _laid_out(page, root=None, unlike: object = None, seconds: float = 60) -> object:  # noqa: ANN001
    """The episode view's layout once the page has drawn it for its width: nine panels, all
    across the area the workbench has (the page, or ``root``), the same in three looks in a
    row 300 ms apart, and other than ``unlike`` (the layout before a resize).

    (A narrower page is told to Python, which draws the panels in fewer columns: a round
    trip, through the kernel in Voila and JupyterLab.)
    """
    where = root or page
    deadline = time.monotonic() + seconds
    last, alike = None, 0
    while True:
        now = (
            page.evaluate(_LAYOUT_JS),
            where.locator(".hydrorl-episode-key").bounding_box(),
            where.locator("table.dataframe").first.bounding_box(),
        )
        plots = [p for p in now[0]["plots"] if p["title"]]
        area = where.bounding_box() if root is not None else page.viewport_size
        assert area is not None
        left = area.get("x", 0)
        across = all(
            left - 1
            <= p["canvas"]["x"]
            <= p["canvas"]["x"] + p["canvas"]["w"]
            <= left + area["width"] + 1
            for p in plots
        )
        alike = alike + 1 if now == last and len(plots) == 9 and across and now != unlike else 0
        if alike >= 2:
            return now
        assert time.monotonic() < deadline, f"the episode view did not settle: {now}"
        last = now
        page.wait_for_timeout(300)


def _the_curve_plot(page, root=None) -> None:  # noqa: ANN001
    """The compared runs' plot (the Train tab): its y axis says the series and its unit, its
    legend is beside the data, the tab fits across the page, and hovering the plot names an
    agent with its raw and smoothed values."""
    where = root or page
    plots = [p for p in page.evaluate(_CURVE_JS) if p["y"] == ["validation value (% of bound)"]]
    assert len(plots) == 1, page.evaluate(_CURVE_JS)
    (plot,) = plots
    assert plot["x"] == ["timesteps"] and plot["hovers"] >= 1, plot
    for legend in plot["legends"]:
        assert not _overlap(legend, plot["frame"]), plot
    # Nothing in the tab (the launcher, the curve's controls) makes the area scroll sideways.
    scrolled = (root or page.locator("html")).evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scrolled[0] <= scrolled[1], scrolled
    where.locator(".bk-Canvas, .bk-canvas").first.scroll_into_view_if_needed()
    (plot,) = [p for p in page.evaluate(_CURVE_JS) if p["y"] == plot["y"]]  # (scrolled)
    frame = plot["frame"]
    tooltips = page.locator(".bk-tooltip-content")  # (in JupyterLab: on the body, outside root)
    found: list[str] = []
    for fx in np.linspace(0.1, 0.9, 80):  # along the x axis (a tooltip per agent at the step)
        page.mouse.move(frame["x"] + fx * frame["w"], frame["y"] + 0.5 * frame["h"])
        page.wait_for_timeout(50)
        found = [t.inner_text() for t in tooltips.all() if t.is_visible()]
        if any("smoothed" in text for text in found):
            break
    assert any(all(w in t for w in ("agent", "raw", "smoothed")) for t in found), (found, frame)


def _the_details(page, root, face: str, runs: dict[str, int]) -> None:  # noqa: ANN001
    """Runs tab, Compare, the curve plot, the Episodes tab at two sizes, the CSVs.

    ``root``: the part of the page that holds the workbench (None: all of it).
    """
    where = root or page
    ppo, sac, evaluated, evaluation = (runs[k] for k in ("ppo", "sac", "evaluated", "evaluation"))
    where.get_by_text("Runs", exact=True).first.click()
    _wait_for_runs(page, [str(ppo), str(sac), str(evaluated), str(evaluation)], root, face)

    # Sort by the forecast (a click on its header; again: descending), filter the kind.
    title = where.locator(".tabulator-col[tabulator-field='forecast'] .tabulator-col-title")
    title.click()  # Demo forecast (in id order), Eight weeks, spring
    _wait_for_runs(page, [str(ppo), str(evaluated), str(evaluation), str(sac)], root, face)
    title.click()
    _wait_for_runs(page, [str(sac), str(evaluation), str(ppo), str(evaluated)], root, face)
    kind = where.locator(".tabulator-col[tabulator-field='kind'] .tabulator-header-filter input")
    kind.press_sequentially("train")
    _wait_for_runs(page, [str(sac), str(ppo), str(evaluated)], root, face)
    page.screenshot(path=str(ARTIFACTS / f"{face}-runs-sorted-filtered.png"), full_page=True)

    # Two runs on different forecasts: marked, their settings side by side; compared.
    _select_and_compare(page, ppo, sac, "spring", root, name=f"{face}-runs")
    _the_curve_plot(page, root)
    page.screenshot(path=str(ARTIFACTS / f"{face}-curves-hover.png"))

    # The episodes: no key over data at 1400x900, nor after the window shrinks to 1024x768.
    _show_episodes(page, root)
    wide = _laid_out(page, root)
    _keys_clear_of_data(page, 1400, root)
    where.locator(".hydrorl-episode-key").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{face}-episodes-1400x900.png"), full_page=True)
    page.set_viewport_size({"width": 1024, "height": 768})
    _laid_out(page, root, unlike=wide)
    _keys_clear_of_data(page, 1024, root)
    where.locator(".hydrorl-episode-key").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{face}-episodes-1024x768.png"), full_page=True)
    _downloads_named_after(page, evaluation, root)


def test_the_runs_curves_and_episodes_in_voila(browser, filled, tmp_path: Path) -> None:  # noqa: ANN001, F811
    wb, runs = filled
    ARTIFACTS.mkdir(exist_ok=True)
    voila, port = start_voila(wb.url, tmp_path)
    page = None
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        seen = Recorder(page)
        _wait_for_port(port, voila)
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.get_by_text("Hoegfjell PS").first.wait_for(timeout=120_000)
        _the_details(page, None, "voila", runs)
        seen.check()
    except BaseException:
        if page is not None:  # what the page showed when it failed, for whoever looks next
            page.screenshot(path=str(ARTIFACTS / "voila-details-failure.png"), full_page=True)
        raise
    finally:
        voila.terminate()
        voila.wait(timeout=30)


def test_the_runs_curves_and_episodes_in_jupyterlab(browser, filled, tmp_path: Path) -> None:  # noqa: ANN001, F811
    wb, runs = filled
    ARTIFACTS.mkdir(exist_ok=True)
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    shutil.copy(ROOT / "dashboards" / "workbench.ipynb", lab_root / "workbench.ipynb")
    lab, port = start_lab(lab_root, wb.url, tmp_path)
    page = None
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        seen = Recorder(page)
        _wait_for_port(port, lab)
        page.goto(f"http://127.0.0.1:{port}/lab/tree/workbench.ipynb", timeout=120_000)
        page.wait_for_function(
            "() => window.jupyterapp?.commands.isEnabled('notebook:run-all-cells')",
            timeout=120_000,
        )
        root = page.locator(".jp-OutputArea-output").last
        _run_cells(page, shows=root.get_by_text("Hoegfjell PS").first, seconds=120)
        _the_details(page, root, "jupyterlab", runs)
        seen.check()
    except BaseException:
        if page is not None:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-details-failure.png"))
        raise
    finally:
        lab.terminate()
        lab.wait(timeout=30)
