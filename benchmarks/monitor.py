"""Benchmark: the live monitor's refresh cost as the curve table grows, and the first render.

Run: ``python benchmarks/monitor.py``

A run with 5 agents gets 10k, then 100k, then 1M stored TrainStepValues (SQLite);
at each size 50 new points per agent are added and the time of one
``TrainingMonitor.refresh()`` (reading only rows newer than the last seen and
streaming them) is measured, median of 20.  It should stay flat.  It also times
the first render of the whole workbench dashboard (``WorkbenchApp`` to a Bokeh
document) against rendering one empty Panel column, in the same process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import panel as pn
import sqlalchemy as sa

import hydrorl
from hydrorl.db import bulk, models
from hydrorl.ui import TrainingMonitor, WorkbenchApp


def add_points(wb: hydrorl.Workbench, data_ids: list[int], per_agent: int, start: int) -> None:
    def write(session) -> None:  # noqa: ANN001
        n = per_agent
        for data_id in data_ids:
            bulk.insert_columns(
                session,
                models.TrainStepValue.__table__,
                ("data_id", "timestep", "wall_time", "value"),
                (
                    np.full(n, data_id),
                    np.arange(start, start + n),
                    np.full(n, time.time()),
                    np.random.default_rng(start).random(n),
                ),
            )

    wb.database.run_write(write)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hydrorl-bench-") as tmp:
        wb = hydrorl.connect(f"sqlite:///{Path(tmp) / 'monitor.db'}")
        wb.setup_demo(scenarios=2, years=1)

        def create(session) -> tuple[int, list[int]]:  # noqa: ANN001
            run = models.ProjectRun(
                project=session.scalar(sa.select(models.Project)),
                forecast=session.scalar(sa.select(models.Forecast)),
                kind=models.RunKind.TRAIN,
                status=models.Status.RUNNING,
                settings={"timesteps": 10**9},
            )
            run.agents = [
                models.Agent(index=i, seed=i, status=models.Status.RUNNING) for i in range(5)
            ]
            session.add(run)
            session.flush()
            data = [models.TrainStepData(agent_id=a.id, name="episode_reward") for a in run.agents]
            session.add_all(data)
            session.flush()
            return run.id, [d.id for d in data]

        run_id, data_ids = wb.database.run_write(create)
        stored, step = 0, 0
        print(f"{'stored values':>14} {'refresh (ms, median of 20)':>28}")
        for target in (10_000, 100_000, 1_000_000):
            per_agent = (target - stored) // 5
            add_points(wb, data_ids, per_agent, step)
            stored, step = target, step + per_agent
            monitor = TrainingMonitor(wb, run_id=run_id)  # a page opened now: reads everything
            times = []
            for _ in range(20):
                add_points(wb, data_ids, 10, step)
                step += 10
                start = time.perf_counter()
                monitor.refresh()
                times.append(time.perf_counter() - start)
            print(f"{target:>14,} {1e3 * statistics.median(times):>28.1f}", flush=True)

        def render(make) -> float:  # noqa: ANN001
            start = time.perf_counter()
            pn.panel(make()).get_root()
            return time.perf_counter() - start

        empty = min(render(lambda: pn.Column()) for _ in range(3))
        first = render(lambda: WorkbenchApp(wb))
        print(
            f"first render of the workbench: {first:.2f} s ({first / empty:.0f}x an empty "
            f"column, {empty * 1e3:.1f} ms)"
        )


if __name__ == "__main__":
    main()
