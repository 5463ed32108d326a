"""Quality across a seeded suite of cases: agents against the bound and the classical methods.

Run (through the workbench, as ``benchmarks/quality.py`` does for the demo)::

    python benchmarks/suite.py [--cases 8] [--seed 0] [--minutes M] [--agents N]
                               [--held-out-scenarios K] [--db PATH] [--set field=value ...]
                               [--only NAME ...] [--jobs J] [--prep-minutes P]

The cases are ``hydrorl.cases.suite(cases, seed)``: the demo river and generated rivers
and forecasts nobody tuned the recipe to (other topologies, step lengths of 1 h, 3 h
and a day, floods, price regimes, spikes, trends…).  For each case the default recipe
(``TrainingSettings()``, or the settings given) trains on the case's training scenarios
in the workbench's background processes; once every agent is learning (its water values
and imitation done: minutes on hourly cases), it learns for ``--minutes`` and is
stopped, and its best agent is evaluated over the whole horizon of the held-out
scenarios (the same process, another seed).  Beside it, on the same scenarios and from
the same start volumes (half full):

* bound: the perfect-foresight LP (no policy can beat it);
* benchmark: the SDP water values of the training scenarios;
* planner: the planner the agents imitate (``hydrorl.training.imitation.teacher``: a
  forecast of the calendar and the recent state fitted on the training scenarios, 28 days
  ahead, re-planned every 6 hours), valuing the water left with the same water values;
* naive: every station releases the mean flow that reaches it (``ConstantRelease``).

It prints per case and on average the mean totals (MEUR, revenue + end water value),
agent/bound, agent/best classical (the best of benchmark, planner and naive on each
scenario), the preparation time (until every agent learns: water values, imitation),
each agent's whole training time (preparation and stopping included) and its steps;
and writes ``benchmarks/results/suite.csv`` (per case) and ``suite-scenarios.csv``
(per scenario).
The classical columns are slow on long horizons (the planner solves an LP a day): they
are computed once per case and kept in ``benchmarks/results/suite-classical/``, keyed by
the case's name and content, so that re-running the agents is quick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import RESULTS  # noqa: E402

if TYPE_CHECKING:
    from hydrorl.cases import Case
    from hydrorl.workbench import Workbench

CLASSICAL = RESULTS / "suite-classical"
PLANNER_LOOKAHEAD_DAYS = 28.0
#: Bump when the classical columns are computed differently: the cache is keyed by it.
CLASSICAL_VERSION = 2  # 2: the teacher (state forecast, re-planned every 6 hours)
MONEY = ["agent", "bound", "benchmark", "planner", "naive"]

_state: dict[str, Any] = {}


# ---------------------------------------------------------------- the classical columns


def classical(case: Case, jobs: int) -> pd.DataFrame:
    """Bound, benchmark, planner and naive per held-out scenario, from the cache or computed."""
    path = CLASSICAL / f"{case.name}-{_key(case)}.pkl"
    if path.exists():
        return pd.read_pickle(path)
    from tqdm.auto import tqdm

    from hydrorl.baselines import ConstantRelease, WaterValuePolicy, water_values
    from hydrorl.evaluation import evaluate_policy

    started = time.perf_counter()
    held_out = case.problem("held_out")
    values = water_values(case.problem())
    tasks = [(kind, s) for s in range(held_out.n_scenarios) for kind in ("planner", "bound")]
    solved: dict[tuple[str, int], float] = {}
    bar = tqdm(total=len(tasks), desc=f"{case.name}: bound and planner", unit="scenario")
    if jobs > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(jobs, len(tasks)), _setup, (case, values)) as pool:
            for task, total in pool.imap_unordered(_solve, tasks):
                solved[task] = total
                bar.update()
    else:
        _setup(case, values)
        for task in tasks:
            solved[task] = _solve(task)[1]
            bar.update()
    bar.close()
    benchmark = evaluate_policy(WaterValuePolicy(held_out, values), held_out)
    naive = evaluate_policy(ConstantRelease(held_out), held_out)
    marks = pd.DataFrame(
        {
            "scenario": held_out.scenario_names,
            "bound": [solved["bound", s] for s in range(held_out.n_scenarios)],
            "benchmark": benchmark.totals["total_eur"].to_numpy(),
            "planner": [solved["planner", s] for s in range(held_out.n_scenarios)],
            "naive": naive.totals["total_eur"].to_numpy(),
            "benchmark_spill_mm3": benchmark.totals["spill_mm3"].to_numpy(),
            "naive_spill_mm3": naive.totals["spill_mm3"].to_numpy(),
        }
    )
    marks.attrs["seconds"] = time.perf_counter() - started
    CLASSICAL.mkdir(parents=True, exist_ok=True)
    marks.to_pickle(path)
    return marks


def _key(case: Case) -> str:
    digest = hashlib.sha256(json.dumps(case.system.to_dict(), sort_keys=True).encode())
    for part in (case.training.content_hash, case.held_out.content_hash):
        digest.update(part.encode())
    digest.update(f"{PLANNER_LOOKAHEAD_DAYS}|{CLASSICAL_VERSION}".encode())
    return digest.hexdigest()[:12]


def _setup(case: Case, values: Any) -> None:
    from hydrorl.training.imitation import teacher, teacher_forecast

    held_out = case.problem("held_out")
    forecast = teacher_forecast(case.problem(), PLANNER_LOOKAHEAD_DAYS)
    _state.update(
        held_out=held_out,
        values=values,
        planner=teacher(held_out, values, PLANNER_LOOKAHEAD_DAYS, forecast),
    )


def _solve(task: tuple[str, int]) -> tuple[tuple[str, int], float]:
    from hydrorl.baselines import perfect_foresight
    from hydrorl.baselines.foresight import limited_foresight

    kind, scenario = task
    held_out = _state["held_out"]
    if kind == "bound":
        return task, float(perfect_foresight(held_out, scenario).total_eur)
    planner = _state["planner"]
    result = limited_foresight(
        held_out,
        scenario,
        _state["values"],
        planner.lookahead_steps,
        planner.every_steps,
        forecast=planner.forecast,
    )
    return task, float(result.total_eur)


# ---------------------------------------------------------------- the agents


def train_and_evaluate(
    wb: Workbench, case: Case, settings: dict[str, Any], minutes: float, prep_minutes: float
) -> dict[str, Any]:
    """Train the recipe on the case's training scenarios, evaluate the best agent held out."""
    system, training, held_out = _store(wb, case)
    project = f"{case.name} suite"
    if project not in set(wb.projects(system)["name"]):
        wb.create_project(system, project, description=f"benchmarks/suite.py: {case.description}")
    run = wb.start_training(project, training, system=system, **settings)
    started = time.monotonic()
    info = wb.wait(run.id, timeout=60 * prep_minutes, until_learning=True)
    prepared = time.monotonic()
    if not info.done:
        info = wb.wait(run.id, timeout=60 * minutes)
    if not info.done:
        wb.stop(run.id)  # the time budget is spent: the agents keep their checkpoints
        info = wb.wait(run.id, timeout=600)
    agents = wb.agents(run.id)
    wall = pd.to_datetime(agents["finished_at"]) - pd.to_datetime(agents["started_at"])
    out: dict[str, Any] = {
        "run": run.id,
        "prep_min": (prepared - started) / 60,
        "train_min": wall.dt.total_seconds().mean() / 60,
        "timesteps": int(agents["timesteps_done"].mean()),
        "agent": None,
        "bound_check": None,
        "error": "",
    }
    if info.status not in ("completed", "stopped") or not agents["checkpoint_path"].notna().any():
        out["error"] = f"run {run.id} {info.status}: {info.status_reason} {info.error or ''}"
        return out
    evaluation = wb.evaluate(run.id, held_out)
    done = wb.wait(evaluation.id, timeout=3600)
    if done.status != "completed":
        out["error"] = f"evaluation {evaluation.id} {done.status}: {done.error}"
        return out
    episodes = (
        wb.episodes(evaluation.id).set_index("scenario").loc[list(case.held_out.scenario_names)]
    )
    out["agent"] = episodes["total_eur"].to_numpy()
    out["bound_check"] = episodes["bound_eur"].to_numpy()  # the evaluation's own bound
    out["agent_index"] = int(episodes["agent"].iloc[0])
    return out


