"""Benchmark: the same verbs locally and through a ``hydrorl serve`` process on loopback.

Run: ``python benchmarks/service.py [--scenarios 10] [--requests 200] [--repeat 3]``

On one fresh SQLite file it starts ``hydrorl serve`` on a free port (a token made by
``hydrorl token create``), then times, best of ``--repeat``:

* upload: a CSV of ``--scenarios`` demo scenarios (5 years, 3-hourly), stored values/s,
  ``Workbench.upload_forecast`` against ``RemoteWorkbench.upload_forecast``;
* forecast data: ``forecast_data`` of the whole forecast, values/s;
* small requests: ``systems()`` one after another, requests/s (the floor of a dashboard's
  refresh: token check, one query, an Arrow frame).

It prints each figure and the remote/local ratio (the issue's aim: >= 0.5 for uploads).
Curves after_id, agents() with 10 concurrent clients and the first byte of a long poll
are not measured yet.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
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
        remote_s = best(args.repeat, upload(remote, "remote"))
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

        print(f"{'':28}{'local':>14}{'remote':>14}{'remote/local':>14}")
        for name, (local, far) in figures.items():
            print(f"{name:28}{local:14,.0f}{far:14,.0f}{far / local:14.2f}")
        remote.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        wb.close()


if __name__ == "__main__":
    main()
