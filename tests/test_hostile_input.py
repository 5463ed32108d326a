"""Hostile names, cells and file names reach every component's page as text, never as markup.

Each component is rendered to the Bokeh models a browser receives, and every model
is inspected: the HTML of Markdown, Alert, SVG and table panes is parsed (only
harmless tags, no event handler, no ``javascript:`` URL, the hostile text shown
literally); ``MultiChoice`` labels, which Bokeh renders as HTML, must be escaped;
any other model holding hostile text must be one that renders it as plain text.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.model import Model
from bokeh.models import MultiChoice

import hydrorl
from hydrorl.db import bulk, models
from hydrorl.ui import (
    EpisodeBrowser,
    ForecastExplorer,
    ForecastUpload,
    RunLauncher,
    TrainingMonitor,
    WorkbenchApp,
)
from hydrorl.ui.text import alert, html_text, text_pane
from tests.conftest import long_forecast

#: Markup a browser would run, Markdown that would make a link, emphasis and a formula.
EVIL = "<img src=x onerror=alert(document.domain)> [click](javascript:alert(1)) **b** $$x$$ &amp;"
STEPS = 16

# Tags the panes may write themselves (paragraphs, headings, the tables, the cascade's SVG).
HARMLESS_TAGS = {
    *["p", "br", "strong", "em", "h1", "h3", "div", "span", "pre", "code"],
    *["table", "thead", "tbody", "tr", "th", "td"],
    *["svg", "defs", "marker", "path", "line", "rect", "text"],
}
# Models whose strings Bokeh draws on a canvas or puts in text nodes or input values.
TEXT_MODELS = {
    "ColumnDataSource",
    "CustomSelect",
    "GlyphRenderer",
    "LegendItem",
    "Slider",
    "TextInput",
    "Title",
}


def hostile_system() -> dict:
    top, low = f"Top {EVIL}", f"Low {EVIL} 2"
    return {
        "name": f"System {EVIL}",
        "description": f"description {EVIL}",
        "reservoirs": [
            {"name": top, "min_volume_mm3": 0, "max_volume_mm3": 100, "inflow_factor": 0.7},
            {"name": low, "min_volume_mm3": 1, "max_volume_mm3": 10, "inflow_factor": 0.3},
        ],
        "power_stations": [
            {
                "name": f"Station {EVIL}",
                "upstream": top,
                "downstream": low,
                "max_discharge_m3s": 50,
                "energy_equivalent_kwh_m3": 1.0,
            },
            {
                "name": f"Sea station {EVIL}",
                "upstream": low,
                "downstream": None,
                "max_discharge_m3s": 60,
                "energy_equivalent_kwh_m3": 0.4,
            },
        ],
    }


def hostile_forecast() -> object:
    frame = long_forecast(scenarios=2, steps=STEPS)
    frame["scenario"] = frame["scenario"].map({"s0": f"s0 {EVIL}", "s1": f"s1 {EVIL}"})
    return frame


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[hydrorl.Workbench]:
    """A real SQLite workbench whose every name, reason and series name is hostile."""
    workbench = hydrorl.connect(f"sqlite:///{tmp_path / 'hostile.db'}")
    system = workbench.create_system(hostile_system())
    workbench.upload_forecast(
        system.name, hostile_forecast(), f"Forecast {EVIL}", description=f"about {EVIL}"
    )
    workbench.create_project(system.name, f"Project {EVIL}", description=f"about {EVIL}")
    workbench.database.run_write(lambda session: _ended_runs(session, system))
    yield workbench
    workbench.close()


def _ended_runs(session, system) -> None:  # noqa: ANN001
    """A failed training run (reasons, traceback, curves) and its completed evaluation."""
    project = session.query(models.Project).one()
    forecast = session.query(models.Forecast).one()
    started = dt.datetime(2027, 1, 1)
    train = models.ProjectRun(
        project=project,
        forecast=forecast,
        kind=models.RunKind.TRAIN,
        status=models.Status.FAILED,
        status_reason=f"agent 1 failed: {EVIL}",
        error=f"Traceback (most recent call last):\n  File {EVIL}\nValueError: {EVIL}",
        settings={"timesteps": 1000},
        started_at=started,
    )
    train.agents = [
        models.Agent(
            index=i,
            seed=i,
            status=status,
            status_reason=f"{status}: {EVIL}",
            error=f"Traceback:\n  {EVIL}",
            timesteps_done=500,
            started_at=started,
        )
        for i, status in enumerate([models.Status.STOPPED, models.Status.FAILED])
    ]
    session.add(train)
    session.flush()
    for agent in train.agents:
        data = models.TrainStepData(agent_id=agent.id, name="episode_reward")
        session.add(data)
        session.flush()
        n = 20
        bulk.insert_columns(
            session,
            models.TrainStepValue.__table__,
            ("data_id", "timestep", "wall_time", "value"),
            (np.full(n, data.id), np.arange(n) * 50, np.full(n, 0.0), np.linspace(0, 1, n)),
        )
    evaluation = models.ProjectRun(
        project=project,
        forecast=forecast,
        source_run_id=train.id,
        kind=models.RunKind.EVALUATE,
        status=models.Status.COMPLETED,
        settings={},
    )
    session.add(evaluation)
    session.flush()
    names = ["price_eur_mwh", "revenue_eur"]
    for r in system.reservoirs:
        names += [f"volume_mm3:{r.name}", f"bound:volume_mm3:{r.name}", f"spill_m3s:{r.name}"]
    names += [f"discharge_m3s:{s.name}" for s in system.power_stations]
    for link in forecast.series_links:
        episode = models.EvaluationEpisode(
            run_id=evaluation.id,
            agent_id=train.agents[0].id,
            series_link_id=link.id,
            total_reward=1e6,
            revenue_eur=1e6,
            spill_mm3=0.0,
            end_volume_mm3=5.0,
            bound_revenue_eur=2e6,
            benchmark_revenue_eur=1.5e6,
        )
        episode.report_data = [models.ReportData(name=name) for name in names]
        session.add(episode)
        session.flush()
        for data in episode.report_data:
            bulk.insert_columns(
                session,
                models.ReportValue.__table__,
                ("data_id", "step_index", "value"),
                (np.full(STEPS, data.id), np.arange(STEPS), np.linspace(1, 2, STEPS)),
            )


class _Markup(HTMLParser):
    """What a browser would build from a pane's HTML: its tags, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "br":
            self.text.append("\n")
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, np.ndarray):
        yield from _strings(value.tolist())


