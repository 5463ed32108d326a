"""Benchmark: perfect-foresight LP solve time per scenario and its growth with the horizon.

Run: ``python benchmarks/bound.py [--scenarios 2]``

Solves the demo cascade's LP (3-hourly) for horizons of 1, 2 and 5 years on the
first scenarios of the demo forecast and prints the solve time per scenario, the
LP's size and the growth against the 1-year solve measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics

from hydrorl.baselines import perfect_foresight
from hydrorl.demo import demo_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=2)
    args = parser.parse_args()
    problem = demo_problem(scenarios=args.scenarios)
    steps_per_year = 8 * 365
    print(f"{'horizon':>8} {'steps':>7} {'variables':>10} {'s/scenario':>11} {'x 1 year':>9}")
    base = None
    for years in (1, 2, 5):
        part = problem.horizon(years * steps_per_year + (1 if years == 5 else 0) * 8)
        times = [perfect_foresight(part, s).solve_seconds for s in range(args.scenarios)]
        median = statistics.median(times)
        base = base or median
        width = 2 * part.cascade.n_reservoirs + part.cascade.n_stations
        print(
            f"{years:>6} y {part.n_steps:>7} {part.n_steps * width:>10,} {median:>11.2f} "
            f"{median / base:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
