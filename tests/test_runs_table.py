"""The runs table: its frames, and the component driven through its buttons on a real SQLite file.

Runs are written as agents and the evaluator write them (tests/test_run_management.py), so
no process is started here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import hydrorl
from hydrorl.training.agent import run_folder
from hydrorl.ui import RunsTable, WorkbenchApp
from hydrorl.ui.app import RUNS_TAB, TRAIN_TAB
from hydrorl.ui.runs_table import COLUMNS, hyperparameter_text, runs_view, settings_table
from tests.conftest import long_forecast
from tests.test_run_management import written_evaluation, written_run

SAC = {"algorithm": "SAC", "timesteps": 5000, "seed": 0, "hyperparameters": {"gamma": 0.95}}


@pytest.fixture
def demo(db_path: Path) -> Iterator[hydrorl.Workbench]:
    with hydrorl.connect(str(db_path)) as wb:
        wb.setup_demo(scenarios=2, years=1)
        wb.upload_forecast("Demo river", long_forecast(scenarios=2, steps=24), "spring")
        yield wb


def test_the_view_lists_settings_and_scores_as_numbers(demo: hydrorl.Workbench) -> None:
    ppo = written_run(demo)
    sac = written_run(demo, forecast="spring", settings=SAC, validations=(0.5, np.nan))
    evaluation = written_evaluation(demo, ppo)
    demo.rename_run(sac, "sac <b>bold</b>")
    view = runs_view(demo.runs())
    assert list(view.columns) == COLUMNS
    assert view["run"].tolist() == [ppo, sac, evaluation]
    assert view["name"].tolist() == ["", "sac <b>bold</b>", ""]  # (Tabulator escapes cells)
    assert view["kind"].tolist() == ["training", "training", "evaluation"]
    assert view["algorithm"].tolist() == ["PPO", "SAC", "PPO"]
    assert view["duration (min)"].tolist()[:2] == [1.5, 1.5]
    assert view["validation %"].tolist()[:2] == [90.0, 50.0]
    assert np.isnan(view.loc[2, "validation %"])
    assert view.loc[2, "evaluation %"] == pytest.approx(90.5)
    assert view.loc[0, "hyper-parameters"] == "learning_rate=0.0003, n_steps=64"
    assert view["started (UTC)"].tolist()[:2] == ["2027-01-01 12:00"] * 2
    assert runs_view(demo.runs().iloc[0:0]).columns.tolist() == COLUMNS
    assert hyperparameter_text({"b": 1e-5, "a": [1, 2]}) == "a=[1, 2], b=1e-05"


def test_settings_side_by_side_differing_first(demo: hydrorl.Workbench) -> None:
    ppo = written_run(demo)
    sac = written_run(demo, settings=SAC)
    table = settings_table(demo.runs(), [ppo, sac])
    assert list(table.columns) == ["setting", "differs", f"run {ppo}", f"run {sac}"]
    differing = table[table["differs"] == "≠"]["setting"].tolist()
    assert differing == [
        "algorithm",
        "hyperparameters.gamma",
        "hyperparameters.learning_rate",
        "hyperparameters.n_steps",
        "timesteps",
    ]
    assert table["setting"].tolist()[: len(differing)] == differing  # those first
    assert table.set_index("setting").loc["hyperparameters.gamma", f"run {ppo}"] == "—"
    assert table.set_index("setting").loc["seed"].tolist() == ["", "0", "0"]
    one = settings_table(demo.runs(), [sac])
    assert list(one.columns) == ["setting", f"run {sac}"]  # nothing to differ from


def test_select_compare_and_the_forecast_warning(demo: hydrorl.Workbench) -> None:
    a = written_run(demo)
    b = written_run(demo)
    c = written_run(demo, forecast="spring")
    evaluation = written_evaluation(demo, a)
    table = RunsTable(demo)
    assert table.compare_button.disabled and table.delete_button.disabled
    table.select([a, b])  # as ticking the rows does
    assert table.selection == [a, b]
    assert not table.compare_button.disabled and table.rename_button.disabled
    assert table.note == ""  # the same forecast
    assert "side by side" in table._settings_title.object
    table.select([a, c])
    assert table.note == (
        f"Run {a} learnt on forecast 'Demo forecast', run {c} on forecast 'spring': other "
        "scenarios, so their curves are not comparable point for point."
    )
    assert table._note_pane.visible
    table.compare_button.clicks += 1
    assert table.compared == [a, c]
    assert table.monitor.run_id == a and table.monitor.compare == [c]
    assert f"run {c} on forecast 'spring'" in table.monitor.note  # the monitor says so too
    assert "on 2 forecasts" in table.message
    table.select([a, evaluation])  # an evaluation has no curves: not comparable
    assert table.compare_button.disabled
    assert f"run {evaluation}: evaluation, with no learning curves" in table.note
    assert table.compare() == [] and table.failed
    table.select([evaluation])
    assert "Settings and hyper-parameters** of run" in table._settings_title.object
    table.__panel__()  # the layout builds
    table.stop()


def test_rename_asks_first_and_refuses_a_taken_name(demo: hydrorl.Workbench) -> None:
    a = written_run(demo)
    b = written_run(demo)
    table = RunsTable(demo)
    table.select([a])
    table.name_input.value = "baseline"
    table.rename_button.clicks += 1
    assert table.question == f"Rename run {a} to 'baseline'?" and table._confirm_row.visible
    assert demo.run(a).name is None  # nothing yet
    table.confirm_button.clicks += 1
    assert demo.run(a).name == "baseline" and not table._confirm_row.visible
    assert table.message == f"Renamed run {a}: now run {a} 'baseline'." and not table.failed
    assert table.table.value["name"].tolist() == ["baseline", ""]
    assert table.changes == 1
    table.select([b])
    assert table.name_input.value == ""
    table.name_input.value = "being typed"
    table.reload()  # the periodic refresh leaves a name being typed alone
    assert table.name_input.value == "being typed"
    table.ask_rename("baseline")
    table.confirm()
    assert table.failed and "already has a run named 'baseline'" in table.message
    assert table._message_pane[0].alert_type == "danger"
    assert demo.run(b).name is None and table.changes == 1


def test_delete_asks_first_cancel_changes_nothing(demo: hydrorl.Workbench) -> None:
    a = written_run(demo)
    evaluation = written_evaluation(demo, a)
    kept = written_run(demo)
    busy = written_run(demo, status="running")
    table = RunsTable(demo)
    table.select([a])
    table.delete_button.clicks += 1
    assert table.question.startswith(f"Delete run {a}? Their agents, curves, episodes")
    assert f"their evaluations: run {evaluation}" in table.question
    table.cancel_button.clicks += 1
    assert table.message == "Cancelled: nothing was changed."
    assert demo.runs()["id"].tolist() == [a, evaluation, kept, busy]
    table.ask_delete()
    table.confirm_button.clicks += 1
    assert table.message == f"Deleted run {a}, run {evaluation}."
    assert demo.runs()["id"].tolist() == [kept, busy] and not run_folder(demo.url, a).exists()
    assert table.table.value["run"].tolist() == [kept, busy] and table.selection == []
    table.select([busy])
    table.ask_delete()
    assert not table.confirm()
    assert f"run {busy} is running: stop it first" in table.message
    assert table._message_pane[0].alert_type == "danger"
    assert demo.runs()["id"].tolist() == [kept, busy]


def test_forecasts_and_projects_renamed_and_deleted_with_their_runs(
    demo: hydrorl.Workbench,
) -> None:
    on_spring = written_run(demo, forecast="spring")
    kept = written_run(demo)
    table = RunsTable(demo)
    labels = list(table.object_select.options)
    assert labels == [
        "project · Demo project (Demo river, 2 runs)",
        "forecast · Demo forecast (Demo river)",
        "forecast · spring (Demo river)",
    ]
    table.object_select.value = table.object_select.options[labels[2]]
    table.ask_rename_object("Spring 2027")
    assert table.question == "Rename forecast 'spring' to 'Spring 2027'?"
    table.confirm()
    assert "Spring 2027" in set(demo.forecasts()["name"])
    assert set(table.table.value["forecast"]) == {"Spring 2027", "Demo forecast"}
    table.object_select.value = table.object_select.options["forecast · Spring 2027 (Demo river)"]
    table.delete_object_button.clicks += 1
    assert table.question == (
        f"Delete forecast 'Spring 2027' for good? Its 1 run(s) go with it: run {on_spring}, "
        "with their checkpoints."
    )
    table.confirm()
    assert table.message == "Deleted forecast 'Spring 2027' and 1 run(s)."
    assert demo.runs()["id"].tolist() == [kept]
    assert "forecast · Spring 2027 (Demo river)" not in table.object_select.options


def test_the_app_has_a_runs_tab_that_polls_only_when_shown(demo: hydrorl.Workbench) -> None:
    a = written_run(demo)
    b = written_run(demo, forecast="spring")
    evaluation = written_evaluation(demo, b)
    app = WorkbenchApp(demo)
    assert app.tabs._names[RUNS_TAB] == "Runs"
    assert app.runs.monitor is None  # the Train tab's monitor shows the comparison
    app.tabs.active = RUNS_TAB
    assert app.runs._callback is not None and app.monitor._callback is None
    app.runs.select([a, b])
    app.runs.compare()
    assert app.tabs.active == TRAIN_TAB and app.runs._callback is None
    assert app.launcher.run_id == a and app.monitor.run_id == a and app.monitor.compare == [b]
    assert f"run {b} on forecast 'spring'" in app.monitor.note
    app.monitor.stop()
    app.launcher.stop_refresh()
    app.tabs.active = RUNS_TAB
    app.runs.select([a])
    app.runs.ask_delete()
    app.runs.confirm()
    assert app.launcher.run_id == b and app.monitor.run_id == b and app.monitor.compare == []
    assert app.episodes.run_id == evaluation
    app.runs.select([b])
    app.runs.ask_delete()
    app.runs.confirm()
    assert app.launcher.run_id is None and app.episodes.run_id is None
    assert app.explorer.forecast == "Demo forecast"
    app.runs.stop()


def test_a_run_deleted_in_another_session_leaves_the_train_tab(demo: hydrorl.Workbench) -> None:
    """Another page deletes the run this page's launcher and monitor watch: they fall back to
    the newest run left and say so; no error reaches the page."""
    from hydrorl.ui import RunLauncher, TrainingMonitor

    kept = written_run(demo)
    watched = written_run(demo)
    launcher = RunLauncher(demo)
    monitor = TrainingMonitor(demo, run_id=watched)
    assert launcher.run_id == watched
    with hydrorl.connect(demo.url) as other:
        other.delete_run(watched)
    launcher.refresh()
    assert launcher.run_id == kept
    assert launcher.message == f"Run {watched} was deleted (in another page or session)."
    assert f"Run {kept}:" in launcher._message()[1].object
    for _ in range(5):  # it looks for deleted runs every fifth refresh
        monitor.refresh()
    assert monitor.run_id is None
    with hydrorl.connect(demo.url) as other:
        other.delete_run(kept)
    launcher.refresh()
    assert launcher.run_id is None and "No run yet" in launcher._message()[1].object
    launcher.stop_refresh()
    monitor.stop()
