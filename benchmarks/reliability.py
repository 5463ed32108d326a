"""Benchmark: the reliability drills of issue 12, with the figures a user would notice.

Run: ``python benchmarks/reliability.py [--backend sqlite postgresql] [--burners 2]``
(from the repository root; PostgreSQL uses a private throw-away cluster as the tests do).

On each backend, beside ``--burners`` CPU-bound processes:

1. **A busy run**: a run of 5 tiny agents learns while 3 reader processes follow its
   curves incrementally (watermark per agent) and a CLI upload of a large CSV
   (``--upload-mb``) writes into the same database.  Reported: whether the run was
   failed (it must not be), the upload's time and peak memory per MB of file, the
   points the readers missed (must be 0), and the stop latency (``wb.stop`` until the
   run says ``stopped``; must be <= 5 s).
2. **Deaths**: kill -9 of an agent, of the supervisor and of the whole process group of
   a learning run; reported: how long an open workbench (the dashboard's and the
   notebook's view) takes to show it (must be <= 30 s).

Timings on these machines are noisy, so each is printed beside a yardstick measured in
the same process at the same moment: the time a fresh ``python -c "import torch"``
takes (how loaded the machine is).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hydrorl  # noqa: E402
from hydrorl.db import models  # noqa: E402
from tests import postgres  # noqa: E402
from tests.conftest import TINY_TRAINING, kill_processes_of  # noqa: E402
from tests.test_reliability import FOLLOWER as READER  # noqa: E402

FIVE = {**TINY_TRAINING, "agents": 5, "n_envs": 2, "timesteps": 10**7}

UPLOADER = textwrap.dedent("""
    import resource, subprocess, sys, time
    started = time.monotonic()
    code = subprocess.call([sys.argv[1], "upload", "Demo river", sys.argv[2],
                            "--name", sys.argv[3]])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(code, time.monotonic() - started, peak_kib)