def _store(wb: Workbench, case: Case) -> tuple[str, str, str]:
    """The case's system and forecasts in the database (once): their names."""
    system = case.system.name
    if system in set(wb.systems()["name"]):
        if wb.system(system) != case.system:
            sys.exit(f"system {system!r} in the database differs from the case's: use another --db")
    else:
        wb.create_system(case.system)
    names = []
    for kind, table in (("training", case.training), ("held-out", case.held_out)):
        name = f"{case.name} {kind} {table.content_hash[:8]}"
        if name not in set(wb.forecasts(system)["name"]):
            wb.upload_forecast(
                system, table, name, allow_duplicate=True, description=table.source_name
            )
        names.append(name)
    return system, names[0], names[1]


# ---------------------------------------------------------------- the tables


def per_scenario(case: Case, marks: pd.DataFrame, played: dict[str, Any]) -> pd.DataFrame:
    frame = marks[["scenario", "bound", "benchmark", "planner", "naive"]].copy()
    frame.insert(0, "case", case.name)
    frame["agent"] = np.nan if played["agent"] is None else played["agent"]
    best = frame[["benchmark", "planner", "naive"]].max(axis=1)
    frame["agent/bound"] = frame["agent"] / frame["bound"]
    frame["agent/best classical"] = frame["agent"] / best
    frame["benchmark/bound"] = frame["benchmark"] / frame["bound"]
    frame["planner/bound"] = frame["planner"] / frame["bound"]
    return frame


