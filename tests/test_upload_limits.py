"""Uploads are bounded: short write transactions, streamed reading, limits named when refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import hydrorl
from hydrorl.db import Database, bulk, models
from hydrorl.db import forecasts as store
from hydrorl.forecast import MAX_SCENARIO_NAME_CHARS, ForecastTable, check_table, read_forecast
from tests.conftest import long_forecast
from tests.test_forecast import FORECAST_TABLES, row_counts

ROOT = Path(__file__).resolve().parents[1]


def nothing_written(wb: hydrorl.Workbench) -> bool:
    return row_counts(wb) == dict.fromkeys(FORECAST_TABLES, 0)


def table_of(wb: hydrorl.Workbench, scenarios: int = 4, steps: int = 1000) -> ForecastTable:
    return wb.read_forecast(long_forecast(scenarios=scenarios, steps=steps), name="big")


# ---------------------------------------------------------------- short write transactions


def test_no_write_transaction_of_an_upload_writes_more_than_a_chunk(
    wb: hydrorl.Workbench, system: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRORL_UPLOAD_CHUNK_ROWS", "500")
    frame = long_forecast(scenarios=4, steps=1000)  # 8,000 values
    with bulk.WriteMeter(wb.database.engine) as meter:
        wb.upload_forecast("Twin", frame, "big")
    # 16 chunks of values, the staged series, the publishing transaction.
    assert len(meter.writes) >= 18
    assert meter.most_rows.rows <= 500
    assert sum(t.rows for t in meter.writes) >= 8_000
    pd.testing.assert_frame_equal(wb.forecast_data("big"), frame, check_dtype=False)
    assert wb.scenarios("big")["scenario"].tolist() == ["s0", "s1", "s2", "s3"]


def test_other_writers_commit_between_chunks_and_readers_see_nothing_staged(
    wb: hydrorl.Workbench, system: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's connection, as a heartbeat writes; on SQLite it gives up at once
    # instead of waiting, were the upload holding the write lock.
    monkeypatch.setenv("HYDRORL_SQLITE_BUSY_TIMEOUT_MS", "0")
    other = Database(wb.url)
    seen: list[tuple[int, int]] = []

    def between_chunks(done: int, total: int) -> None:
        with other.write() as session:
            session.execute(
                sa.text("UPDATE hydro_system SET description = :beat"), {"beat": f"{done}"}
            )
        with other.read() as session:
            assert store.list_forecasts(session).empty
        seen.append((done, total))

    forecast_id = store.store_forecast(
        wb.database, "Twin", table_of(wb), "big", chunk_rows=1000, on_progress=between_chunks
    )
    assert [d for d, _ in seen] == list(range(1000, 8001, 1000)) and seen[-1][1] == 8000
    assert wb.system("Twin").description == "8000"
    assert wb.forecast(forecast_id).name == "big"
    other.dispose()


def test_an_interrupted_upload_leaves_nothing(wb: hydrorl.Workbench, system: object) -> None:
    def interrupt(done: int, total: int) -> None:
        if done >= 3000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.store_forecast(
            wb.database, "Twin", table_of(wb), "big", chunk_rows=1000, on_progress=interrupt
        )
    assert nothing_written(wb)


def test_a_name_taken_during_the_upload_is_refused_at_publishing(
    wb: hydrorl.Workbench, system: object
) -> None:
    def faster_rival(done: int, total: int) -> None:
        if done == 1000:
            rival = hydrorl.connect(wb.url)
            rival.upload_forecast("Twin", long_forecast(seed=7), "big")
            rival.close()

    with pytest.raises(hydrorl.AlreadyExistsError, match="already has a forecast named 'big'"):
        store.store_forecast(
            wb.database, "Twin", table_of(wb), "big", chunk_rows=1000, on_progress=faster_rival
        )
    counts = row_counts(wb)
    assert counts["forecast"] == 1 and counts["time_data_value"] == 2 * 3 * 16


KILLED_UPLOAD = """
import os, signal, sys
import hydrorl
from hydrorl.db import forecasts
from tests.conftest import long_forecast