""")


def yardstick() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.monotonic() - started


@contextlib.contextmanager
def burning(n: int) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def write_big_csv(path: Path, megabytes: float) -> None:
    """A demo-shaped long CSV of about ``megabytes`` MB (3-hourly, as many scenarios as fit)."""
    steps = 8 * 365
    rng = np.random.default_rng(0)
    times = pd.date_range("2030-01-01", periods=steps, freq="3h").strftime("%Y-%m-%dT%H:%M")
    per_scenario = 48 * steps  # bytes of one scenario's rows, about
    scenarios = max(1, int(megabytes * 1e6 / per_scenario))
    with open(path, "w") as f:
        f.write("time,scenario,price,inflow\n")
        for s in range(scenarios):
            price = rng.normal(45, 12, steps)
            inflow = rng.gamma(2, 30, steps)
            f.writelines(
                f"{t},B{s:03d},{p:.6f},{q:.6f}\n"
                for t, p, q in zip(times, price, inflow, strict=True)
            )


def learning(wb: hydrorl.Workbench, run_id: int, n: int, timeout: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        agents = wb.agents(run_id)
        if wb.run(run_id).done:
            raise RuntimeError(f"run {run_id} ended before learning: {wb.run(run_id)}")
        if ((agents["status"] == "running") & agents["checkpoint_path"].notna()).sum() >= n:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"agents of run {run_id} not learning after {timeout} s")


def upload(wb: hydrorl.Workbench, csv: Path, name: str) -> tuple[int, float, int]:
    """``hydrorl upload`` of ``csv`` in a fresh process: exit code, seconds, peak KiB."""
    done = subprocess.run(
        [sys.executable, "-c", UPLOADER, str(Path(sys.executable).with_name("hydrorl")), str(csv)]
        + [name],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HYDRORL_DATABASE_URL": wb.url},
    )
    code, seconds, peak_kib = done.stdout.splitlines()[-1].split()  # after the CLI's own
    return int(code), float(seconds), int(peak_kib)


def busy_run(wb: hydrorl.Workbench, csv: Path) -> dict[str, float | str]:
    run = wb.start_training("Demo project", "Demo forecast", **FIVE)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(run.id)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "HYDRORL_DATABASE_URL": wb.url},
        )
        for _ in range(3)
    ]
    start_up = learning(wb, run.id, 5)
    print(f"  5 agents learning after {start_up:.0f} s; uploading", flush=True)
    code, upload_s, peak_kib = upload(wb, csv, "big upload")
    # The same command on a one-scenario file: the interpreter's and the libraries' own memory.
    small = csv.with_name("small.csv")
    small.write_text("".join(csv.open().readlines()[: 8 * 365 + 1]))
    _, _, base_kib = upload(wb, small, "small upload")
    print(f"  upload done in {upload_s:.0f} s; stopping", flush=True)
    time.sleep(3)  # a few more curve points after the upload
    status_after_upload = wb.run(run.id).status
    asked = time.monotonic()
    wb.stop(run.id)
    while wb.run(run.id).status != "stopped" and time.monotonic() - asked < 120:
        time.sleep(0.05)
    stop_s = time.monotonic() - asked
    seen = [int(p.communicate(timeout=120)[0]) for p in readers]
    total = wb.curve_points(run.id, None)
    return {
        "start-up of 5 agents (s)": round(start_up, 1),
        "run status after the upload": status_after_upload,
        "upload exit code": code,
        "upload (s)": round(upload_s, 1),
        "upload peak memory (MiB)": round(peak_kib / 1024),
        "  of it for the file, per MB of file": round(
            (peak_kib - base_kib) * 1024 / csv.stat().st_size, 2
        ),
        "final run status": wb.run(run.id).status,
        "stop latency, 5 agents (s)": round(stop_s, 2),
        "points lost by readers": max(total - s for s in seen),
    }


def death(wb: hydrorl.Workbench, victim: str) -> float:
    run = wb.start_training(
        "Demo project", "Demo forecast", **{**TINY_TRAINING, "timesteps": 10**7}
    )
    learning(wb, run.id, 2)
    with wb.database.read() as session:
        supervisor = session.get(models.ProjectRun, run.id).pid
    if victim == "agent":
        os.kill(int(wb.agents(run.id).loc[0, "pid"]), signal.SIGKILL)
    elif victim == "supervisor":
        os.kill(supervisor, signal.SIGKILL)
    else:
        os.killpg(supervisor, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 120:
        agents, info = wb.agents(run.id), wb.run(run.id)
        if (victim == "agent" and agents.loc[0, "status"] == "failed") or info.status == "failed":
            break
        time.sleep(0.1)
    seen_s = time.monotonic() - killed
    print(f"  kill -9 {victim}: seen after {seen_s:.1f} s", flush=True)
    wb.stop(run.id)
    wb.wait(run.id, timeout=60)
    return seen_s


def drills(url: str, csv: Path) -> dict[str, float | str]:
    wb = hydrorl.connect(url)
    wb.setup_demo(scenarios=2, years=1)
    try:
        figures = busy_run(wb, csv)
        for victim in ("agent", "supervisor", "group"):
            seen = round(death(wb, victim), 2)
            figures[f"kill -9 {victim}: seen by an open reader after (s)"] = seen
    finally:  # whatever went wrong, no process of the drills outlives them
        kill_processes_of(wb)
        wb.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--upload-mb", type=float, default=100.0)
    args = parser.parse_args()
    os.environ["HYDRORL_REAP_INTERVAL_S"] = "1"
    with tempfile.TemporaryDirectory(
        prefix="hydrorl-reliability-", ignore_cleanup_errors=True
    ) as tmp:
        os.environ["HYDRORL_HOME"] = str(Path(tmp) / "home")
        csv = Path(tmp) / "big.csv"
        write_big_csv(csv, args.upload_mb)
        print(f"upload file: {csv.stat().st_size / 1e6:.0f} MB")
        results = {}
        with contextlib.ExitStack() as stack:
            for backend in args.backend:
                if backend == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'reliability.db'}"
                else:
                    url = postgres.new_database(stack.enter_context(postgres.cluster()))
                with burning(args.burners):
                    before = yardstick()
                    figures = drills(url, csv)
                    figures["yardstick: import torch (s)"] = round((before + yardstick()) / 2, 1)
                results[backend] = figures
                print(backend, figures, flush=True)
    print(pd.DataFrame(results).to_string())


if __name__ == "__main__":
    main()
