"""Shared fixtures: real SQLite files in a temporary folder, a small system and forecast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hydrorl
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from tests import postgres


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the user's ~/.hydrorl database.
    monkeypatch.setenv("HYDRORL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HYDRORL_DATABASE_URL", raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hydrorl.db"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with postgres.cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, db_path: Path) -> str:
    """The same tests run against every storage backend (a real file, a real server)."""
    if request.param == "sqlite":
        return f"sqlite:///{db_path}"
    return postgres.new_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def wb(database_url: str) -> Iterator[hydrorl.Workbench]:
    workbench = hydrorl.connect(database_url)
    yield workbench
    workbench.close()


def two_reservoir_system(name: str = "Twin") -> HydroSystem:
    return HydroSystem(
        name=name,
        reservoirs=(
            Reservoir("Top", 0.0, 100.0, 0.7),
            Reservoir("Bottom", 1.0, 10.0, 0.3),
        ),
        power_stations=(
            PowerStation("Top PS", "Top", "Bottom", 50.0, 1.0),
            PowerStation("Bottom PS", "Bottom", None, 60.0, 0.4),
        ),
    )


@pytest.fixture
def system(wb: hydrorl.Workbench) -> HydroSystem:
    return wb.create_system(two_reservoir_system())


def long_forecast(
    scenarios: int = 3, steps: int = 16, step: str = "3h", start: str = "2027-01-01", seed: int = 1
) -> pd.DataFrame:
    """A small valid forecast in the long format, scenario-major, with varied floats."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=steps, freq=step)
    frames = [
        pd.DataFrame(
            {
                "time": times,
                "scenario": f"s{s}",
                "price": rng.normal(40.0, 10.0, steps),
                "inflow": rng.gamma(2.0, 20.0, steps),
            }
        )
        for s in range(scenarios)
    ]
    return pd.concat(frames, ignore_index=True)


#: Training settings small enough for tests that start real processes.
TINY_TRAINING = {
    "algorithm": "PPO",
    "imitation_scenarios": 0,  # the planner's LPs take minutes; imitation has tests of its own
    "agents": 2,
    "timesteps": 1024,
    "n_envs": 4,
    "episode_steps": 32,
    "hyperparameters": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "checkpoint_seconds": 0.5,
    "validation_days": 14,  # validated on two weeks of the training scenarios: a second
}


def kill_processes_of(wb: hydrorl.Workbench) -> None:
    """SIGKILL every process a run or agent of ``wb``'s database names as its owner."""
    import contextlib
    import os
    import signal

    import sqlalchemy as sa

    from hydrorl.db import models

    with wb.database.read() as session:
        pids = [
            pid
            for model in (models.ProjectRun, models.Agent)
            for pid in session.scalars(sa.select(model.pid).where(model.pid.is_not(None)))
        ]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
