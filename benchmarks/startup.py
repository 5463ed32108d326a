"""Benchmark: from Start to the first points of the live monitor, with the default recipe.

Run: ``python benchmarks/startup.py [--scenarios 20 --years 5 --agents N]``

A fresh database with the demo (the full 20 scenarios x 5 years by default), a run of the
demo project's default recipe started through the workbench as the dashboard's Start does
(real processes), its agents' status reasons polled every 0.2 s: prints each phase as it
is first seen, and the seconds from Start to the first reference line (bound/SDP/planner
on the validation episodes), the first validation point and the first episode reward.
The yardstick, run in this process beforehand: the SDP water values of the same forecast
(the largest piece of an agent's start-up); the figures are also printed as multiples of it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--agents", type=int, default=None, help="default: the project's")
    parser.add_argument("--limit-s", type=float, default=600.0)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hydrorl-startup-"))
    os.environ["HYDRORL_HOME"] = str(home)
    os.environ.setdefault("SB3_LOGDIR", str(home / "sb3"))
    import hydrorl
    from hydrorl.baselines import water_values

    wb = hydrorl.Workbench(f"sqlite:///{home / 'startup.db'}")
    demo = wb.setup_demo(scenarios=args.scenarios, years=args.years)
    project, forecast = demo["project"], demo["forecast"]
    start = time.perf_counter()
    water_values(wb.problem(forecast))
    yardstick = time.perf_counter() - start
    print(f"yardstick: the SDP water values in this process, {yardstick:.1f} s")

    overrides = {} if args.agents is None else {"agents": args.agents}
    start = time.perf_counter()
    run = wb.start_training(project, forecast, **overrides)
    seen: dict[str, float] = {}
    firsts: dict[str, float] = {}
    wanted = {
        "reference line": lambda name: name.startswith("reference/"),
        "validation point": lambda name: name == "validation/share_of_bound",
        "episode reward": lambda name: name == "episode_reward",
    }
    try:
        while len(firsts) < len(wanted):
            now = time.perf_counter() - start
            if now > args.limit_s:
                raise SystemExit(f"no {set(wanted) - set(firsts)} after {args.limit_s:.0f} s")
            for _, agent in wb.agents(run.id).iterrows():
                phase = _phase(str(agent["status_reason"] or agent["status"]))
                key = f"agent {agent['index']}: {phase}"
                if key not in seen:
                    seen[key] = now
                    print(f"{now:6.1f} s  {key}")
            names = set(wb.curves(run.id, None)["series"])
            for label, match in wanted.items():
                if label not in firsts and any(match(n) for n in names):
                    firsts[label] = now
                    print(f"{now:6.1f} s  first {label}")
            if wb.run(run.id).done:
                break
            time.sleep(0.2)
    finally:
        wb.stop(run.id)
    for label, seconds in firsts.items():
        print(f"first {label}: {seconds:.1f} s after Start ({seconds / yardstick:.2f} x yardstick)")


def _phase(reason: str) -> str:
    """A status reason without its percentage (a phase is printed once)."""
    head, _, tail = reason.rpartition(", ")
    return head if tail.endswith("%") else reason


if __name__ == "__main__":
    main()