SVG_IMAGE = "data:image/svg+xml;base64,"


def _checked_html(source: str) -> str:
    """The text a browser shows for ``source``, checked to hold no live markup."""
    markup = _Markup()
    markup.feed(source)
    assert markup.tags <= HARMLESS_TAGS | {"a", "img"}, markup.tags - HARMLESS_TAGS
    shown = ["".join(markup.text)]
    for name, value in markup.attributes:
        assert not name.startswith("on") and "javascript:" not in value, (name, value)
        if name == "href":  # only the anchors of our own headings
            assert value.startswith("#"), value
        if name == "src":  # the cascade: an SVG image (which runs no script), checked too
            assert value.startswith(SVG_IMAGE), value[:80]
            shown.append(_checked_html(base64.b64decode(value[len(SVG_IMAGE) :]).decode()))
    return "\n".join(shown)


def shown_text(root: Model) -> str:
    """Every text of a rendered page, checked to be text only; joined for assertions."""
    shown: list[str] = []
    for model in root.references():
        kind = type(model).__name__
        if type(model).__module__ == "panel.models.markup" and hasattr(model, "text"):
            # Panel sends a pane's HTML escaped once; the page puts it in innerHTML, and
            # unless told not to, MathJax turns what it finds between $$ or \( \) into formulas.
            source = html.unescape(model.text or "")
            if not model.disable_math:
                assert "$" not in source and "\\" not in source, source
            shown.append(_checked_html(source))
        elif isinstance(model, MultiChoice):  # Choices.js puts labels in innerHTML
            for label in _strings(model.options):
                assert "<" not in label, label
                shown.append(_checked_html(label))
        else:
            for name, value in model.properties_with_values(include_defaults=False).items():
                for text in _strings(value):
                    if "onerror" in text or "javascript" in text:
                        assert kind in TEXT_MODELS, f"{kind}.{name} holds {text!r}"
                        shown.append(text)
    return "\n".join(shown)


