"""The demo forecast's bound, benchmark and naive rules side by side.

Run: ``python benchmarks/baselines.py [--scenarios 20] [--years 5]``

For every scenario of the demo forecast (3-hourly), from half-full reservoirs,
it prints the total value (revenue + end water value) of the perfect-foresight
bound, the SDP water-value benchmark (water values computed on the same
forecast) and the two naive rules, then the mean and the mean share of the
bound.
"""

from __future__ import annotations

import argparse
import time

from hydrorl.comparison import baseline_table, summary_table
from hydrorl.demo import demo_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    problem = demo_problem(scenarios=args.scenarios, years=args.years)
    table = baseline_table(problem, progress=True)
    per_scenario = table.set_index("scenario") / 1e6
    print("Total value per scenario (MEUR):\n")
    print(per_scenario.round(2).to_string())
    print("\nMeans:\n")
    print(summary_table(table).round(2).to_string(index=False))
    print(
        f"\n({args.scenarios} scenarios x {args.years} years, {time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
