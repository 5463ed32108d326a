"""The episode views a scheduler reads: small multiples, one colour per policy, readable units,
hover, a mean row, the episode's own time range and CSV downloads; the upload form's name,
step and example file."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import pytest
import sqlalchemy as sa
from bokeh.document import Document
from bokeh.models import HoverTool, Legend, Range1d, Span

import hydrorl
from hydrorl.db import bulk, models
from hydrorl.demo import demo_forecast, demo_system
from hydrorl.ui import EpisodeBrowser, ForecastUpload, WorkbenchApp
from hydrorl.ui.episodes import (
    POLICIES,
    SeriesName,
    columns_for,
    episode_plots,
    episode_table,
    legend_html,
)
from hydrorl.ui.upload import example_csv, step_text
from tests.conftest import long_forecast

WEEKS = 8
STEPS = WEEKS * 7 * 8  # 3-hourly


def eight_weeks(wb: hydrorl.Workbench, name: str = "Eight weeks") -> str:
    """The demo's first eight weeks, stored as a forecast of their own."""
    table = demo_forecast(scenarios=2, years=1)
    short = dataclasses.replace(
        table,
        price_eur_mwh=table.price_eur_mwh[:, :STEPS],
        inflow_m3s=table.inflow_m3s[:, :STEPS],
        content_hash="",
    )
    wb.upload_forecast("Demo river", short.to_frame(), name)
    return name


def store_evaluation(wb: hydrorl.Workbench, forecast: str, planner: bool = True) -> int:
    """A completed evaluation run of a stopped training run on ``forecast``, with every series
    an evaluation writes (trajectories inside the reservoirs' limits); returns its id."""
    system = demo_system()

    def write(session) -> int:  # noqa: ANN001
        project = session.query(models.Project).filter_by(name="Demo project").one()
        target = session.query(models.Forecast).filter_by(name=forecast).one()
        train = models.ProjectRun(
            project=project,
            forecast=session.query(models.Forecast).filter_by(name="Demo forecast").one(),
            kind=models.RunKind.TRAIN,
            status=models.Status.STOPPED,
            settings={"timesteps": 1000},
        )
        train.agents = [models.Agent(index=0, seed=0, status=models.Status.STOPPED)]
        evaluation = models.ProjectRun(
            project=project,
            forecast=target,
            kind=models.RunKind.EVALUATE,
            status=models.Status.COMPLETED,
            settings={},
        )
        session.add_all([train, evaluation])
        session.flush()
        evaluation.source_run_id = train.id
        t = np.arange(target.n_steps)
        for s, link in enumerate(sorted(target.series_links, key=lambda x: x.scenario_index)):
            series: dict[str, np.ndarray] = {
                "price_eur_mwh": 40 + 10 * np.sin(t / 4.0 + s),
                "inflow_m3s": 50 + 20 * np.cos(t / 40.0),
                "revenue_eur": 20_000 + 5_000 * np.sin(t / 4.0),
                "reward_eur": 20_000 + 5_000 * np.sin(t / 4.0),
            }
            for k, r in enumerate(system.reservoirs):
                low, high = r.min_volume_mm3, r.max_volume_mm3
                for j, who in enumerate(["", "bound:", "benchmark:"]):
                    wave = 0.5 + 0.4 * np.sin(t / (60.0 + 10 * j) + k)
                    series[f"{who}volume_mm3:{r.name}"] = low + (high - low) * wave
                series[f"spill_m3s:{r.name}"] = np.where(t % 97 == 0, 5.0, 0.0)
            for st in system.power_stations:
                for j, who in enumerate(["", "bound:", "benchmark:"]):
                    series[f"{who}discharge_m3s:{st.name}"] = st.max_discharge_m3s * (
                        0.5 + 0.4 * np.sin(t / (3.0 + j))
                    )
                series[f"generation_mwh:{st.name}"] = np.full(len(t), 100.0)
            episode = models.EvaluationEpisode(
                run_id=evaluation.id,
                agent_id=train.agents[0].id,
                series_link_id=link.id,
                total_reward=12_345_678.0 + 1e6 * s,
                revenue_eur=12e6,
                spill_mm3=1.5,
                end_volume_mm3=500.0,
                bound_revenue_eur=13e6 + 1e6 * s,
                benchmark_revenue_eur=12e6,
                planner_eur=12.2e6 if planner else None,
            )
            episode.report_data = [models.ReportData(name=name) for name in series]
            session.add(episode)
            session.flush()
            for data in episode.report_data:
                values = series[data.name]
                bulk.insert_columns(
                    session,
                    models.ReportValue.__table__,
                    ("data_id", "step_index", "value"),
                    (np.full(len(values), data.id), np.arange(len(values)), values),
                )
        return int(evaluation.id)

    return wb.database.run_write(write)