def case_row(case: Case, scenarios: pd.DataFrame, played: dict[str, Any]) -> dict[str, Any]:
    means = scenarios.drop(columns=["case", "scenario"]).mean()
    return {
        "case": case.name,
        "step": f"{case.training.step.total_seconds() / 3600:g}h",
        "horizon": case.training.n_steps,
        **means.to_dict(),
        "prep (min)": played["prep_min"],
        "train (min)": played["train_min"],
        "timesteps": played["timesteps"],
        "description": case.description,
        "error": played["error"],
    }


def show(rows: pd.DataFrame) -> str:
    shown = rows.drop(columns=["description", "error"]).copy()
    shown[MONEY] = shown[MONEY] / 1e6
    shown = shown.round(3)
    return shown.astype(object).where(shown.notna(), "-").to_string(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=8, help="the demo and cases - 1 generated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0, help="learning time per case")
    parser.add_argument("--prep-minutes", type=float, default=60.0, help="at most, before it")
    parser.add_argument("--agents", type=int, help="default: the recipe's")
    parser.add_argument("--held-out-scenarios", type=int, default=8)
    parser.add_argument("--db", default=str(RESULTS / "suite.db"))
    parser.add_argument("--set", action="append", default=[], help="setting=JSON value")
    parser.add_argument("--only", action="append", default=[], help="a case's name (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="classical LPs")
    args = parser.parse_args()
    os.environ.setdefault("SB3_LOGDIR", str(RESULTS / "sb3"))

    import hydrorl
    from hydrorl.cases import suite
    from hydrorl.project import TrainingSettings

    settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.agents is not None:
        settings["agents"] = args.agents
    TrainingSettings(**settings).validate()  # bad settings fail before hours of work
    cases = suite(args.cases, args.seed, held_out_scenarios=args.held_out_scenarios)
    unknown = set(args.only) - {c.name for c in cases}
    if unknown:
        sys.exit(f"no case {', '.join(sorted(unknown))}; cases: {', '.join(c.name for c in cases)}")
    cases = [c for c in cases if not args.only or c.name in args.only]
    RESULTS.mkdir(exist_ok=True)
    wb = hydrorl.connect(f"sqlite:///{Path(args.db).resolve()}")
    rows, scenarios = [], []
    for case in cases:
        print(f"{case.name}: {case.description}", flush=True)
        marks = classical(case, args.jobs)
        played = train_and_evaluate(wb, case, settings, args.minutes, args.prep_minutes)
        if played["error"]:
            print(f"  {played['error']}", flush=True)
        elif not np.allclose(played["bound_check"], marks["bound"], rtol=1e-6):
            print(f"  the evaluation's bound differs from the cached one: {played['bound_check']}")
        frame = per_scenario(case, marks, played)
        scenarios.append(frame)
        rows.append(case_row(case, frame, played))
        print(show(pd.DataFrame(rows[-1:])), flush=True)
    table = pd.DataFrame(rows).astype({"horizon": "Int64", "timesteps": "Int64"})
    ratios = [c for c in table.columns if "/" in c]
    table.loc[len(table)] = {"case": "mean", **table[ratios].mean().to_dict(), "description": ""}
    print(f"\n{len(cases)} cases, {args.held_out_scenarios} held-out scenarios each; MEUR means")
    print(show(table))
    for row in rows:
        print(f"  {row['case']}: {row['description']}")
    table.to_csv(RESULTS / "suite.csv", index=False)
    pd.concat(scenarios).to_csv(RESULTS / "suite-scenarios.csv", index=False)
    wb.close()


if __name__ == "__main__":
    main()
