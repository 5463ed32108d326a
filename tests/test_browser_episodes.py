"""The episode views and the upload form in a real browser, measured where a user would look:
no key or legend over data, the table or the toolbar, at a wide and a small screen; the
episode's own time range; hover; the CSV downloads; the upload form's name, step and example."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from hydrorl.ui.episodes import POLICIES
from tests.conftest import long_forecast
from tests.test_browser import ARTIFACTS, browser, served  # noqa: F401  (fixtures)
from tests.test_episode_views import STEPS, WEEKS, eight_weeks, store_evaluation

#: What the page's Bokeh views show, in page coordinates: each plot's canvas and data frame,
#: every legend drawn in a plot, every toolbar, and each plot's time range (ms).
_LAYOUT_JS = """() => {
    const plots = [], legends = [], toolbars = [], seen = new Set();
    const rect = (r) => ({x: r.x, y: r.y, w: r.width, h: r.height});
    function walk(view, plot) {
        if (!view || seen.has(view)) return;
        seen.add(view);
        const type = view.model?.type;
        if (view.frame && view.canvas_view) {
            const c = view.canvas_view.el.getBoundingClientRect(), f = view.frame.bbox;
            plot = {x: c.x, y: c.y};
            plots.push({
                title: view.model.title?.text ?? "",
                canvas: rect(c),
                frame: {x: c.x + f.x, y: c.y + f.y, w: f.width, h: f.height},
                start: view.model.x_range.start, end: view.model.x_range.end,
            });
        }
        if (type === "Legend" && plot && view.model.items.length && view.bbox)
            legends.push({x: plot.x + view.bbox.x, y: plot.y + view.bbox.y,
                          w: view.bbox.width, h: view.bbox.height});
        if (type === "Toolbar" && view.el.getBoundingClientRect().width > 0)
            toolbars.push(rect(view.el.getBoundingClientRect()));
        for (const child of view.child_views ?? []) walk(child, plot);
        for (const child of view.renderer_views?.values?.() ?? []) walk(child, plot);
    }
    for (const view of Object.values(Bokeh.index)) walk(view, null);
    let hovers = 0;
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models) if (m.type === "HoverTool") hovers += 1;
    return {plots, legends, toolbars, hovers};
}"""


def _overlap(a: dict, b: dict) -> bool:
    """Whether two boxes (x, y, w, h) share more than a pixel."""
    return (
        min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]) > 1
        and min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]) > 1
    )


def _box(locator) -> dict:  # noqa: ANN001
    box = locator.bounding_box()
    assert box is not None
    return {"x": box["x"], "y": box["y"], "w": box["width"], "h": box["height"]}


def _show_episodes(page, root=None) -> None:  # noqa: ANN001
    """Open the Episodes tab; wait for its key, Bokeh's views and the page's fonts.

    ``root``: the part of the page that holds the workbench (default: all of it).
    """
    root = root or page
    root.get_by_text("Episodes", exact=True).click()
    root.locator(".hydrorl-episode-key").wait_for(timeout=60_000)
    page.wait_for_function(
        "() => Object.values(Bokeh.index).length > 0 && document.fonts.status === 'loaded'",
        timeout=30_000,
    )


def _open_episodes(page, address: str) -> None:  # noqa: ANN001
    page.goto(address, timeout=60_000)
    _show_episodes(page)
    page.wait_for_timeout(1500)  # the grid's last layout pass


def _keys_clear_of_data(page, width: int, root=None) -> list[dict]:  # noqa: ANN001
    """Check the episode view as laid out now (:func:`store_evaluation` of :func:`eight_weeks`
    shown): nine panels, each on the page and wide enough to read, with a hover tool; no key,
    legend, table or toolbar over a panel's data frame, nor over each other; every panel on
    the episode's eight weeks.  Returns the titled panels as measured.

    The panels must fit across ``root`` (default: the page, ``width`` pixels wide).
    """
    shown = page.evaluate(_LAYOUT_JS)
    plots = [p for p in shown["plots"] if p["title"]]
    titles = [p["title"] for p in plots]
    volumes = [
        "Hoegfjell volume (Mm³), 40–900",
        "Midtvatn volume (Mm³), 5–60",
        "Nedrevatn volume (Mm³), 1–12",
    ]
    assert [t for t in titles if " volume " in t] == volumes  # upstream first
    columns = len({round(p["canvas"]["x"]) for p in plots})
    if columns == 3:  # the reservoirs in a row, each station's panel under its reservoir's
        assert titles[:3] == volumes and titles[3].startswith("Hoegfjell PS"), titles
    else:  # a narrow page: each reservoir with its station's panel beside or under it
        assert columns >= 2 and titles[:2] == [volumes[0], titles[1]], titles
        assert titles[1].startswith("Hoegfjell PS"), titles
    assert len(plots) == 9 and shown["hovers"] >= 9
    where = root or page
    table = _box(where.locator("table.dataframe").first)
    key = _box(where.locator(".hydrorl-episode-key"))
    assert "mean" in where.locator("table.dataframe").first.inner_text()
    assert shown["legends"] == []  # one key above the panels instead of legends in them
    # (a part of the page is measured to the pixel: its box and the canvas's may round apart)
    area, slack = (_box(root), 1) if root is not None else ({"x": 0, "w": width}, 0)
    for plot in plots:
        # Every panel is on the page (no sideways scrolling) and wide enough to read.
        canvas = plot["canvas"]
        assert canvas["x"] >= area["x"] - slack, (plot["title"], canvas, area)
        assert canvas["x"] + canvas["w"] <= area["x"] + area["w"] + slack, (plot["title"], area)
        assert plot["frame"]["w"] >= 200, plot
        for other in (key, table, *shown["toolbars"]):
            assert not _overlap(plot["frame"], other), (plot["title"], other)
        for other in plots:
            assert other is plot or not _overlap(plot["frame"], other["frame"])
    for toolbar in shown["toolbars"]:
        assert not _overlap(toolbar, key) and not _overlap(toolbar, table)
    assert not _overlap(key, table)
    # Nothing makes the page (or the notebook's output) scroll sideways: a table wider than
    # the page scrolls in its own box.
    scrolled = (root or page.locator("html")).evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scrolled[0] <= scrolled[1], scrolled
    # The episode's eight weeks, on every panel, whatever else the page shows.
    start = pd.Timestamp("2027-01-01")
    for plot in plots:
        assert pd.Timestamp(plot["start"], unit="ms") == start
        assert pd.Timestamp(plot["end"], unit="ms") == start + pd.Timedelta(weeks=WEEKS)
    return plots


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1024, 768)])
def test_the_episode_view_keeps_keys_off_data_tables_and_toolbars(
    browser,  # noqa: ANN001, F811
    served,  # noqa: F811
    width: int,
    height: int,
) -> None:
    address, wb = served
    run_id = store_evaluation(wb, eight_weeks(wb))
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _open_episodes(page, address)
    page.screenshot(path=str(ARTIFACTS / f"episodes-{width}x{height}.png"))

    plots = _keys_clear_of_data(page, width)

    # Hovering a line names its series, its time and its value.
    frame = plots[0]["frame"]
    tooltip = page.locator(".bk-tooltip-content").filter(has_text="series:")
    for i in range(2, 60):  # down the panel, a line at a time (a line is hit within pixels)
        page.mouse.move(frame["x"] + frame["w"] / 3, frame["y"] + frame["h"] * i / 61)
        page.wait_for_timeout(150)
        if tooltip.count():
            break
    text = " ".join(tooltip.first.inner_text().split())
    assert "Hoegfjell volume (Mm³)" in text and "time: 2027-01-" in text, text
    assert any(f"series: {p.label}: " in text for p in POLICIES.values()), text
    assert re.search(r"value: [\d,]+\.\d Mm³", text), text
    page.screenshot(path=str(ARTIFACTS / f"episodes-{width}x{height}-hover.png"))

    # The wheel over a panel scrolls the page on to the next panels; it zooms nothing.
    page.mouse.wheel(0, 400)
    page.wait_for_timeout(800)
    after = [p for p in page.evaluate(_LAYOUT_JS)["plots"] if p["title"]]
    assert [(p["start"], p["end"]) for p in after] == [(p["start"], p["end"]) for p in plots]
    assert after[0]["canvas"]["y"] < plots[0]["canvas"]["y"] - 100  # scrolled
    page.screenshot(path=str(ARTIFACTS / f"episodes-{width}x{height}-plots.png"))
    assert errors == []
    assert wb.run(run_id).kind == "evaluate"


def test_the_episode_csvs_download_named_after_evaluation_and_scenario(
    browser,  # noqa: ANN001, F811
    served,  # noqa: F811
    tmp_path: Path,
) -> None:
    address, wb = served
    run_id = store_evaluation(wb, eight_weeks(wb))
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    _open_episodes(page, address)
    _downloads_named_after(page, run_id)


def _downloads_named_after(page, run_id: int, root=None) -> None:  # noqa: ANN001
    """Download the episode table and S02's series of evaluation ``run_id`` (of
    :func:`eight_weeks`, shown in the Episodes tab): named after both, and read back whole."""
    root = root or page
    with page.expect_download(timeout=60_000) as got:
        root.get_by_role("button", name="Table as CSV").click()
    table = got.value
    assert table.suggested_filename == f"evaluation-{run_id}-episodes.csv"
    frame = pd.read_csv(table.path())
    assert frame["scenario"].tolist() == ["S01", "S02", "mean"]
    root.locator("select:has(option[value='S02'])").select_option("S02")
    root.get_by_text("S02, agent").wait_for(timeout=30_000)  # the episode's summary line
    with page.expect_download(timeout=60_000) as got:
        root.get_by_role("button", name="Episode series as CSV").click()
    series = got.value
    assert series.suggested_filename == f"evaluation-{run_id}-S02-series.csv"
    steps = pd.read_csv(series.path(), index_col="time", parse_dates=True)
    assert len(steps) == STEPS and "bound:volume_mm3:Hoegfjell" in steps.columns


def test_the_upload_form_follows_the_file_and_offers_an_example(
    browser,  # noqa: ANN001, F811
    served,  # noqa: F811
    tmp_path: Path,
) -> None:
    address, wb = served
    page = browser.new_page(viewport={"width": 1024, "height": 768}, accept_downloads=True)
    page.goto(address, timeout=60_000)
    page.get_by_text("Upload a forecast", exact=True).click()
    with page.expect_download() as got:
        page.get_by_role("button", name="Example CSV").click()
    example = got.value
    assert example.suggested_filename == "example-forecast.csv"
    assert wb.read_forecast(Path(example.path()).read_bytes(), name="example.csv").n_scenarios == 2

    name = page.get_by_placeholder("the file name")
    chooser = page.locator("input[type=file]")
    first, second = tmp_path / "spring.csv", tmp_path / "summer.csv"
    long_forecast(scenarios=2, steps=24).to_csv(first, index=False)
    long_forecast(scenarios=2, steps=24, seed=2).to_csv(second, index=False)
    chooser.set_input_files(str(first))
    page.get_by_text("3 h", exact=True).first.wait_for(timeout=30_000)  # the step, as read
    assert name.input_value() == "spring"
    refused = tmp_path / "broken.csv"
    refused.write_text("time,scenario,price\n2027-01-01,a,1\n")
    chooser.set_input_files(str(refused))
    page.locator(".alert-danger").wait_for(timeout=30_000)
    assert name.input_value() == "broken"
    chooser.set_input_files(str(second))
    store = page.get_by_role("button", name="Store forecast")
    page.wait_for_function("b => !b.disabled", arg=store.element_handle(), timeout=30_000)
    page.wait_for_function("e => e.value === 'summer'", arg=name.element_handle(), timeout=30_000)
    preview = page.locator("table.dataframe", has_text="mean price").locator("visible=true")
    preview.first.wait_for(timeout=30_000)
    text = preview.first.inner_text()
    assert "3 h" in text and "days" not in text, text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "episodes-upload-1024x768.png"), full_page=True)
