"""The command line, run as a user runs it: a real process on a real database file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