@pytest.fixture
def evaluated(tmp_path: Path) -> tuple[hydrorl.Workbench, int]:
    wb = hydrorl.connect(f"sqlite:///{tmp_path / 'episodes.db'}")
    wb.setup_demo(scenarios=2, years=1)
    run_id = store_evaluation(wb, eight_weeks(wb))
    yield wb, run_id
    wb.close()


# --- labels and the table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "policy", "label"),
    [
        ("discharge_m3s:Hoegfjell PS", "agent", "Hoegfjell PS discharge (m³/s)"),
        ("bound:volume_mm3:Top: the upper", "bound", "Top: the upper volume (Mm³)"),
        ("benchmark:discharge_m3s:A", "benchmark", "A discharge (m³/s)"),
        ("volume_mm3:bound:x", "agent", "bound:x volume (Mm³)"),
        ("price_eur_mwh", "agent", "Price (EUR/MWh)"),
        ("revenue_eur", "agent", "Revenue (EUR)"),
        ("something else", "agent", "something else"),
    ],
)
def test_series_names_read_as_labels_with_units(column: str, policy: str, label: str) -> None:
    name = SeriesName.parse(column)
    assert (name.policy, name.label) == (policy, label)


def test_the_table_has_a_mean_row_and_readable_numbers(evaluated) -> None:  # noqa: ANN001
    wb, run_id = evaluated
    episodes = wb.episodes(run_id)
    table = episode_table(episodes)
    assert table["scenario"].tolist() == ["S01", "S02", "mean"]
    mean = table.iloc[-1]
    assert mean["value (MEUR)"] == pytest.approx(12.85, abs=0.01)  # (12.35 + 13.35) / 2
    assert mean["bound (MEUR)"] == pytest.approx(13.5)
    # The mean row's shares are those of the mean values.
    assert mean["% of bound"] == pytest.approx(round(100 * 12_845_678 / 13.5e6, 1))
    assert mean["vs best classical (%)"] == pytest.approx(round(100 * 12_845_678 / 12.2e6, 1))
    browser = EpisodeBrowser(wb)
    shown = browser._table.get_root(Document()).text
    assert "12.35" in shown and "mean" in shown and "e+" not in shown
    without = episode_table(episodes.assign(planner_eur=np.nan))
    assert without.iloc[-1]["vs best classical (%)"] == without.iloc[-1]["vs benchmark (%)"]


# --- the plots ----------------------------------------------------------------------------


def _figures(layout) -> list:  # noqa: ANN001
    import holoviews as hv

    grid = hv.render(layout)
    return [child[0] for child in grid.children]


