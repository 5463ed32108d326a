"""Benchmark: the same verbs locally and through a ``hydrorl serve`` process on loopback.

Run: ``python benchmarks/service.py [--scenarios 10] [--requests 200] [--repeat 3]``

On one fresh SQLite file it starts ``hydrorl serve`` on a free port (a token made by
``hydrorl token create``), then times, best of ``--repeat``:

* upload: a CSV of ``--scenarios`` demo scenarios (5 years, 3-hourly), stored values/s,
  ``Workbench.upload_forecast`` against ``RemoteWorkbench.upload_forecast``;
* forecast data: ``forecast_data`` of the whole forecast, values/s;
* small requests: ``systems()`` one after another, requests/s (the floor of a dashboard's
  refresh: token check, one query, an Arrow frame);
* curves: a run of 2 agents with ``--points`` points each (written as agents write them), the
  whole read (points/s) and the monitor's steady state, a read after the watermark that
  finds 100 new points (reads/s);
* ``agents()`` from 10 concurrent clients (threads, each with its own workbench or client),
  requests/s of them all;
* the long poll: ``wait(run)`` in a thread while the run's status is set to completed; the
  time from that commit to ``wait`` returning (local: polling every 0.25 s, as the server
  does for a long poll), best and median;
* the server's peak memory (VmHWM) grown by the timed uploads (after one that imports the
  readers), per MB of the file: the body streams to a spooled file, read as a local upload
  reads its file.

It prints each figure and the remote/local ratio (the issue's aim: >= 0.5 for uploads and
curves).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import hydrorl
from hydrorl import demo
from hydrorl.service.client import RemoteWorkbench


def best(repeat: int, work: Callable[[int], None]) -> float:
    """The shortest of ``repeat`` runs of ``work(i)``, in seconds."""
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        work(i)
        times.append(time.perf_counter() - start)
    return min(times)


def _peak_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    raise RuntimeError(f"no VmHWM for process {pid}")


def _written_run(wb: hydrorl.Workbench, points: int) -> int:
    """A running training run (owned by this process: no reaper fails it) of 2 finished agents
    with ``points`` episode rewards each."""
    import sqlalchemy as sa

    from hydrorl.db import models
    from hydrorl.jobs.liveness import owner_columns

    project = wb.create_project(demo.DEMO_SYSTEM_NAME, "bench", {"algorithm": "PPO"})

    def write(session: sa.orm.Session) -> int:
        forecast = session.scalars(sa.select(models.Forecast).order_by(models.Forecast.id)).first()
        run = models.ProjectRun(
            project=session.get(models.Project, project.id),
            forecast=forecast,
            kind=models.RunKind.TRAIN,
            status=models.Status.RUNNING,
            settings={"algorithm": "PPO", "timesteps": points},
            **owner_columns(os.getpid()),
        )
        run.agents = [models.Agent(index=i, seed=i, status=models.Status.COMPLETED) for i in (0, 1)]
        session.add(run)
        session.flush()
        for agent in run.agents:
            data = models.TrainStepData(agent_id=agent.id, name="episode_reward")
            session.add(data)
            session.flush()
            session.execute(
                sa.insert(models.TrainStepValue),
                [
                    {"data_id": data.id, "timestep": t, "wall_time": 1e9 + t, "value": float(t)}
                    for t in range(points)
                ],
            )
        return int(run.id)

    return wb.database.run_write(write)


def _concurrent(open_bench: Callable[[], object], run_id: int, clients: int, calls: int) -> float:
    """Requests/s of ``clients`` threads each calling ``agents(run_id)`` ``calls`` times."""
    benches = [open_bench() for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(bench: object) -> None:
        start.wait()
        for _ in range(calls):
            bench.agents(run_id)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=client, args=(b,)) for b in benches]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    for bench in benches:
        bench.close()  # type: ignore[attr-defined]
    return clients * calls / seconds


def _wait_latency(wb: hydrorl.Workbench, bench: object, run_id: int, times: int) -> list[float]:
    """Seconds from the commit that ends the run to ``bench.wait(run_id)`` returning."""
    from hydrorl.db import models

    def set_status(status: models.Status) -> float:
        def write(session: object) -> None:
            session.get(models.ProjectRun, run_id).status = status  # type: ignore[attr-defined]

        wb.database.run_write(write)
        return time.perf_counter()

    found = []
    for _ in range(times):
        set_status(models.Status.RUNNING)
        returned: list[float] = []

        def wait(returned: list[float] = returned) -> None:
            bench.wait(run_id, 60, 0.25)  # type: ignore[attr-defined]
            returned.append(time.perf_counter())

        waiter = threading.Thread(target=wait)
        waiter.start()
        # The wait under way (a long poll held, or polling), the change at a random phase of
        # its 0.25 s polls.
        time.sleep(1.0 + random.uniform(0.0, 0.25))
        committed = set_status(models.Status.COMPLETED)
        waiter.join()
        found.append(returned[0] - committed)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hydrorl-service-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    env = {**os.environ, "HYDRORL_DATABASE_URL": url, "HYDRORL_HOME": str(folder)}
    wb = hydrorl.Workbench(url)
    wb.create_system(demo.demo_system())
    system = demo.DEMO_SYSTEM_NAME
    table = demo.demo_forecast(seed=0, scenarios=args.scenarios, years=5)
    csv = folder / "forecast.csv"
    table.to_frame().to_csv(csv, index=False)
    values = table.row_count * 2
    print(
        f"forecast: {args.scenarios} scenarios x {table.n_steps} steps, {values:,} values, "
        f"CSV {csv.stat().st_size / 1e6:.1f} MB"
    )

    token = subprocess.run(
        [sys.executable, "-m", "hydrorl", "token", "create", "bench"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "hydrorl", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        remote = RemoteWorkbench(base, token)
        figures: dict[str, tuple[float, float]] = {}

        def upload(bench: object, tag: str) -> Callable[[int], None]:
            def work(i: int) -> None:
                bench.upload_forecast(  # type: ignore[attr-defined]
                    system, csv, f"{tag} {i}", allow_duplicate=True
                )

            return work

        local_s = best(args.repeat, upload(wb, "local"))
        upload(remote, "warm-up")(0)  # (the server's first upload imports the readers)
        before_mb = _peak_mb(server.pid)
        remote_s = best(args.repeat, upload(remote, "remote"))
        grown = (_peak_mb(server.pid) - before_mb) / (csv.stat().st_size / 1e6)
        figures["upload values/s"] = (values / local_s, values / remote_s)

        local_s = best(args.repeat, lambda _i: wb.forecast_data("local 0"))
        remote_s = best(args.repeat, lambda _i: remote.forecast_data("local 0"))
        figures["forecast_data values/s"] = (values / local_s, values / remote_s)

        def requests(bench: object) -> Callable[[int], None]:
            def work(_i: int) -> None:
                for _ in range(args.requests):
                    bench.systems()  # type: ignore[attr-defined]

            return work

        local_s = best(args.repeat, requests(wb))
        remote_s = best(args.repeat, requests(remote))
        figures["systems() requests/s"] = (args.requests / local_s, args.requests / remote_s)

        run_id = _written_run(wb, args.points)
        n = 2 * args.points
        local_s = best(args.repeat, lambda _i: wb.curves(run_id))
        remote_s = best(args.repeat, lambda _i: remote.curves(run_id))
        figures["curves, whole read, points/s"] = (n / local_s, n / remote_s)
        reads = 50

        def steady(bench: object) -> Callable[[int], None]:
            # The monitor's refresh: from a watermark 100 points (50 per agent) behind the end.
            mark = {i: (i + 1) * args.points - 50 for i in range(2)}  # ids are agent-major

            def work(_i: int) -> None:
                for _ in range(reads):
                    got = bench.curves(run_id, after_id=mark)  # type: ignore[attr-defined]
                    assert len(got) == 100, len(got)

            return work

        local_s = best(args.repeat, steady(wb))
        remote_s = best(args.repeat, steady(remote))
        figures["curves after watermark, reads/s"] = (reads / local_s, reads / remote_s)

        clients, calls = 10, 20
        local_rate = _concurrent(lambda: hydrorl.Workbench(url), run_id, clients, calls)
        remote_rate = _concurrent(lambda: RemoteWorkbench(base, token), run_id, clients, calls)
        figures["agents(), 10 clients, req/s"] = (local_rate, remote_rate)

        print(f"{'':34}{'local':>14}{'remote':>14}{'remote/local':>14}")
        for name, (local, far) in figures.items():
            print(f"{name:34}{local:14,.0f}{far:14,.0f}{far / local:14.2f}")
        local_wait = _wait_latency(wb, wb, run_id, args.repeat + 2)
        remote_wait = _wait_latency(wb, remote, run_id, args.repeat + 2)
        print(
            "wait(run) returning after the status change, s (best / median): "
            f"local {min(local_wait):.3f} / {statistics.median(local_wait):.3f}, "
            f"remote {min(remote_wait):.3f} / {statistics.median(remote_wait):.3f}"
        )
        print(f"server peak memory grown by the uploads: {grown:.2f} MB per MB of file")
        remote.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        wb.close()


if __name__ == "__main__":
    main()
