"""Benchmark: a run's agents through the local launcher and through Ray, and what each agent
costs the database (issue 16).

1. **Overhead of Ray** on this machine: the same run (``--agents`` agents of PPO, no guide,
   no imitation, ``--timesteps`` each) once with the local launcher, the yardstick, and once
   on a local Ray head of all the machine's CPUs (``ray start --head``, as the tests start
   it); ratios Ray/local of env-steps/s (all agents' steps over the run's wall time) and of
   the time from ``start_training`` to the first curve point.
2. **Database traffic per agent**, measured on the local run: curve rows/s and write
   transactions/s of one learning agent (its flushes, heartbeats and checkpoints, counted
   from the database's own rows and the agent's settings).
3. **What one database carries**: ``--writers`` processes each writing curve points the way
   an agent does (``PointWriter.flush`` of one flush's worth of rows, then the stop poll's
   read), as fast as the database takes them, for ``--seconds``; the sustained flushes/s and
   rows/s divided by one agent's gives the number of agents one database carries, on paper.

``--database`` names a PostgreSQL server URL (``postgresql+psycopg://...``; a database is
created on it); default: an SQLite file (one machine only: a cluster shares PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hydrorl  # noqa: E402
from hydrorl import settings as hydro_settings  # noqa: E402
from hydrorl.db import Database, models  # noqa: E402

RUN = {
    "algorithm": "PPO",
    "guide": "none",
    "imitation_scenarios": 0,
    "n_envs": 4,
    "episode_steps": 64,
    "hyperparameters": {"n_steps": 128, "batch_size": 128, "n_epochs": 2},
    "validation_scenarios": 0,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _timed_run(wb: hydrorl.Workbench, agents: int, timesteps: int, executor: str) -> dict:
    """Start the run, poll for its first curve point, wait for it; the figures."""
    began = time.monotonic()
    run = wb.start_training(
        "Demo project",
        "Demo forecast",
        **RUN,
        agents=agents,
        timesteps=timesteps,
        executor=executor,
    )
    first = None
    while True:
        info = wb.run(run.id)
        if first is None and not wb.curves(run.id, "episode_reward").empty:
            first = time.monotonic() - began
        if info.status in ("completed", "failed", "stopped"):
            break
        time.sleep(0.2)
    took = time.monotonic() - began
    if info.status != "completed":
        raise RuntimeError(f"run {run.id} on {executor}: {info.status}: {info.status_reason}")
    return {
        "run": run.id,
        "seconds": took,
        "first_point_s": first or took,
        "steps/s": agents * timesteps / took,
    }


def _agent_traffic(wb: hydrorl.Workbench, run_id: int) -> tuple[float, float]:
    """One agent's curve rows/s and write transactions/s over its learning (mean of the run's
    agents): rows from the database; transactions = flushes (every 2 s) + heartbeats + the
    checkpoints' writes, from the settings it ran with."""
    with wb.database.read() as session:
        run = session.get(models.ProjectRun, run_id)
        assert run is not None
        spans = [(a.finished_at - a.started_at).total_seconds() for a in run.agents]
        rows = session.scalar(
            sa.select(sa.func.count(models.TrainStepValue.id))
            .join(models.TrainStepData)
            .join(models.Agent)
            .where(models.Agent.run_id == run_id)
        )
        checkpoint_s = float(run.settings.get("checkpoint_seconds", 30.0))
    seconds = sum(spans)
    writes = 1 / 2.0 + 1 / hydro_settings.heartbeat_seconds() + 1 / checkpoint_s
    return float(rows) / seconds, writes


def _writer(url: str, agent_id: int, rows: int, seconds: float, out: multiprocessing.Queue) -> None:
    from hydrorl.training.points import PointWriter, stop_reason

    db = Database(url)
    writer = PointWriter(db, agent_id)
    flushes, step, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(rows):
            writer.add("episode_reward", step, float(step))
            step += 1
        writer.flush(timesteps_done=step)
        stop_reason(db, agent_id, 0, os.getppid())
        flushes += 1
    db.dispose()
    out.put((flushes, flushes * rows))


