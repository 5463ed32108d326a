"""The wire format of the HTTP API: DataFrames, objects and errors come back as they left."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hydrorl
from hydrorl import errors
from hydrorl.service import wire
from tests.conftest import long_forecast


def round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    return wire.frame_from_arrow(wire.frame_to_arrow(frame))


@pytest.fixture
def filled(wb: hydrorl.Workbench, system: hydrorl.HydroSystem) -> hydrorl.Workbench:
    wb.upload_forecast(system.name, long_forecast(), "F")
    wb.setup_demo(scenarios=2, years=1)
    return wb


def test_the_workbench_frames_cross_the_wire_unchanged(filled: hydrorl.Workbench) -> None:
    wb = filled
    frames = {
        "systems": wb.systems(),
        "reservoirs": wb.reservoirs("Twin"),  # object column with None (the sea)
        "power_stations": wb.power_stations("Twin"),
        "forecasts": wb.forecasts(),  # datetimes, a timedelta, text with None
        "forecast_data": wb.forecast_data("F"),
        "scenarios": wb.scenarios("F"),
        "uploads": wb.uploads(),
        "projects": wb.projects(),
        "runs": wb.runs(),  # empty: object columns with no value
        "curves": wb.curves(1),  # empty, with its watermark in attrs
    }
    for name, frame in frames.items():
        back = round_trip(frame)
        pd.testing.assert_frame_equal(back, frame, check_exact=True, obj=name)
        assert back.attrs == frame.attrs, name
    assert round_trip(frames["reservoirs"])["spill_to"].tolist()[-1] is None


def test_time_zones_none_nan_nested_values_and_the_index_are_kept() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2027-03-26", periods=4, freq="12h", tz="Europe/Oslo"),
            "label": ["a", None, "c", "d"],  # pandas' str dtype: None is NaN already
            "number": [1.5, np.nan, -0.0, np.inf],
            "count": np.array([1, 2, 3, 4], dtype=np.int32),
            "settings": [{"a": 1}, None, {"b": [1, 2]}, {}],
            "flag": [True, False, True, False],
        },
        index=pd.Index([10, 20, 30, 40], name="step"),
    )
    # Object columns as the workbench makes them (pandas would infer str with NaN for None).
    frame["text"] = pd.Series(["a", None, "c", None], index=frame.index, dtype=object)
    when = [pd.Timestamp("2027-01-01"), None, None, None]
    frame["when"] = pd.Series(when, index=frame.index, dtype=object)
    # Numbers and text in one column (a user's frame with a typo): each value as it was.
    frame["mixed"] = pd.Series(["n/a", 1.5, None, 2], index=frame.index, dtype=object)
    frame.attrs["watermark"] = {0: 12, 3: 40}
    back = round_trip(frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back["text"].tolist() == ["a", None, "c", None]
    assert back["settings"].tolist()[1] is None and back["settings"].tolist()[2] == {"b": [1, 2]}
    assert back["mixed"].tolist() == ["n/a", 1.5, None, 2]
    assert back.attrs["watermark"] == {0: 12, 3: 40}  # int keys again
    assert back["when"].tolist() == [pd.Timestamp("2027-01-01"), None, None, None]
    assert str(back["time"].dt.tz) == "Europe/Oslo"


def test_a_time_index_keeps_its_step() -> None:
    times = pd.date_range("2027-01-01", periods=5, freq="3h", tz="UTC", name="time")
    frame = pd.DataFrame({"revenue_eur": range(5)}, index=times)
    back = round_trip(frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.index.freq == pd.Timedelta("3h")


def test_objects_cross_as_json_models(filled: hydrorl.Workbench) -> None:
    wb = filled
    forecast = wb.forecast("F")
    assert wire.ForecastModel.of(forecast).to_info() == forecast
    back = wire.ForecastModel.model_validate_json(wire.ForecastModel.of(forecast).model_dump_json())
    assert back.to_info() == forecast
    project = wb.project("Demo project")
    assert wire.ProjectModel.of(project).to_info() == project
    system = wb.system("Twin")
    assert wire.SystemModel.of(system).to_system() == system
    demo = wb.setup_demo(scenarios=2, years=1)
    assert wire.DemoModel.of(demo).to_result() == demo


@pytest.mark.parametrize(
    ("info", "model", "renamed"),
    [
        (hydrorl.RunInfo, wire.RunModel, {}),
        (hydrorl.ForecastInfo, wire.ForecastModel, {"step": "step_seconds"}),
        (hydrorl.ProjectInfo, wire.ProjectModel, {}),
    ],
)
def test_a_wire_model_has_every_field_of_its_object(info: type, model: type, renamed: dict) -> None:
    """The models are written out for their OpenAPI schema: a field added to the object and
    not to its model would be lost on the wire, silently."""
    fields = [renamed.get(f.name, f.name) for f in dataclasses.fields(info)]
    assert fields == list(model.model_fields)


def test_a_run_crosses_as_json() -> None:
    run = hydrorl.RunInfo(
        id=3,
        kind="train",
        status="running",
        status_reason="",
        project="P",
        forecast="F",
        settings={"agents": 2, "hyperparameters": {"n_steps": 64}},
        error=None,
        created_at=pd.Timestamp("2027-01-01 10:00:00.123456"),
        started_at=pd.Timestamp("2027-01-01 10:00:01"),
        finished_at=None,
        name="baseline",
    )
    model = wire.RunModel.model_validate_json(wire.RunModel.of(run).model_dump_json())
    assert model.to_info() == run
    assert dataclasses.asdict(model.to_info()) == dataclasses.asdict(run)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ForecastValidationError("f.csv: column 'price', row 7: not a number"), 422),
        (errors.NotFoundError("no forecast 'X'"), 404),
        (errors.AlreadyExistsError("taken"), 409),
        (errors.DuplicateUploadError("same content"), 409),
        (errors.InUseError("used by run 1"), 409),
        (errors.SystemValidationError("a cycle"), 422),
        (errors.HydroRLError("root"), 400),
        (ValueError("name the forecast: name='...'"), 422),
    ],
)
def test_errors_come_back_as_the_same_class_and_message(error: Exception, status: int) -> None:
    assert wire.status_of(error) == status
    problem = wire.problem_of(error, status)
    assert problem["status"] == status and problem["detail"] == str(error)
    back = wire.error_of(problem, status)
    assert type(back) is type(error) and str(back) == str(error)


def test_an_unknown_error_class_comes_back_as_the_root_class() -> None:
    back = wire.error_of({"error": "SomethingNew", "detail": "text"}, 400)
    assert type(back) is errors.HydroRLError and str(back) == "text"
    # A name that is not an exception class of HydroRL's is not looked up anywhere else.
    assert type(wire.error_of({"error": "SystemExit", "detail": "x"}, 400)) is errors.HydroRLError
    assert wire.status_of(RuntimeError("a bug")) is None


def test_references_keep_names_and_ids_apart() -> None:
    for ref in ("Demo river", 3, "3", "id:4", "name:x"):
        assert wire.ref_value(wire.ref_text(ref)) == ref
    assert wire.ref_value("Demo river") == "Demo river"  # a bare text is a name