def render(component: object) -> str:
    return shown_text(pn.panel(component).get_root(Document()))


def test_the_escaping_helper_keeps_every_character() -> None:
    text = f"{EVIL} \\(x\\) `code`\n    indented # no heading\n\n- no list\n1. none"
    for pane in (text_pane(html_text(text)), alert(text)):
        assert render(pane).strip().replace("\xa0", " ") == text


def test_the_explorer_shows_hostile_names_as_text(wb: hydrorl.Workbench) -> None:
    explorer = ForecastExplorer(wb)
    assert explorer.scenarios == [f"s0 {EVIL}", f"s1 {EVIL}"]  # the values stay the names
    shown = render(explorer)
    for name in (f"Top {EVIL}", f"Station {EVIL}", f"s1 {EVIL}", f"Forecast {EVIL}"):
        assert name in shown


def test_upload_errors_quote_cells_and_file_names_as_text(wb: hydrorl.Workbench) -> None:
    upload = ForecastUpload(wb)
    bad = long_forecast(scenarios=2, steps=8).astype({"price": object})
    bad.loc[3, "price"] = EVIL
    upload.preview(bad.to_csv(index=False).encode(), f"{EVIL}.csv")
    assert EVIL in upload.error
    status = upload._status()
    assert isinstance(status, pn.pane.Alert) and status.alert_type == "danger"  # styled red
    shown = render(upload)
    assert f"{EVIL}.csv: column 'price', line 5" in shown and f"price = '{EVIL}'" in shown

    frame = hostile_forecast()
    frame["scenario"] = frame["scenario"].str.replace("s", "t", n=1)
    upload.preview(frame.to_csv(index=False).encode(), f"new {EVIL}.csv")
    assert upload.error == "" and upload.commit()
    assert upload._status().alert_type == "success"
    assert f"Stored forecast 'new {EVIL}'" in render(upload)


def test_the_launcher_shows_names_reasons_and_errors_as_text(wb: hydrorl.Workbench) -> None:
    launcher = RunLauncher(wb)
    assert launcher.project == f"Project {EVIL}" and launcher.run_id == 1
    launcher.volume_sliders[f"Top {EVIL}"].value = 1000.0  # beyond the reservoir
    assert launcher.start() is None and launcher.failed
    shown = render(launcher)
    launcher.stop_refresh()
    assert f"Not started: start volume of reservoir 'Top {EVIL}'" in shown
    assert f"Run 1: failed agent 1 failed: {EVIL}" in shown
    assert f"failed: {EVIL}" in shown  # the agents' reasons, in their table
    assert f"Forecast {EVIL}" in shown and f"Low {EVIL} 2 start volume" in shown
    assert isinstance(launcher._message()[0], pn.pane.Alert)


def test_the_monitor_shows_reasons_and_projects_as_text(wb: hydrorl.Workbench) -> None:
    wb.database.run_write(lambda session: _ended_runs(session, wb.system(f"System {EVIL}")))
    monitor = TrainingMonitor(wb, run_id=1)
    assert len(monitor.buffers) == 2  # both curves, read when it opened
    shown = render(monitor)
    monitor.stop()
    assert f"stopped: {EVIL}" in shown
    assert f"run 3 · Project {EVIL} · failed" in shown  # a run to compare with, escaped


def test_the_episode_browser_shows_scenarios_as_text(wb: hydrorl.Workbench) -> None:
    browser = EpisodeBrowser(wb)
    assert browser.run_id == 2 and browser.scenario == f"s0 {EVIL}"
    shown = render(browser)
    assert f"s1 {EVIL}" in shown and f"Bound (perfect foresight): Top {EVIL} volume (Mm³)" in shown


def test_the_whole_workbench_shows_hostile_text_as_text(wb: hydrorl.Workbench) -> None:
    app = WorkbenchApp(wb)
    shown = []
    for tab in range(len(app.tabs)):  # the tabs are built when shown
        app.tabs.active = tab
        shown.append(render(app))
    app.launcher.stop_refresh()
    app.monitor.stop()
    assert f"System {EVIL}" in shown[0] and f"Run 1: failed agent 1 failed: {EVIL}" in shown[2]