def test_one_panel_per_reservoir_and_station_on_the_episode_range(evaluated) -> None:  # noqa: ANN001
    wb, run_id = evaluated
    browser = EpisodeBrowser(wb)
    series = browser.series
    system = browser.system
    assert system is not None and system.name == "Demo river"
    figures = _figures(episode_plots(series, system))
    titles = [f.title.text for f in figures]
    assert titles[:3] == [
        "Hoegfjell volume (Mm³), 40–900",
        "Midtvatn volume (Mm³), 5–60",
        "Nedrevatn volume (Mm³), 1–12",
    ]
    assert titles[3:6] == [
        "Hoegfjell PS discharge (m³/s, daily)",
        "Midtvatn PS discharge (m³/s, daily)",
        "Nedrevatn PS discharge (m³/s, daily)",
    ]
    # Each station's panel also holds the spill of the reservoir it draws from.
    spills = [
        {
            s
            for r in f.renderers
            if "series" in getattr(r, "data_source", {}).data
            for s in r.data_source.data["series"]
            if "spill" in s
        }
        for f in figures[3:6]
    ]
    assert spills == [{f"Agent: {r} spill (m³/s)"} for r in ("Hoegfjell", "Midtvatn", "Nedrevatn")]
    assert titles[6:8] == ["Price (EUR/MWh)", "Inflow (m³/s)"]
    assert titles[8] == "Revenue (kEUR/day), 8.97 MEUR"  # about 20 kEUR x 448 steps
    # One time axis for all, on the episode (eight weeks), not the training forecast's year.
    x_ranges = {id(f.x_range) for f in figures}
    assert len(x_ranges) == 1
    start, end = figures[0].x_range.start, figures[0].x_range.end
    to_time = pd.Timestamp  # Bokeh holds datetimes as given, or ms since the epoch
    assert to_time(start) == series.index[0]
    assert to_time(end) == series.index[-1] + pd.Timedelta(hours=3)
    assert to_time(end) - to_time(start) == pd.Timedelta(weeks=WEEKS)
    # Each panel its own y axis: the small reservoir is not flat under the large one.
    assert len({id(f.y_range) for f in figures}) == len(figures)
    nedrevatn = figures[2].y_range
    assert isinstance(nedrevatn, Range1d) and 0 < nedrevatn.start < 1 and 12 < nedrevatn.end < 13
    assert sorted(s.location for s in figures[2].renderers if isinstance(s, Span)) == [1, 12]


def _grid(layout) -> list[list[str]]:  # noqa: ANN001
    """The panels' titles row by row, as the Bokeh grid places them."""
    import holoviews as hv

    rows: dict[int, dict[int, str]] = {}
    for figure, row, column in hv.render(layout).children:
        rows.setdefault(row, {})[column] = figure.title.text.split(" (")[0]
    return [[r[c] for c in sorted(r)] for _, r in sorted(rows.items())]


def test_a_narrow_page_gets_fewer_columns_each_reservoir_beside_its_station(evaluated) -> None:  # noqa: ANN001
    """Three columns where three panels of PANEL_MIN_WIDTH fit (a notebook's column in
    JupyterLab beside its file browser has about 590 px): two, each reservoir's volume beside
    its station, then one; the width the page reports redraws the panels only when the
    number of columns changes."""
    assert [columns_for(w) for w in (0, 1400, 990, 800, 790, 592, 300, 100)] == [
        *(3, 3, 3, 3),
        *(2, 2),
        *(1, 1),
    ]
    wb, _ = evaluated
    browser = EpisodeBrowser(wb)
    wide = _grid(browser._plots.object)
    assert wide == [
        ["Hoegfjell volume", "Midtvatn volume", "Nedrevatn volume"],
        ["Hoegfjell PS discharge", "Midtvatn PS discharge", "Nedrevatn PS discharge"],
        ["Price", "Inflow", "Revenue"],
    ]
    browser._width.px = 592  # as the browser reports it
    assert _grid(browser._plots.object) == [
        ["Hoegfjell volume", "Hoegfjell PS discharge"],
        ["Midtvatn volume", "Midtvatn PS discharge"],
        ["Nedrevatn volume", "Nedrevatn PS discharge"],
        ["Price", "Inflow"],
        ["Revenue"],
    ]
    drawn = browser._plots.object
    browser._width.px = 600  # still two columns: not drawn again
    assert browser._plots.object is drawn
    browser._width.px = 300
    assert [len(row) for row in _grid(browser._plots.object)] == [1] * 9
    browser._width.px = 1400
    assert _grid(browser._plots.object) == wide
    browser.scenario = "S02"  # another episode, drawn in the columns the page has room for
    browser._width.px = 592
    browser.scenario = "S01"
    assert len(_grid(browser._plots.object)[0]) == 2


def _line_styles(figures) -> dict[str, set[tuple[str, str]]]:  # noqa: ANN001
    """Per policy label: the (colour, dash) pairs of its lines in every panel."""
    styles: dict[str, set[tuple[str, str]]] = {}
    for figure in figures:
        for renderer in figure.renderers:
            source = getattr(renderer, "data_source", None)
            if source is None or "series" not in source.data:
                continue
            policy = source.data["series"][0].split(":")[0]
            if " spill " in source.data["series"][0]:
                policy = "spill"
            glyph = renderer.glyph
            styles.setdefault(policy, set()).add((glyph.line_color, str(glyph.line_dash)))
    return styles