wb = hydrorl.connect(sys.argv[1])
table = wb.read_forecast(long_forecast(scenarios=4, steps=1000), name="killed")

def die(done, total):
    if done >= 3000:
        os.kill(os.getpid(), signal.SIGKILL)

forecasts.store_forecast(wb.database, "Twin", table, "killed", chunk_rows=1000, on_progress=die)
"""


def test_a_killed_upload_is_invisible_and_its_staged_rows_are_swept_when_old(
    wb: hydrorl.Workbench, system: object
) -> None:
    wb.upload_forecast("Twin", long_forecast(seed=3), "kept")
    before = row_counts(wb)
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_UPLOAD), wb.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert wb.forecasts()["name"].tolist() == ["kept"]
    left = row_counts(wb)
    assert left["time_data_series"] == before["time_data_series"] + 8
    assert left["time_data_value"] == before["time_data_value"] + 3000

    now = models.utcnow()
    with wb.database.read() as session:
        assert store.staged_series(session, now=now).empty  # young: maybe still uploading
        assert len(store.staged_series(session, now=now + dt.timedelta(hours=7))) == 8
    assert store.sweep_staged_series(wb.database, now=now) == 0
    assert store.sweep_staged_series(wb.database, now=now + dt.timedelta(hours=7)) == 8
    assert row_counts(wb) == before
    pd.testing.assert_frame_equal(
        wb.forecast_data("kept"), long_forecast(seed=3), check_dtype=False
    )


def test_the_next_upload_sweeps_old_leftovers(
    wb: hydrorl.Workbench, system: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a killed process leaves: staged series and some values, no SeriesLink.
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_discard", lambda *a, **k: None)  # as if killed first
    with pytest.raises(KeyboardInterrupt):
        store.store_forecast(
            wb.database, "Twin", table_of(wb), "big", chunk_rows=1000, on_progress=interrupt
        )
    monkeypatch.undo()
    assert row_counts(wb)["time_data_value"] == 1000
    monkeypatch.setenv("HYDRORL_STAGED_UPLOAD_MAX_AGE_S", "-1")
    wb.upload_forecast("Twin", long_forecast(), "next")
    counts = row_counts(wb)
    assert counts["time_data_series"] == 6 and counts["time_data_value"] == 6 * 16


# ---------------------------------------------------------------- names


def test_name_limits_are_the_columns_and_checked_before_writing(
    wb: hydrorl.Workbench, system: object, tmp_path: Path
) -> None:
    assert store.NAME_LIMITS["scenario name"] == MAX_SCENARIO_NAME_CHARS
    assert store.NAME_LIMITS == {"forecast name": 200, "scenario name": 200, "file name": 500}
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"the forecast name 'n+'\.\.\. has 201 characters; at most 200 are allowed",
    ):
        wb.upload_forecast("Twin", long_forecast(), "n" * 201)
    frame = long_forecast(scenarios=2, steps=4)
    frame.loc[4:, "scenario"] = "s" * 201
    frame.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"long.csv: column 'scenario', line 6: scenario name 's+'\.\.\. has 201 "
        "characters; at most 200 are allowed",
    ):
        wb.upload_forecast("Twin", tmp_path / "long.csv", "f")
    data = long_forecast().to_csv(index=False).encode()
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"the file name 'f+'\.\.\. has 505 characters",
    ):
        wb.upload_forecast("Twin", data, "f", file_name="f" * 501 + ".csv")
    assert nothing_written(wb)
    wb.upload_forecast("Twin", long_forecast(), "n" * 200)  # the limit itself is fine
    assert wb.forecasts()["name"].tolist() == ["n" * 200]


# ---------------------------------------------------------------- plausibility


def test_implausible_values_are_named_unless_allowed(
    wb: hydrorl.Workbench, system: object, tmp_path: Path
) -> None:
    frame = long_forecast(scenarios=2, steps=6)
    frame.loc[2, "price"] = 1e12
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"prices.csv: column 'price', line 4 \(scenario 's0', time 2027-01-01 06:00:00\): "
        r"price = 1e\+12 EUR/MWh is implausible \(beyond \+/-100000 EUR/MWh, "
        r"HYDRORL_MAX_ABS_PRICE_EUR_MWH\).*allow_implausible=True",
    ):
        wb.upload_forecast("Twin", path)
    frame.loc[2, "price"] = 40.0
    frame.loc[9, "inflow"] = 1e9
    frame.to_csv(path, index=False)
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"column 'inflow', line 11 \(scenario 's1', .*\): inflow = 1e\+09 m3/s is "
        r"implausible \(above 1e\+06 m3/s, HYDRORL_MAX_INFLOW_M3S\)",
    ):
        wb.upload_forecast("Twin", path)
    assert nothing_written(wb)
    info = wb.upload_forecast("Twin", path, allow_implausible=True)
    assert wb.forecast_table(info.name).inflow_m3s[1, 3] == 1e9


def test_tables_made_elsewhere_are_checked_too(wb: hydrorl.Workbench, system: object) -> None:
    table = table_of(wb, scenarios=2, steps=5)
    table.price_eur_mwh[1, 3] = -2e5
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"big: scenario 's1', step 3 \(time 2027-01-01 09:00:00\): price = -200000 EUR/MWh "
        "is implausible",
    ):
        wb.upload_forecast("Twin", table, "f")
    assert nothing_written(wb)
    assert check_table(table, allow_implausible=True) is table
    wb.upload_forecast("Twin", table, "f", allow_implausible=True)


def test_cli_upload_passes_allow_implausible_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hydrorl import cli
    from tests.conftest import two_reservoir_system

    db = str(tmp_path / "cli.db")
    two_reservoir_system().to_file(tmp_path / "twin.yaml")
    assert cli.main(["--db", db, "system", str(tmp_path / "twin.yaml")]) == 0
    frame = long_forecast()
    frame.loc[0, "price"] = 3e5
    frame.to_csv(tmp_path / "spiky.csv", index=False)
    assert cli.main(["--db", db, "upload", "Twin", str(tmp_path / "spiky.csv")]) == 2
    assert "line 2 (scenario 's0'" in capsys.readouterr().err
    args = ["--db", db, "upload", "Twin", str(tmp_path / "spiky.csv"), "--allow-implausible"]
    assert cli.main(args) == 0
    assert "Uploaded forecast 'spiky'" in capsys.readouterr().out


# ---------------------------------------------------------------- sizes and streaming


def test_file_size_and_row_limits_name_the_limit(
    wb: hydrorl.Workbench, system: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.csv"
    long_forecast().to_csv(path, index=False)
    monkeypatch.setenv("HYDRORL_MAX_UPLOAD_BYTES", "1000")
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"f.csv: the file is 0.0 MB; the limit for CSV and Parquet is 0.0 MB "
        r"\(HYDRORL_MAX_UPLOAD_BYTES\)",
    ):
        wb.upload_forecast("Twin", path)
    monkeypatch.delenv("HYDRORL_MAX_UPLOAD_BYTES")
    monkeypatch.setenv("HYDRORL_MAX_FORECAST_ROWS", "40")
    monkeypatch.setenv("HYDRORL_UPLOAD_CHUNK_ROWS", "16")
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"f.csv: more than 40 rows \(scenarios x steps\); the limit is 40 "
        r"\(HYDRORL_MAX_FORECAST_ROWS\)",
    ):
        wb.upload_forecast("Twin", path)
    assert nothing_written(wb)


def _xlsx_bomb(inflated_bytes: int) -> bytes:
    """A zip that looks like an .xlsx and inflates a sheet of blanks a thousandfold."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * inflated_bytes)
    return buffer.getvalue()


