"""The agents of a run on a Ray cluster: the story of the local launcher, on Ray.

A local Ray head (``ray start --head``: its own short temp dir, 2 CPUs, no dashboard UI,
loopback) stands for a cluster; this process connects to it as a notebook on a laptop
would. A run is switched to Ray by one setting (``executor``); then it trains with its
curves in the database, stops within 5 s, fails an agent whose Ray worker is killed -9
with a reason, and resumes from the stored checkpoints, all on the cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import hydrorl
from tests import postgres
from tests.conftest import TINY_TRAINING, kill_processes_of
from tests.test_runs import learning, wait_for

TINY = TINY_TRAINING


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cluster_processes(temp_dir: str) -> list[psutil.Process]:
    """The processes of the Ray cluster kept in ``temp_dir`` (its daemons name it on their
    command lines) and their children (the agents, actors and Ray's own workers)."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or ()):
            found[process.pid] = process
            for child in process.children(recursive=True):
                found[child.pid] = child
    return list(found.values())


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head of 2 CPUs on loopback; its address (``HOST:PORT``)."""
    temp_dir = tempfile.mkdtemp(prefix="hr-ray-", dir="/tmp")  # (a socket path is short)
    port = _free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",  # (its token mode needs a token file on every client)
        "HYDRORL_HOME": str(Path(temp_dir) / "home"),  # the nodes' own files
        "HYDRORL_HEARTBEAT_S": "0.5",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("HYDRORL_DATABASE_URL", None)
    started = subprocess.run(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        for process in _cluster_processes(temp_dir):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """On Ray the story runs against PostgreSQL, the database a cluster's nodes share (an
    SQLite file is one machine's; the local launcher's tests run on both)."""
    return postgres.new_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def demo(wb: hydrorl.Workbench, ray_head: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    wb.setup_demo(scenarios=2, years=1)
    yield wb
    kill_processes_of(wb)


def test_a_run_switched_to_ray_by_one_setting_trains_and_evaluates_there(
    demo: hydrorl.Workbench, ray_head: str
) -> None:
    executor = f"ray:{ray_head}"
    run = demo.start_training("Demo project", "Demo forecast", **TINY, executor=executor)
    info = demo.wait(run.id, timeout=300)
    assert info.status == "completed", (info.status_reason, info.error)
    assert demo.run(run.id).settings["executor"] == executor  # recorded: a resume goes there too
    agents = demo.agents(run.id)
    assert agents["status"].tolist() == ["completed", "completed"]
    assert agents["timesteps_done"].tolist() == [1024, 1024]
    for path in agents["checkpoint_path"]:
        assert Path(path).is_file()
    curves = demo.curves(run.id)
    assert set(curves["agent"]) == {0, 1} and len(curves) >= 2 * 1024 // 32
    # The agents ran in Ray's worker processes, not as children of this one.
    with demo.database.read() as session:
        from hydrorl.db import models

        pids = [a.pid for a in session.get(models.ProjectRun, run.id).agents]
    assert all(pid and pid != os.getpid() for pid in pids)
    # Its evaluation goes to the cluster too (the run's executor, recorded).
    evaluation = demo.evaluate(run.id)
    info = demo.wait(evaluation.id, timeout=300)
    assert info.status == "completed", (info.status_reason, info.error)
    assert demo.run(evaluation.id).settings["executor"] == executor
    assert len(demo.episodes(evaluation.id)) == 2


def test_an_unknown_executor_is_refused_before_any_process(demo: hydrorl.Workbench) -> None:
    with pytest.raises(hydrorl.ValidationError, match="names no executor"):
        demo.start_training("Demo project", "Demo forecast", **TINY, executor="slurm:x")
    assert demo.runs().empty


def test_stop_on_ray_is_honoured_within_five_seconds(
    demo: hydrorl.Workbench, ray_head: str
) -> None:
    run = demo.start_training(
        "Demo project", "Demo forecast", **{**TINY, "timesteps": 10**7}, executor=f"ray:{ray_head}"
    )
    learning(demo, run.id)
    asked = time.monotonic()
    demo.stop(run.id)
    wait_for(lambda: demo.run(run.id).status == "stopped", 5.0, "the run to stop")
    assert time.monotonic() - asked <= 5.0
    assert demo.agents(run.id)["status"].tolist() == ["stopped", "stopped"]


def test_a_ray_worker_killed_fails_its_agent_with_a_reason_and_the_run_resumes(
    demo: hydrorl.Workbench, ray_head: str
) -> None:
    run = demo.start_training(
        "Demo project", "Demo forecast", **{**TINY, "timesteps": 4096}, executor=f"ray:{ray_head}"
    )
    agents = learning(demo, run.id)
    os.kill(int(agents.loc[0, "pid"]), signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: demo.agents(run.id).loc[0, "status"] == "failed", 30.0, "the failure")
    assert time.monotonic() - killed <= 30.0

    def told() -> str | None:  # the supervisor, told by Ray, says how it ended
        text = demo.agents(run.id).loc[0, "status_reason"]
        return text if "Ray" in text else None

    reason = wait_for(told, 60.0, "the supervisor's reason")
    assert reason.startswith("agent process ended without reporting (Ray: "), reason
    info = demo.wait(run.id, timeout=120)
    assert info.status == "failed" and "agent 0 failed" in info.status_reason
    before = demo.agents(run.id).loc[0, "timesteps_done"]
    assert 0 < before < 4096
    demo.resume(run.id)
    info = demo.wait(run.id, timeout=300)
    assert info.status == "completed", (info.status_reason, info.error)
    assert demo.agents(run.id)["timesteps_done"].tolist() == [4096, 4096]
    updates = demo.curves(run.id, "n_updates")
    for _, points in updates.groupby("agent"):  # it went on from its checkpoint
        assert points["timestep"].is_unique and points["value"].is_monotonic_increasing