def test_one_colour_per_policy_in_every_panel_and_no_legend_on_data(evaluated) -> None:  # noqa: ANN001
    wb, _ = evaluated
    browser = EpisodeBrowser(wb)
    figures = _figures(episode_plots(browser.series, browser.system))
    styles = _line_styles(figures)
    for policy in ("agent", "bound", "benchmark"):
        assert len(styles[POLICIES[policy].label]) == 1, styles  # the same in every panel
    colours = [next(iter(styles[POLICIES[p].label]))[0] for p in ("agent", "bound", "benchmark")]
    assert len(set(colours)) == 3
    assert styles["spill"] == {(POLICIES["agent"].color, "[2, 4]")}  # the agent's, dotted
    # The key names the policies once, above the panels; no legend is drawn inside one.
    assert all(not [lg for lg in f.select(Legend) if lg.items] for f in figures)
    key = legend_html(browser.series, limits=True)
    for label in ("Agent", "Bound (perfect foresight)", "SDP benchmark", "Agent spill"):
        assert label in key
    assert "Forecast planner" not in key  # no planner trajectory is stored


def test_every_line_has_a_hover_with_series_time_and_value(evaluated) -> None:  # noqa: ANN001
    wb, _ = evaluated
    browser = EpisodeBrowser(wb)
    figures = _figures(episode_plots(browser.series, browser.system))
    for figure in figures:
        hovers = figure.select(HoverTool)
        assert hovers, figure.title.text
        for hover in hovers:
            fields = [name for name, _ in hover.tooltips]
            assert fields == ["series", "time", "value"]
            assert "datetime" in hover.formatters.values()
    revenue = figures[-1]
    (hover,) = revenue.select(HoverTool)
    assert hover.tooltips[2][1].endswith("{0,0} kEUR")
    assert revenue.yaxis[0].formatter.format == "0,0"  # 1,234 kEUR, not 1.2e+3


def _points(figure) -> set[int]:  # noqa: ANN001
    return {len(r.data_source.data["time"]) for r in figure.renderers if hasattr(r, "data_source")}


def test_flows_of_more_than_two_weeks_are_daily_means(evaluated) -> None:  # noqa: ANN001
    """An on/off schedule step by step, three policies on one panel, reads as a solid block."""
    wb, _ = evaluated
    browser = EpisodeBrowser(wb)
    figures = _figures(episode_plots(browser.series, browser.system))
    assert _points(figures[0]) == {STEPS}  # volumes step by step
    assert _points(figures[3]) == {WEEKS * 7}  # discharge and spill: daily means
    assert _points(figures[6]) == {STEPS}  # price
    (hover, *_) = figures[3].select(HoverTool)
    assert hover.tooltips[2][1].endswith("m³/s, daily mean")
    two_weeks = browser.series.iloc[: 14 * 8]
    figures = _figures(episode_plots(two_weeks, browser.system))
    assert figures[3].title.text == "Hoegfjell PS discharge (m³/s)"
    assert _points(figures[3]) == {14 * 8}


def test_a_long_episode_is_drawn_as_daily_means() -> None:
    times = pd.date_range("2027-01-01", periods=3000, freq="3h", name="time")
    series = pd.DataFrame({"volume_mm3:A": np.linspace(0, 1, 3000)}, index=times)
    (figure,) = _figures(episode_plots(series))
    source = next(r.data_source for r in figure.renderers if hasattr(r, "data_source"))
    assert len(source.data["time"]) == 375  # 3000 steps of 3 h
    assert pd.Timestamp(figure.x_range.end) == times[-1] + pd.Timedelta(hours=3)


# --- the browser component ----------------------------------------------------------------