def test_excel_is_refused_by_size_and_inflation_before_it_is_parsed(
    wb: hydrorl.Workbench, system: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openpyxl

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl must not see this file")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(_xlsx_bomb(3_000_000))
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"bomb.xlsx: part 'xl/worksheets/sheet1.xml' of the Excel file inflates [\d,]+ "
        r"times \([\d,]+ -> 3,000,000 bytes\); the limit is 100 "
        r"\(HYDRORL_MAX_EXCEL_COMPRESSION_RATIO\): it looks like a zip bomb",
    ):
        wb.upload_forecast("Twin", bomb)
    monkeypatch.setenv("HYDRORL_MAX_EXCEL_UNCOMPRESSED_BYTES", "2000000")
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"bomb.xlsx: the Excel file inflates to 3.0 MB; the limit is 2.0 MB "
        r"\(HYDRORL_MAX_EXCEL_UNCOMPRESSED_BYTES\); it was refused before parsing",
    ):
        wb.upload_forecast("Twin", bomb.read_bytes(), file_name="bomb.xlsx")
    monkeypatch.setenv("HYDRORL_MAX_EXCEL_BYTES", "1000")
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"bomb.xlsx: the file is 0.0 MB; the limit for Excel uploads is 0.0 MB "
        r"\(HYDRORL_MAX_EXCEL_BYTES\); save larger forecasts as CSV or Parquet",
    ):
        wb.upload_forecast("Twin", bomb)
    assert nothing_written(wb)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_chunked_reading_matches_whole_reading_in_any_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    frame = long_forecast(scenarios=3, steps=20).sort_values(["time", "scenario"])  # interleaved
    path = tmp_path / f"f{suffix}"
    {".csv": frame.to_csv, ".parquet": frame.to_parquet, ".xlsx": frame.to_excel}[suffix](
        path, index=False
    )
    whole = read_forecast(path)
    monkeypatch.setenv("HYDRORL_UPLOAD_CHUNK_ROWS", "7")
    chunked = read_forecast(path)
    assert chunked.scenario_names == whole.scenario_names == ("s0", "s1", "s2")
    np.testing.assert_array_equal(chunked.price_eur_mwh, whole.price_eur_mwh)
    np.testing.assert_array_equal(chunked.inflow_m3s, whole.inflow_m3s)
    expected = long_forecast(scenarios=3, steps=20)
    np.testing.assert_allclose(chunked.price_eur_mwh.reshape(-1), expected["price"], rtol=1e-14)
    assert chunked.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert chunked.size_bytes == path.stat().st_size