def _capacity(
    url: str, wb: hydrorl.Workbench, writers: int, rows: int, seconds: float
) -> tuple[float, float]:
    """Sustained flushes/s and rows/s of ``writers`` processes writing like agents."""
    project = wb.create_project("Demo river", f"capacity {uuid.uuid4().hex[:6]}", {})

    def agents(session: sa.orm.Session) -> list[int]:
        forecast = session.scalars(sa.select(models.Forecast)).first()
        run = models.ProjectRun(
            project=session.get(models.Project, project.id),
            forecast=forecast,
            kind=models.RunKind.TRAIN,
            status=models.Status.COMPLETED,
            settings={},
        )
        run.agents = [
            models.Agent(index=i, seed=i, status=models.Status.COMPLETED) for i in range(writers)
        ]
        session.add(run)
        session.flush()
        return [a.id for a in run.agents]

    ids = wb.database.run_write(agents)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [context.Process(target=_writer, args=(url, i, rows, seconds, out)) for i in ids]
    for p in processes:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in processes]
    for p in processes:
        p.join()
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results) / seconds


def _ray_head(temp_dir: str, home: Path) -> tuple[str, subprocess.CompletedProcess]:
    port = _free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "HYDRORL_HOME": str(home),
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
            f"--num-cpus={os.cpu_count()}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if started.returncode:
        raise RuntimeError(started.stdout + started.stderr)
    return f"127.0.0.1:{port}", started


def _stop_ray(temp_dir: str) -> None:
    import psutil
    import ray

    ray.shutdown()
    for process in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or ()):
            for p in [*process.children(recursive=True), process]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--timesteps", type=int, default=8192)
    parser.add_argument("--database", default="", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hr-scale-", dir="/tmp"))
    os.environ["HYDRORL_HOME"] = str(folder / "home")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    if args.database:
        name = f"scale_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(f"{args.database}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        url = f"{args.database}/{name}"
    else:
        url = f"sqlite:///{folder / 'scale.db'}"
    wb = hydrorl.connect(url)
    wb.setup_demo(scenarios=4, years=1)
    print(
        f"database: {url.split('@')[-1]}; {args.agents} agents x {args.timesteps} steps, "
        f"{os.cpu_count()} CPUs"
    )

    local = _timed_run(wb, args.agents, args.timesteps, "local")
    temp_dir = str(folder / "ray")
    address, _ = _ray_head(temp_dir, folder / "ray-home")
    try:
        on_ray = _timed_run(wb, args.agents, args.timesteps, f"ray:{address}")
    finally:
        _stop_ray(temp_dir)
    print(f"{'':28}{'local':>10}{'Ray':>10}{'Ray/local':>11}")
    for key in ("steps/s", "first_point_s"):
        print(f"{key:28}{local[key]:10.1f}{on_ray[key]:10.1f}{on_ray[key] / local[key]:11.2f}")
    print(f"{'run wall time, s':28}{local['seconds']:10.1f}{on_ray['seconds']:10.1f}")

    rows_s, writes_s = _agent_traffic(wb, local["run"])
    flushes, rows = _capacity(url, wb, args.writers, max(1, round(rows_s * 2.0)), args.seconds)
    agents = min(flushes / writes_s, rows / rows_s)  # every write an agent makes counted as a flush
    print(f"one agent: {rows_s:.1f} curve rows/s, about {writes_s:.2f} write transactions/s")
    print(
        f"{args.writers} writers like agents: {flushes:.0f} flushes/s, {rows:,.0f} rows/s "
        f"-> one database carries about {agents:,.0f} agents writing their curves "
        f"(each agent's flushes, heartbeats and checkpoints counted as flushes)"
    )
    wb.close()


if __name__ == "__main__":
    main()