def test_the_downloads_are_named_after_the_evaluation_and_scenario(evaluated) -> None:  # noqa: ANN001
    wb, run_id = evaluated
    browser = EpisodeBrowser(wb)
    assert browser.table_download.filename == f"evaluation-{run_id}-episodes.csv"
    assert browser.series_download.filename == f"evaluation-{run_id}-S01-series.csv"
    table = pd.read_csv(browser.table_download.callback())
    assert table["scenario"].tolist() == ["S01", "S02", "mean"]
    browser.scenario = "S02"
    assert browser.series_download.filename == f"evaluation-{run_id}-S02-series.csv"
    series = pd.read_csv(browser.series_download.callback(), index_col="time", parse_dates=True)
    stored = wb.episode_series(int(wb.episodes(run_id)["id"].iloc[1]))
    assert len(series) == STEPS and list(series.columns) == list(stored.columns)
    assert np.allclose(series.to_numpy(), stored.to_numpy())
    assert series.index[0] == pd.Timestamp("2027-01-01")


def test_odd_scenario_names_make_safe_file_names() -> None:
    from hydrorl.ui.episodes import file_part

    assert file_part("S01 wet year", "scenario-1") == "S01-wet-year"
    for odd in ("s0 <img src=x>", "../../etc", "a/b", "", "..", "ø"):
        assert file_part(odd, "scenario-2") == "scenario-2"


def test_the_summary_names_the_episode_against_the_yardsticks(evaluated) -> None:  # noqa: ANN001
    wb, _ = evaluated
    browser = EpisodeBrowser(wb)
    text = browser._summary.object
    assert "S01" in text and "12.35 MEUR" in text and "95.0 % of the bound" in text
    assert "+2.9 % against the SDP benchmark" in text and "forecast planner 12.20 MEUR" in text


def test_the_whole_app_keeps_the_episode_range(evaluated) -> None:  # noqa: ANN001
    """Other panes of the page (the forecasts' whole year) do not stretch the episode's axis."""
    wb, _ = evaluated
    app = WorkbenchApp(wb)
    document = Document()
    root = app.__panel__().get_root(document)
    app.tabs.active = 3
    pane = app.episodes._plots
    assert pane.linked_axes is False
    figures = [m for m in root.references() if type(m).__name__ == "figure"]
    episode = [f for f in figures if f.title.text.startswith("Hoegfjell volume")]
    assert episode, [f.title.text for f in figures]
    length = pd.Timestamp(episode[0].x_range.end) - pd.Timestamp(episode[0].x_range.start)
    assert length == pd.Timedelta(weeks=WEEKS)
    app.launcher.stop_refresh()
    app.monitor.stop()


def _status_text(browser: EpisodeBrowser) -> str:
    return " ".join(str(getattr(pane, "object", "")) for pane in browser._status.objects)


def test_episodes_of_a_running_evaluation_come_in_as_they_finish(tmp_path: Path) -> None:
    """The Episodes tab says what to do first, then shows an evaluation started since it was
    last shown, its episodes as they are written (without redrawing the one shown) and, when
    one fails, why."""
    wb = hydrorl.connect(f"sqlite:///{tmp_path / 'live.db'}")
    wb.setup_demo(scenarios=2, years=1)
    browser = EpisodeBrowser(wb)
    assert browser.run_id is None and "No evaluation yet" in _status_text(browser)
    run_id = store_evaluation(wb, eight_weeks(wb))
    e, link, run = models.EvaluationEpisode, models.SeriesLink, models.ProjectRun

    def second(session) -> int:  # noqa: ANN001
        return session.scalar(
            sa.select(e.id)
            .join(link, e.series_link_id == link.id)
            .where(e.run_id == run_id, link.scenario_name == "S02")
        )

    with wb.database.write() as session:  # as it is while its second scenario is played
        source = session.get(run, run_id).source_run_id
        session.execute(sa.update(e).where(e.id == second(session)).values(run_id=source))
        session.execute(
            sa.update(run)
            .where(run.id == run_id)
            .values(status=models.Status.RUNNING, status_reason="scenario 2 of 2: 40%")
        )
    browser.refresh()
    assert browser.run_id == run_id
    assert browser.episodes["scenario"].tolist() == ["S01"]
    said = _status_text(browser)
    assert "running" in said and "scenario 2 of 2: 40%" in said and "as they finish" in said
    assert browser._table.visible
    drawn = browser._plots.object
    assert drawn is not None
    with wb.database.write() as session:  # the second episode written, the run ended
        episode = session.scalars(
            sa.select(e).join(link, e.series_link_id == link.id).where(link.scenario_name == "S02")
        ).one()
        episode.run_id = run_id
        session.execute(
            sa.update(run)
            .where(run.id == run_id)
            .values(status=models.Status.COMPLETED, status_reason="")
        )
    browser.refresh()
    assert browser.episodes["scenario"].tolist() == ["S01", "S02"]
    assert browser._table.object["scenario"].tolist() == ["S01", "S02", "mean"]
    assert browser._plots.object is drawn  # S01 still shown, not drawn again
    assert _status_text(browser) == ""
    browser.refresh()  # it ended: nothing more to read
    assert browser.episodes["scenario"].tolist() == ["S01", "S02"]
    failed = store_evaluation(wb, "Eight weeks")
    with wb.database.write() as session:
        session.execute(
            sa.update(run)
            .where(run.id == failed)
            .values(
                status=models.Status.FAILED,
                status_reason="the checkpoint of agent 1 is missing",
                error="Traceback (most recent call last):\n  FileNotFoundError: agent-1.zip",
            )
        )
    browser.refresh()
    assert browser.run_id == failed
    [shown] = browser._status.objects
    assert isinstance(shown, pn.pane.Alert) and shown.alert_type == "danger"
    assert "the checkpoint of agent 1 is missing" in shown.object
    assert "FileNotFoundError: agent-1.zip" in shown.object
    wb.close()