def test_grid_errors_are_found_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRORL_UPLOAD_CHUNK_ROWS", "4")
    frame = long_forecast(scenarios=2, steps=6).sort_values(["time", "scenario"])
    frame = frame.reset_index(drop=True)
    frame.loc[8, "time"] = frame.loc[6, "time"]  # s0's 5th step repeats its 4th (lines 8, 10)
    frame.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(
        hydrorl.ForecastValidationError,
        match=r"dup.csv: duplicated timestamp 2027-01-01 09:00:00 in scenario 's0' "
        r"\(line 8 and line 10\)",
    ):
        read_forecast(tmp_path / "dup.csv")


def test_reading_a_csv_holds_at_most_three_times_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRORL_UPLOAD_CHUNK_ROWS", "5000")
    scenarios, steps = 20, 10_000  # 200,000 rows: 3.2 MB of values, a 10 MB file
    path = tmp_path / "big.csv"
    long_forecast(scenarios=scenarios, steps=steps).to_csv(path, index=False)
    stored = scenarios * steps * 8 * 2
    tracemalloc.start()
    try:
        table = read_forecast(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.row_count == scenarios * steps
    assert peak <= 3 * stored, f"peak {peak / 1e6:.1f} MB for {stored / 1e6:.1f} MB of values"
    assert os.path.getsize(path) > 3 * stored  # the file itself was never held
