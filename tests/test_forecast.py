"""Forecast upload: every file format round-trips; every bad input is named and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import hydrorl
from tests.conftest import long_forecast

FORECAST_TABLES = ("upload", "forecast", "series_link", "time_data_series", "time_data_value")


def row_counts(wb: hydrorl.Workbench) -> dict[str, int]:
    with wb.database.read() as session:
        return {
            t: session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in FORECAST_TABLES
        }


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_file_round_trip_gives_identical_values(
    wb: hydrorl.Workbench, system: object, tmp_path: Path, suffix: str
) -> None:
    frame = long_forecast(scenarios=3, steps=40)
    path = write(frame, tmp_path / f"forecast{suffix}")
    info = wb.upload_forecast("Twin", path)
    assert info.name == "forecast"
    assert info.scenario_names == ("s0", "s1", "s2")
    assert info.n_steps == 40 and info.step == pd.Timedelta(hours=3)
    assert info.start_time == pd.Timestamp("2027-01-01")
    back = wb.forecast_data("forecast")
    if suffix == ".xlsx":
        # Excel keeps 15 significant digits: compare with what the file itself holds.
        frame = pd.read_excel(path)
        np.testing.assert_allclose(back["price"], long_forecast(3, 40)["price"], rtol=1e-14)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_exact=True)
    upload = wb.uploads().iloc[0]
    assert upload.file_name == f"forecast{suffix}"
    assert upload.size_bytes == path.stat().st_size
    assert upload.row_count == 120
    assert len(upload.content_hash) == 64


def test_dataframe_round_trip_and_fast_arrays(wb: hydrorl.Workbench, system: object) -> None:
    frame = long_forecast(scenarios=4, steps=30)
    wb.upload_forecast("Twin", frame, "from a frame")
    table = wb.forecast_table("from a frame", scenarios=["s2", 0])
    assert table.scenario_names == ("s2", "s0")
    np.testing.assert_array_equal(table.price_eur_mwh[0], frame["price"].to_numpy()[60:90])
    np.testing.assert_array_equal(table.inflow_m3s[1], frame["inflow"].to_numpy()[:30])
    upload = wb.uploads().iloc[0]
    assert (upload.file_format, upload.row_count) == ("dataframe", 120)
    assert upload.size_bytes >= 120 * 3 * 8  # at least the numbers, as held in memory
    scenarios = wb.scenarios("from a frame")
    assert scenarios["scenario"].tolist() == ["s0", "s1", "s2", "s3"]
    listed = wb.forecasts("Twin").iloc[0]
    assert (listed["name"], listed["scenarios"], listed["n_steps"]) == ("from a frame", 4, 30)
    assert listed["end_time"] == pd.Timestamp("2027-01-04 18:00")


def test_time_major_rows_aliases_extra_columns_and_offsets(
    wb: hydrorl.Workbench, system: object, tmp_path: Path
) -> None:
    frame = long_forecast(scenarios=2, steps=8).sort_values(["time", "scenario"])
    frame = frame.rename(
        columns={"time": "Timestamp", "price": "price_eur_mwh", "inflow": "Inflow_m3s"}
    )
    frame["comment"] = "ignored"
    frame["Timestamp"] = (
        frame["Timestamp"].dt.tz_localize("Europe/Oslo").map(lambda t: t.isoformat())
    )
    path = tmp_path / "wide-names.csv"
    frame.to_csv(path, index=False)
    info = wb.upload_forecast("Twin", path)
    assert info.start_time == pd.Timestamp("2026-12-31 23:00")  # converted to UTC
    back = wb.forecast_data(info.name)
    assert back["scenario"].tolist()[:8] == ["s0"] * 8


def test_a_file_without_scenario_column_is_one_scenario(
    wb: hydrorl.Workbench, system: object
) -> None:
    frame = long_forecast(scenarios=1, steps=10).drop(columns="scenario")
    info = wb.upload_forecast("Twin", frame, "single")
    assert info.scenario_names == ("1",)


def test_same_content_twice_is_reported(
    wb: hydrorl.Workbench, system: object, tmp_path: Path
) -> None:
    path = write(long_forecast(), tmp_path / "f.csv")
    wb.upload_forecast("Twin", path, "first")
    before = row_counts(wb)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(
        hydrorl.DuplicateUploadError,
        match=r"copy.csv: the same content was uploaded before as 'f.csv' on .* UTC \("
        r"forecast 'first' of system 'Twin'",
    ):
        wb.upload_forecast("Twin", copy, "second")
    assert row_counts(wb) == before
    wb.upload_forecast("Twin", copy, "second", allow_duplicate=True)
    assert len(wb.forecasts()) == 2
    # The same DataFrame twice is caught too.
    frame = long_forecast(seed=9)
    wb.upload_forecast("Twin", frame, "df")
    with pytest.raises(hydrorl.DuplicateUploadError):
        wb.upload_forecast("Twin", frame.copy(), "df again")


def test_a_forecast_name_is_unique_within_its_system(wb: hydrorl.Workbench, system: object) -> None:
    wb.upload_forecast("Twin", long_forecast(seed=1), "f")
    with pytest.raises(hydrorl.AlreadyExistsError, match="already has a forecast named 'f'"):
        wb.upload_forecast("Twin", long_forecast(seed=2), "f")


def test_an_unknown_system_is_refused_and_nothing_written(wb: hydrorl.Workbench) -> None:
    with pytest.raises(hydrorl.NotFoundError, match="no hydro system 'Atlantis'"):
        wb.upload_forecast("Atlantis", long_forecast(), "f")
    assert row_counts(wb) == dict.fromkeys(FORECAST_TABLES, 0)


def test_delete_forecast_removes_values_and_upload(wb: hydrorl.Workbench, system: object) -> None:
    wb.upload_forecast("Twin", long_forecast(), "f")
    wb.delete_forecast("f")
    assert row_counts(wb) == dict.fromkeys(FORECAST_TABLES, 0)
    with pytest.raises(hydrorl.NotFoundError, match="no forecast 'f'"):
        wb.forecast("f")


# ---------------------------------------------------------------- bad input


def _csv(text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "bad.csv"
        path.write_text(text)
        return path

    return make


def _frame_csv(mutate: Callable[[pd.DataFrame], pd.DataFrame], name: str = "bad.csv"):
    def make(folder: Path) -> Path:
        frame = mutate(long_forecast(scenarios=2, steps=6).astype({"price": object}))
        path = folder / name
        frame.to_csv(path, index=False)
        return path

    return make


def _set(row: int, column: str, value: object):
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return mutate


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _parquet_as(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        long_forecast().to_parquet(path)
        return path

    return make


HEADER = "time,scenario,price,inflow\n"

BAD_INPUTS = {
    "empty file": (_bytes("bad.csv", b""), "bad.csv: the file is empty"),
    "header only": (_csv(HEADER), "bad.csv: it has a header but no data rows"),
    "missing column": (
        _frame_csv(lambda f: f.drop(columns="inflow")),
        "bad.csv: missing column\\(s\\) 'inflow'; the file has 'time', 'scenario', 'price'",
    ),
    "misnamed column": (
        _frame_csv(lambda f: f.rename(columns={"price": "prise"})),
        "missing column\\(s\\) 'price' \\(did you mean 'prise'\\?\\)",
    ),
    "non-numeric price": (
        _frame_csv(_set(3, "price", "abc")),
        "bad.csv: column 'price', line 5 \\(scenario 's0', time 2027-01-01 "
        "09:00:00\\): price = 'abc' is not a number",
    ),
    "empty inflow cell": (
        _frame_csv(_set(7, "inflow", None)),
        "column 'inflow', line 9 \\(scenario 's1', time 2027-01-01 03:00:00\\): inflow is missing",
    ),
    "NaN price": (_frame_csv(_set(2, "price", "NaN")), "column 'price', line 4 .*missing"),
    "infinite price": (_frame_csv(_set(2, "price", "inf")), "column 'price', line 4 .*infinite"),
    "negative inflow": (
        _frame_csv(_set(10, "inflow", -3.5)),
        "column 'inflow', line 12 \\(scenario 's1', time 2027-01-01 12:00:00\\): "
        "inflow = -3.5 is negative",
    ),
    "bad timestamp": (
        _frame_csv(_set(1, "time", "yesterday")),
        "column 'time', line 3: time = 'yesterday' is not a timestamp",
    ),
    "empty timestamp": (_frame_csv(_set(1, "time", None)), "column 'time', line 3: time is empty"),
    "duplicated timestamp": (
        _frame_csv(_set(2, "time", "2027-01-01 03:00:00")),
        "duplicated timestamp 2027-01-01 03:00:00 in scenario 's0' \\(line 3 and line 4\\)",
    ),
    "unsorted timestamps": (
        _frame_csv(lambda f: f.iloc[[0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]]),
        "timestamps are not sorted in scenario 's0': line 4 "
        "\\(2027-01-01 03:00:00\\) comes after line 3 \\(2027-01-01 06:00:00\\)",
    ),
    "irregular step": (
        _frame_csv(_set(4, "time", "2027-01-01 13:00:00")),
        "irregular time step in scenario 's0' at line 6: 2027-01-01 09:00:00 -> "
        "2027-01-01 13:00:00 is 0 days 04:00:00, expected 0 days 03:00:00",
    ),
    "different lengths": (
        _frame_csv(lambda f: f.drop(index=11)),
        "scenario 's1' has 5 steps, scenario 's0' has 6",
    ),
    "different steps": (
        _csv(
            HEADER + "2027-01-01 00:00,a,1,1\n2027-01-01 03:00,a,1,1\n"
            "2027-01-01 00:00,b,1,1\n2027-01-01 01:00,b,1,1\n"
        ),
        "scenario 'b' has a step of 0 days 01:00:00, scenario 'a' one of 0 days 03:00:00",
    ),
    "different starts": (
        _csv(
            HEADER + "2027-01-01 00:00,a,1,1\n2027-01-01 03:00,a,1,1\n"
            "2027-01-01 03:00,b,1,1\n2027-01-01 06:00,b,1,1\n"
        ),
        "scenario 'b' starts at 2027-01-01 03:00:00, scenario 'a' at 2027-01-01 00:00:00",
    ),
    "one step only": (_csv(HEADER + "2027-01-01 00:00,a,1,1\n"), "scenario 'a' has 1 step"),
    "empty scenario name": (
        _csv(HEADER + "2027-01-01 00:00,,1,1\n"),
        "column 'scenario', line 2: scenario is empty",
    ),
    "parquet named csv": (
        _parquet_as("bad.csv"),
        "bad.csv: not a CSV text file \\(it looks like a Parquet file\\)",
    ),
    "csv named parquet": (
        _bytes("bad.parquet", (HEADER + "2027-01-01,a,1,1\n").encode()),
        "bad.parquet: not a Parquet file",
    ),
    "csv named xlsx": (
        _bytes("bad.xlsx", (HEADER + "2027-01-01,a,1,1\n").encode()),
        "bad.xlsx: not an Excel .xlsx file",
    ),
    "parquet named xlsx": (
        _parquet_as("bad.xlsx"),
        "bad.xlsx: not an Excel .xlsx file \\(it looks like a Parquet file\\)",
    ),
    "corrupt parquet": (
        _bytes("bad.parquet", b"PAR1garbage" * 10),
        "bad.parquet: cannot be read as Parquet",
    ),
    "corrupt xlsx": (
        _bytes("bad.xlsx", b"PK\x03\x04garbage" * 10),
        "bad.xlsx: cannot be read as Excel",
    ),
    "latin-1 csv": (
        _bytes("bad.csv", (HEADER + "2027-01-01,Å,1,1\n").encode("latin-1")),
        "bad.csv: not UTF-8 text at byte",
    ),
    "unknown extension": (_bytes("bad.txt", HEADER.encode()), "bad.txt: unknown file type '.txt'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_named_and_nothing_is_written(
    wb: hydrorl.Workbench, system: object, tmp_path: Path, case: str
) -> None:
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(hydrorl.ForecastValidationError, match=message):
        wb.upload_forecast("Twin", path, "bad")
    assert row_counts(wb) == dict.fromkeys(FORECAST_TABLES, 0)


def test_excel_errors_name_the_sheet_row(
    wb: hydrorl.Workbench, system: object, tmp_path: Path
) -> None:
    frame = long_forecast(scenarios=1, steps=5)
    frame["inflow"] = frame["inflow"].astype(object)
    frame.loc[3, "inflow"] = "lots"
    path = tmp_path / "bad.xlsx"
    frame.to_excel(path, index=False)
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match="bad.xlsx: column 'inflow', row 5 .*'lots' is not a number",
    ):
        wb.upload_forecast("Twin", path)


def test_dataframe_errors_name_the_row_index(wb: hydrorl.Workbench, system: object) -> None:
    frame = long_forecast(scenarios=1, steps=5)
    frame.loc[2, "price"] = np.inf
    with pytest.raises(
        hydrorl.ForecastValidationError, match="<DataFrame>: column 'price', row 2 .*infinite"
    ):
        wb.upload_forecast("Twin", frame, "f")


def test_bytes_from_a_browser_upload(wb: hydrorl.Workbench, system: object) -> None:
    frame = long_forecast(scenarios=2, steps=12)
    data = frame.to_csv(index=False).encode()
    info = wb.upload_forecast("Twin", data, file_name="from-browser.csv")
    assert info.name == "from-browser" and wb.uploads().iloc[0].size_bytes == len(data)
    pd.testing.assert_frame_equal(wb.forecast_data("from-browser"), frame, check_dtype=False)
    with pytest.raises(hydrorl.ForecastValidationError, match="name the uploaded file"):
        wb.read_forecast(data)
    with pytest.raises(hydrorl.ForecastValidationError, match="x.parquet: not a Parquet file"):
        wb.read_forecast(data, name="x.parquet")
