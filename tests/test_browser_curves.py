"""The monitor's curves in a real browser: the served dashboard, a run written as agents write it.

What a user measured in the page (issue 14): the plot's height while a run is live, its
axis labels, one colour per agent, the tooltip, points streaming in as they are written.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import hydrorl
from tests.test_browser import (  # noqa: F401  (browser: a fixture)
    ARTIFACTS,
    _free_port,
    _legend_in_page,
    _points_in_page,
    _start,
    _wait_for_port,
    browser,
)
from tests.test_monitor_curves import SDP, SHARE, _points, _run

#: Per legend entry: its renderers' glyph colour, alpha and width; the axes' labels.
_FIGURE = """() => {
    const out = {items: {}, axes: []};
    const v = p => (p !== null && typeof p === "object" && "value" in p) ? p.value : p;
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models) {
            if (m.type === "LegendItem")
                out.items[m.label.value] = m.renderers.map(r => [
                    v(r.glyph.line_color), v(r.glyph.line_alpha), v(r.glyph.line_width),
                ]);
            if (m.type === "LinearAxis" || m.type === "DatetimeAxis") out.axes.push(m.axis_label);
        }
    return out;
}"""


@pytest.fixture
def served_run(tmp_path: Path) -> Iterator[tuple[str, hydrorl.Workbench, int]]:
    url = f"sqlite:///{tmp_path / 'curves.db'}"
    wb = hydrorl.connect(url)
    wb.setup_demo(scenarios=2, years=1)
    run_id = _run(wb, agents=3, timesteps=100_000)
    rng = np.random.default_rng(0)
    steps = np.arange(0, 50_000, 10)
    noise = rng.normal(0, 0.3, (3, steps.size))
    rewards = {a: (steps, np.log1p(steps / 1e4) + a + noise[a]) for a in range(3)}
    _points(wb, run_id, "episode_reward", rewards, start=time.time() - 600)
    shares = {a: ([0, 20_000, 40_000], [40.0 + a, 70.0 + a, 85.0 - a]) for a in range(3)}
    _points(wb, run_id, SHARE, shares, start=time.time() - 600)
    _points(wb, run_id, SDP, {a: ([0], [80.0]) for a in range(3)}, start=time.time() - 600)
    port = _free_port()
    server = _start(
        [sys.executable, "-m", "hydrorl", "dashboard", "--port", str(port)],
        tmp_path / "dashboard.log",
        env={**os.environ, "HYDRORL_DATABASE_URL": url},
    )
    try:
        _wait_for_port(port, server)
        yield f"http://localhost:{port}/", wb, run_id
    finally:
        server.terminate()
        server.wait(timeout=30)
        wb.close()


def _figure(page) -> dict:  # noqa: ANN001
    return page.evaluate(_FIGURE)


def test_the_curves_in_the_page(browser, served_run) -> None:  # noqa: ANN001, F811
    address, wb, run_id = served_run
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(address, timeout=60_000)
    page.get_by_text("Train", exact=True).click()
    curve = page.locator("select:has(option[value='validation/share_of_bound'])")
    curve.wait_for(state="attached", timeout=60_000)
    page.wait_for_function(
        "() => [...Bokeh.documents].some("
        "d => [...d.all_models].some(m => m.type === 'LegendItem'))",
        timeout=60_000,
    )
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "curves-validation.png"), full_page=True)
    shown = _figure(page)
    assert "validation value (% of bound)" in shown["axes"]
    legend = _legend_in_page(page)
    assert "bound (perfect foresight)" in legend and "SDP benchmark" in legend

    curve.select_option("episode_reward")
    page.wait_for_function(
        "() => [...Bokeh.documents].some(d => [...d.all_models].some("
        "m => m.type === 'LinearAxis' && m.axis_label === 'episode reward (EUR, scaled)'))",
        timeout=30_000,
    )
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "curves-reward.png"), full_page=True)
    shown = _figure(page)
    agents = {k: v for k, v in shown["items"].items() if k.startswith("agent ")}
    assert len(agents) == 3, shown["items"]
    colours = set()
    for label, renderers in agents.items():
        (raw_colour, raw_alpha, raw_width), (colour, alpha, width) = renderers
        assert raw_colour == colour and raw_alpha < 0.5 <= alpha and raw_width < width, label
        colours.add(colour)
    assert len(colours) == 3
    # The plot's own box in the page: the whole width, a fixed height (not squeezed).
    box = page.locator(".bk-Figure, .bk-figure").first.bounding_box()
    assert box is not None and box["height"] >= 400 and box["width"] > 1000, box

    # The tooltip names the agent and gives the raw and smoothed values at the step under
    # the mouse.
    area = page.locator(".bk-Canvas, .bk-canvas").first.bounding_box()
    assert area is not None
    tooltip = page.locator(".bk-tooltip-content")
    found = ""
    for fy in np.linspace(0.05, 0.95, 200):
        page.mouse.move(area["x"] + 0.5 * area["width"], area["y"] + fy * area["height"])
        page.wait_for_timeout(20)
        visible = [t for t in tooltip.all() if t.is_visible()]
        if visible and "smoothed" in (found := visible[0].inner_text()):
            break
    page.screenshot(path=str(ARTIFACTS / "curves-hover.png"))
    assert "agent" in found and "raw" in found and "smoothed" in found, (found, area)

    # New points stream in while the page is open.
    before = _points_in_page(page)
    more = np.arange(50_000, 50_500, 10)
    new = {a: (more, np.full(more.size, 2.0 + a)) for a in range(3)}
    _points(wb, run_id, "episode_reward", new)
    deadline = time.monotonic() + 30
    while _points_in_page(page) <= before:
        assert time.monotonic() < deadline, "no new point reached the page"
        page.wait_for_timeout(500)
    assert errors == []
