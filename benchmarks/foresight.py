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

Solver speed::

    python benchmarks/foresight.py --solver-speed [--scenarios 2] [--days 60]

plays the forecast planner (4 weeks ahead, re-planned daily) on the demo and solves
every window it plans three ways in turn, in the same process: warm (the planner's
:class:`~hydrorl.baselines.window.WindowSolver`), cold with HiGHS' dual simplex
(``solve_window``) and cold with scipy's interior point (``solve_window_linprog``,
the old way and the yardstick).  It prints solves per second and their ratios to the
yardstick, and asserts that every window's objective agrees with the yardstick's to
1e-7 (relative); then the 5-year perfect-foresight bound, old against new.
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


def solver_speed(scenarios: int, days: int, lookahead_days: int, bound_scenarios: int) -> None:
    """Warm window solves, cold dual simplex and the old interior point, window by window."""
    import numpy as np

    from hydrorl.baselines import water_values
    from hydrorl.baselines.bound import (
        LinearEndValue,
        perfect_foresight,
        solve_window,
        solve_window_linprog,
    )
    from hydrorl.baselines.foresight import CalendarForecast, Planner
    from hydrorl.baselines.window import WindowSolver, window_objective_eur
    from hydrorl.demo import demo_problem
    from hydrorl.physics import step

    problem = demo_problem()
    started = time.perf_counter()
    values = water_values(problem)
    forecast = CalendarForecast.fit(problem).bind(problem)
    print(f"water values and forecast of the demo: {time.perf_counter() - started:.1f} s")
    planner = Planner(problem, values, lookahead_days * DAY, DAY, forecast)
    seconds = {"warm": 0.0, "cold dual simplex": 0.0, "old: scipy highs-ipm": 0.0}
    worst = {"warm": 0.0, "cold dual simplex": 0.0}
    windows, solvers = 0, {}
    for scenario in range(scenarios):
        volume = problem.default_start_volumes()
        for t in range(0, days * DAY, DAY):
            stop, end, price, inflow = planner.window(scenario, t)
            args = (scenario, t, stop, volume, end, price, inflow)
            if stop - t not in solvers:  # as the planner keeps them: one per window length
                tic = time.perf_counter()  # the model's build counts against the warm solves
                solvers[stop - t] = WindowSolver(problem, stop - t, values.levels_mwh.size - 1)
                seconds["warm"] += time.perf_counter() - tic
            solver = solvers[stop - t]
            schedules = {}
            for name, solve in (
                ("warm", solver.solve),
                ("cold dual simplex", lambda *a: solve_window(problem, *a)),
                ("old: scipy highs-ipm", lambda *a: solve_window_linprog(problem, *a)),
            ):
                tic = time.perf_counter()
                schedules[name] = solve(*args)
                seconds[name] += time.perf_counter() - tic
            value = {
                name: window_objective_eur(problem, scenario, t, stop, x, end, price)
                for name, x in schedules.items()
            }
            yardstick = value["old: scipy highs-ipm"]
            for name in worst:
                worst[name] = max(worst[name], abs(value[name] - yardstick) / abs(yardstick))
            windows += 1
            plan = schedules["warm"][1][:DAY] / problem.cascade.max_discharge_m3s
            for k in range(DAY):  # the planner's day through the physics: the next start
                volume = step(
                    problem.cascade,
                    volume[None, :],
                    np.clip(plan[k], 0.0, 1.0)[None, :],
                    problem.inflow_m3s[scenario, t + k : t + k + 1],
                    problem.price_eur_mwh[scenario, t + k : t + k + 1],
                    problem.dt_s,
                ).volume_mm3[0]
    old = windows / seconds["old: scipy highs-ipm"]
    print(
        f"{windows} windows of {lookahead_days * DAY} steps ({scenarios} scenarios x {days} days, "
        f"re-planned daily on the calendar forecast)"
    )
    print(f"{'solver':>22} {'solves/s':>9} {'x old':>7} {'max rel. objective diff':>24}")
    for name, spent in seconds.items():
        diff = f"{worst[name]:.1e}" if name in worst else "(yardstick)"
        print(f"{name:>22} {windows / spent:>9.1f} {windows / spent / old:>7.2f} {diff:>24}")
    assert max(worst.values()) <= 1e-7, worst

    end = LinearEndValue(problem)
    v0 = problem.default_start_volumes()
    for scenario in range(bound_scenarios):
        tic = time.perf_counter()
        old_schedule = solve_window_linprog(problem, scenario, 0, problem.n_steps, v0, end)
        old_s = time.perf_counter() - tic
        bound = perfect_foresight(problem, scenario)
        new_schedule = (bound.volume_mm3, bound.discharge_m3s, bound.spill_m3s)
        old_value, new_value = (
            window_objective_eur(problem, scenario, 0, problem.n_steps, x, end)
            for x in (old_schedule, new_schedule)
        )
        diff = abs(new_value - old_value) / abs(old_value)
        print(
            f"5-year bound, scenario {problem.scenario_names[scenario]} ({problem.n_steps} steps): "
            f"old {old_s:.1f} s, new {bound.solve_seconds:.1f} s, "
            f"x{old_s / bound.solve_seconds:.2f}; relative objective difference {diff:.1e}"
        )
        assert diff <= 1e-7, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", nargs="*", help="only these lookaheads (and the bound)")
    parser.add_argument(
        "--solver-speed", action="store_true", help="window solves/s, warm against the old LP"
    )
    parser.add_argument("--scenarios", type=int, default=2, help="with --solver-speed")
    parser.add_argument("--days", type=int, default=60, help="with --solver-speed")
    parser.add_argument("--lookahead-days", type=int, default=28, help="with --solver-speed")
    parser.add_argument("--bound-scenarios", type=int, default=1, help="with --solver-speed")
    args = parser.parse_args()
    if args.solver_speed:
        solver_speed(args.scenarios, args.days, args.lookahead_days, args.bound_scenarios)
        return

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
