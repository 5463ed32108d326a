"""The command line, run as a user runs it: a real process on a real database file."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import hydrorl as hydrorl_api
from hydrorl.db import models
from tests.conftest import long_forecast, two_reservoir_system


def hydrorl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hydrorl", *args], capture_output=True, text=True, timeout=300
    )


def test_demo_then_info(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    done = hydrorl("--db", str(db), "demo", "--scenarios", "2", "--years", "1")
    assert done.returncode == 0, done.stderr
    assert "Created: system, forecast, project" in done.stdout
    assert "Forecast: using 'Demo forecast': 2 scenarios x 1 year of 3h steps" in done.stdout
    assert "forecast 'Demo forecast': 2 scenarios x 2920 steps of 3h" in done.stdout
    info = hydrorl("--db", str(db), "info")
    assert info.returncode == 0 and "system 'Demo river': 3 reservoirs" in info.stdout


def test_system_and_upload_commands_and_their_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    two_reservoir_system().to_file(tmp_path / "twin.yaml")
    assert hydrorl("--db", db, "system", str(tmp_path / "twin.yaml")).returncode == 0
    long_forecast().to_csv(tmp_path / "spring.csv", index=False)
    done = hydrorl("--db", db, "upload", "Twin", str(tmp_path / "spring.csv"))
    assert done.returncode == 0, done.stderr
    assert "Uploaded forecast 'spring': 3 scenarios x 16 steps" in done.stdout
    again = hydrorl("--db", db, "upload", "Twin", str(tmp_path / "spring.csv"), "--name", "x")
    assert again.returncode == 2
    assert "hydrorl: error: spring.csv: the same content was uploaded before" in again.stderr
    assert "Traceback" not in again.stderr


def test_baselines_command(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    assert hydrorl("--db", db, "demo", "--scenarios", "2", "--years", "1").returncode == 0
    done = hydrorl("--db", db, "baselines", "Demo forecast", "--scenarios", "1")
    assert done.returncode == 0, done.stderr
    assert "perfect-foresight bound" in done.stdout and "S01" in done.stdout
    assert "benchmark (SDP water values)" in done.stdout and "% of bound" in done.stdout


# ------------------------------------------------------------------ bad input


def assert_refused(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 2, one ``hydrorl: error:`` line naming the problem, and no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "hydrorl: error: " in done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for text in expected:
        assert text in done.stderr, done.stderr


def stored(db: Path) -> dict[str, int]:
    """Row counts of what a database holds (without migrating or creating it)."""
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (
                    models.HydroSystem.__table__,
                    models.Forecast.__table__,
                    models.Project.__table__,
                    models.Upload.__table__,
                    models.TimeDataValue.__table__,
                )
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--scenarios", "0"], "argument --scenarios: must be >= 1, got 0"),
        (["--years", "-1"], "argument --years: must be >= 1, got -1"),
        (["--years", "two"], "argument --years: not a whole number: 'two'"),
        (["--seed", "-3"], "argument --seed: must be >= 0, got -3"),
    ],
)
def test_demo_refuses_bad_numbers_before_writing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    db = tmp_path / "cli.db"
    assert_refused(hydrorl("--db", str(db), "demo", *args), expected)
    assert not db.exists()  # refused by argparse: not even the file is created


def test_setup_demo_checks_its_arguments_and_leaves_no_half_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `hydrorl demo` relies on, through the Python API.
    from hydrorl.db import projects

    db = tmp_path / "api.db"
    with hydrorl_api.connect(str(db)) as wb:
        with pytest.raises(hydrorl_api.ValidationError, match="scenarios must be .* got 0"):
            wb.setup_demo(scenarios=0)
        # (the API's fuzzer asked for 19605 x 3600: 1.5 TiB of arrays, then a MemoryError)
        with pytest.raises(hydrorl_api.ValidationError, match="19605 x 3600 is more than"):
            wb.setup_demo(scenarios=19605, years=3600)

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(projects, "add_project", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            wb.setup_demo(scenarios=1, years=1)
        assert wb.systems().empty and wb.forecasts().empty
    assert set(stored(db).values()) == {0}


def test_upload_of_a_missing_or_broken_file(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    two_reservoir_system().to_file(tmp_path / "twin.yaml")
    assert hydrorl("--db", str(db), "system", str(tmp_path / "twin.yaml")).returncode == 0
    missing = hydrorl("--db", str(db), "upload", "Twin", str(tmp_path / "nope.csv"))
    assert_refused(missing, "nope.csv")
    (tmp_path / "broken.csv").write_bytes(bytes(range(256)) * 40)
    broken = hydrorl("--db", str(db), "upload", "Twin", str(tmp_path / "broken.csv"))
    assert_refused(broken, "broken.csv")
    long_forecast().iloc[:, :2].to_csv(tmp_path / "columns.csv", index=False)
    columns = hydrorl("--db", str(db), "upload", "Twin", str(tmp_path / "columns.csv"))
    assert_refused(columns, "columns.csv", "missing column")
    assert stored(db)["forecast"] == 0 and stored(db)["upload"] == 0


def test_an_unreachable_postgresql_server_is_one_line_without_the_password() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://hydro:Pw-d0-not-show@127.0.0.1:{port}/hydrorl"
    done = hydrorl("--db", url, "info")
    assert_refused(done, "cannot open the database", "hydro:***@127.0.0.1")
    assert "Pw-d0-not-show" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://hydro:Pw-d0-not-show@127.0.0.1:notaport/db", "--db: not a database URL"),
        ("nosuchdb://hydro:Pw-d0-not-show@somewhere/db", "nosuchdb://hydro:***@somewhere/db"),
        ("mysql://hydro:Pw-d0-not-show@somewhere/db", "not installed (No module named"),
    ],
)
def test_a_bad_database_url_is_refused_without_the_password(url: str, expected: str) -> None:
    done = hydrorl("--db", url, "info")
    assert_refused(done, expected)
    assert "Pw-d0-not-show" not in done.stderr + done.stdout


def test_ctrl_c_during_an_upload_leaves_no_partial_forecast(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    two_reservoir_system().to_file(tmp_path / "twin.yaml")
    assert hydrorl("--db", str(db), "system", str(tmp_path / "twin.yaml")).returncode == 0
    # 30 scenarios x 5 years, 3-hourly: 876,480 values, seconds of inserts.
    big = tmp_path / "big.csv"
    long_forecast(scenarios=30, steps=14_608).to_csv(big, index=False)
    # Small committed chunks (877 of them): the upload is interrupted while its values are
    # being inserted, however long this test waits between its looks.  Ctrl-C as in a
    # terminal: a shell's background job (`nohup ... &`, as a CI may be started) hands its
    # children SIGINT ignored, and Python then keeps ignoring it (what made the upload end
    # with exit code 0 in two fresh-clone CI runs, whatever the chunk size).
    upload = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hydrorl",
            "--db",
            str(db),
            "upload",
            "Twin",
            str(tmp_path / "big.csv"),
        ],
        env={**os.environ, "HYDRORL_UPLOAD_CHUNK_ROWS": "1000"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while upload.poll() is None and time.monotonic() < deadline:
        if _values_stored(db) > 0:  # the first chunk is in: 876 more to go
            break
        time.sleep(0.005)
    assert upload.poll() is None, "the upload ended before it could be interrupted"
    upload.send_signal(signal.SIGINT)
    out, err = upload.communicate(timeout=240)
    assert upload.returncode == 130, (out, err)
    assert err.strip() == "hydrorl: interrupted"
    assert stored(db) == {
        "hydro_system": 1,
        "forecast": 0,
        "project": 0,
        "upload": 0,
        "time_data_value": 0,
    }


# ------------------------------------------------------------------ secrets


def test_a_worker_gets_the_database_url_in_its_environment_not_its_command_line(
    database_url: str, tmp_path: Path
) -> None:
    from hydrorl.launchers import LocalLauncher

    if database_url.startswith("postgresql"):  # the test cluster trusts any password
        url = database_url.replace("://postgres@", "://postgres:Pw-d0-not-show@", 1)
        secret = "Pw-d0-not-show"
    else:
        url, secret = database_url, database_url.split("///", 1)[1]
    hydrorl_api.connect(url).close()  # migrated, so the worker only looks for its run
    worker = (
        LocalLauncher().start("evaluate", url, 10**9, tmp_path / "worker.log", detach=False).process
    )
    try:
        # Right after exec the kernel shows an empty command line for a moment.
        command_line = ""
        while not command_line and worker.poll() is None:
            command_line = Path(f"/proc/{worker.pid}/cmdline").read_bytes().decode()
        environment = Path(f"/proc/{worker.pid}/environ").read_bytes().decode()
    finally:
        status = worker.wait(timeout=300)
    assert "hydrorl.worker" in command_line  # read while it ran, not after
    assert secret not in command_line and "://" not in command_line
    assert f"HYDRORL_DATABASE_URL={url}" in environment.split("\0")
    # 3: it reached the database through the environment and found no such run.
    assert status == 3, (tmp_path / "worker.log").read_text()


def _values_stored(db: Path) -> int:
    """Values committed so far (staged ones included), read beside the writer (WAL)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0) as conn:
            return int(conn.execute("SELECT count(*) FROM time_data_value").fetchone()[0])
    except sqlite3.OperationalError:  # the table or file not there yet
        return 0
