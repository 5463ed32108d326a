"""What foresight is worth on the held-out scenarios of the quality benchmark.

Run::

    python benchmarks/foresight.py [--held-out 8] [--jobs 2]

A planner that sees the next L steps' prices and inflows exactly (and values the
water left beyond them with the benchmark's water values) is played over the whole
5-year horizon of each held-out scenario, for L from one step (it knows only the
present, like every policy, the agents included) to the whole horizon (the
perfect-foresight bound), through the same physics as the agents and the benchmark.
It prints, per lookahead, the mean total against the bound and the benchmark: how
much of the gap between the benchmark and the bound is the value of knowing the
future.  The same planner on a forecast made from the calendar and each scenario's
own past (no foresight) shows how much of that gap a policy can still earn
(see :mod:`hydrorl.baselines.foresight`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import problems  # noqa: E402

DAY = 8  # 3-hourly steps
#: (what is seen, lookahead steps, re-planned every ... steps); the whole horizon is the bound.
LOOKAHEADS = [
    ("the present step only", 1, 1),
    ("1 day", DAY, 1),
    ("1 week", 7 * DAY, DAY),
    ("4 weeks", 28 * DAY, 7 * DAY),
    ("13 weeks", 91 * DAY, 28 * DAY),
    ("26 weeks", 182 * DAY, 28 * DAY),
    ("52 weeks", 364 * DAY, 28 * DAY),
]
#: The same planner on a forecast from the calendar and the past only: a policy that knows no
#: more than the agents (and the benchmark) do.
FORECASTS = [
    ("forecast: 2 days, re-planned every step", 2 * DAY, 1),
    ("forecast: 1 week, re-planned every step", 7 * DAY, 1),
    ("forecast: 1 week, re-planned daily", 7 * DAY, DAY),
    ("forecast: 4 weeks, re-planned daily", 28 * DAY, DAY),
]

_state: dict = {}


def _setup(held_out: int, values: object) -> None:
    from hydrorl.baselines.foresight import CalendarForecast

    train, test = problems(held_out)
    _state["test"] = test
    _state["values"] = values
    _state["forecast"] = CalendarForecast.fit(train).bind(test)


def _play(job: tuple[str, int, int, int]) -> dict:
    from hydrorl.baselines.foresight import limited_foresight

    name, lookahead, every, scenario = job
    test = _state["test"]
    lookahead = lookahead or test.n_steps
    every = every or test.n_steps
    forecast = _state["forecast"] if name.startswith("forecast") else None
    started = time.perf_counter()
    result = limited_foresight(
        test, scenario, _state["values"], lookahead, every, forecast=forecast
    )
    return {
        "lookahead": name,
        "scenario": test.scenario_names[scenario],
        "total_eur": result.total_eur,
        "solves": result.solves,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", nargs="*", help="only these lookaheads (and the bound)")
    args = parser.parse_args()

    from tqdm.auto import tqdm

    from hydrorl.baselines import WaterValuePolicy, water_values
    from hydrorl.evaluation import evaluate_policy

    train, test = problems(args.held_out)
    values = water_values(train)
    benchmark = evaluate_policy(WaterValuePolicy(test, values), test).totals["total_eur"]
    looks = [*LOOKAHEADS, ("the whole horizon (the bound)", 0, 0), *FORECASTS]
    if args.only:
        looks = [x for x in looks if x[0] in args.only or x[1] == 0]
    jobs = [(n, la, ev, s) for n, la, ev in looks for s in range(args.held_out)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, _setup, (args.held_out, values)) as pool:
        rows = list(tqdm(pool.imap(_play, jobs), total=len(jobs), unit="scenario"))
    played = pd.DataFrame(rows)
    whole = played["lookahead"] == "the whole horizon (the bound)"
    bound = played[whole].set_index("scenario")["total_eur"]
    bench = pd.Series(benchmark.to_numpy(), index=list(test.scenario_names))
    played["/bound"] = played["total_eur"] / played["scenario"].map(bound)
    played["/benchmark"] = played["total_eur"] / played["scenario"].map(bench)
    order = {n: i for i, (n, _, _) in enumerate(looks)}
    summary = (
        played.groupby("lookahead", sort=False)
        .agg(
            mean_meur=("total_eur", lambda x: x.mean() / 1e6),
            of_bound=("/bound", "mean"),
            of_benchmark=("/benchmark", "mean"),
            worst_of_bound=("/bound", "min"),
            solves=("solves", "mean"),
            seconds=("seconds", "mean"),
        )
        .sort_index(key=lambda idx: idx.map(order))
    )
    print(
        f"held-out scenarios: {args.held_out} x 5 years, 3-hourly; benchmark/bound "
        f"{(bench / bound).mean():.4f}"
    )
    print(summary.round(4).to_string())
    (HERE / "results").mkdir(exist_ok=True)
    played.to_csv(HERE / "results" / "foresight.csv", index=False)


if __name__ == "__main__":
    main()