# --- the upload form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "text"),
    [("3h", "3 h"), ("1h", "1 h"), ("1D", "1 day"), ("7D", "7 days"), ("30min", "30 min")],
)
def test_the_step_reads_as_hours_or_days(step: str, text: str) -> None:
    assert step_text(pd.Timedelta(step)) == text


@pytest.fixture
def demo(tmp_path: Path) -> hydrorl.Workbench:
    wb = hydrorl.connect(f"sqlite:///{tmp_path / 'upload.db'}")
    wb.setup_demo(scenarios=1, years=1)
    yield wb
    wb.close()


def test_the_name_follows_the_chosen_file_unless_typed(demo: hydrorl.Workbench) -> None:
    upload = ForecastUpload(demo)
    good = long_forecast(scenarios=2, steps=8).to_csv(index=False).encode()
    bad = good.replace(b"s1", b"", 1).replace(b"\n", b"\nx,", 1)
    upload.file_input.value, upload.file_input.filename = good, "spring.csv"
    assert upload.forecast_name == "spring" and upload.name_input.value == "spring"
    assert upload._preview[0].object["step"].tolist() == ["3 h", "3 h"]
    # Voila sends the new bytes first, then the new name: the refused file's name shows.
    upload.file_input.value = bad
    upload.file_input.filename = "broken.csv"
    assert upload.error and upload.forecast_name == "broken"
    upload.file_input.value, upload.file_input.filename = good, "summer.csv"
    assert upload.error == "" and upload.forecast_name == "summer"
    upload.name_input.value = "my own name"  # typed: kept whatever file comes next
    upload.file_input.value, upload.file_input.filename = good, "autumn.csv"
    assert upload.forecast_name == "my own name"
    upload.name_input.value = ""  # cleared: it follows the file again
    upload.file_input.value, upload.file_input.filename = good, "winter.csv"
    assert upload.forecast_name == "winter"
    assert upload.commit() and demo.forecasts()["name"].iloc[-1] == "winter"


def test_the_example_file_is_a_small_valid_forecast(demo: hydrorl.Workbench) -> None:
    upload = ForecastUpload(demo)
    assert upload.example_download.filename == "example-forecast.csv"
    data = upload.example_download.callback().read()
    text = data.decode() if isinstance(data, bytes) else data
    assert text.splitlines()[0] == "time,scenario,price,inflow"
    assert len(text) < 20_000
    table = demo.read_forecast(text.encode(), name="example-forecast.csv")
    assert table.n_scenarios == 2 and table.step == pd.Timedelta(hours=3)
    assert table.n_steps == 14 * 8
    assert example_csv() == text  # the same every time (generated with a fixed seed)
    frame = pd.read_csv(io.StringIO(text))
    assert frame["price"].between(0, 200).all() and (frame["inflow"] > 0).all()
    shown = pn.panel(upload).get_root(Document())
    assert any(type(m).__name__ == "FileDownload" for m in shown.references())
