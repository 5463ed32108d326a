"""Quality benchmark: agents against the bound, the benchmark and a naive rule, held out.

Run (through the workbench: background processes, results in the database)::

    python benchmarks/quality.py [--minutes 30] [--timesteps N] [--agents N] [--held-out 8]
                                 [--algorithm A2C] [--set field=value ...] [--db PATH]

or the ablation (each variant of the recipe trained in a process of its own, in parallel)::

    python benchmarks/quality.py --ablation [--minutes 6] [--jobs 2] [--variants NAME ...]

The agents train on the demo forecast (seed 0: 20 scenarios x 5 years, 3-hourly) with
the default recipe (``TrainingSettings()``, its tuned hyper-parameters) or the
settings given (timesteps, agents and algorithm are the recipe's unless given;
``--minutes`` stops the run, imitation included), and are evaluated deterministically
over the whole 5-year horizon of held-out scenarios: the demo generator with another
seed (1).  Beside them: the perfect-foresight bound (LP), the SDP water-value
benchmark (water values from the training forecast) and the naive constant-release
rule, all through the same physics.  Per scenario and on average it prints agent
revenue, bound, benchmark, naive, agent/bound, agent/benchmark, and the training time
and steps.

The workbench run writes to ``benchmarks/results/quality.db`` (open it with
``HYDRORL_DATABASE_URL=sqlite:///benchmarks/results/quality.db hydrorl dashboard``:
the *Episodes* tab shows the held-out evaluation), a CSV and an HTML plot beside it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HELD_OUT_SEED = 1
HELD_OUT_NAME = "Demo forecast (held-out)"

#: The recipe before imitation became its default (2026-11-26): PPO learning alone.  The
#: variants measured against it keep it underneath, so that their figures stay comparable.
RL_ALONE: dict[str, Any] = {
    "algorithm": "PPO",
    "timesteps": 20_000_000,  # learning is stopped by --minutes
    "agents": 5,
    "context_features": False,
    "imitation_scenarios": 0,
    "imitation_rounds": 0,
    "imitation_lookahead_days": 7.0,
}
#: The imitation as it was before it had its own network and learning rate (SB3's defaults).
EARLY_IMITATION = {"policy_kwargs": {"net_arch": [64, 64]}}


def _rl_alone(changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**RL_ALONE, **changes}
    if merged["imitation_scenarios"]:
        rate = {"PPO": 3e-4, "A2C": 7e-4}[merged["algorithm"]]
        merged["hyperparameters"] = {
            "learning_rate": rate,
            **EARLY_IMITATION,
            **changes.get("hyperparameters", {}),
        }
    return merged


#: What each ingredient of the recipe is worth: the recipe less one thing, or another algorithm.
VARIANTS: dict[str, dict[str, Any]] = {
    "recipe (defaults)": {},
    "recipe without DAgger rounds": {"imitation_rounds": 0},
    "recipe imitating the 1-week planner": {"imitation_lookahead_days": 7.0},
    "recipe, RL at A2C's own learning rate after imitation": {
        "hyperparameters": {"learning_rate": 7e-4}
    },
    "recipe with PPO": {"algorithm": "PPO"},
    "RL alone (the recipe before imitation, PPO)": _rl_alone({}),
    "without shaping": _rl_alone({"shaping": "none"}),
    "with a 1-day forecast horizon": _rl_alone({"forecast_horizon_steps": 8}),
    "fixed start volumes": _rl_alone({"random_start_volumes": False}),
    "4 environments": _rl_alone({"n_envs": 4}),
    "16-week windows": _rl_alone({"episode_steps": 8 * 7 * 16}),
    "1-week windows": _rl_alone({"episode_steps": 8 * 7}),
    "64 environments": _rl_alone({"n_envs": 64}),
    "gamma 0.95": _rl_alone({"hyperparameters": {"gamma": 0.95}}),
    "gamma 0.999": _rl_alone({"hyperparameters": {"gamma": 0.999}}),
    "larger network (256, 256)": _rl_alone(
        {"hyperparameters": {"policy_kwargs": {"net_arch": [256, 256]}}}
    ),
    "another seed": _rl_alone({"seed": 1}),
    "A2C": _rl_alone({"algorithm": "A2C"}),
    "SAC": _rl_alone({"algorithm": "SAC"}),
    "without the spill guard": _rl_alone({"spill_guard": False}),
    "A2C without the spill guard": _rl_alone({"algorithm": "A2C", "spill_guard": False}),
    "without the water value observed": _rl_alone({"water_value_feature": False}),
    "A2C without the water value observed": _rl_alone(
        {"algorithm": "A2C", "water_value_feature": False}
    ),
    "with context features": _rl_alone({"context_features": True}),
    "A2C with context features": _rl_alone({"algorithm": "A2C", "context_features": True}),
    "A2C with context features, decaying learning rate": _rl_alone(
        {
            "algorithm": "A2C",
            "context_features": True,
            "learning_rate_decay": True,
            "timesteps": 6_000_000,
        }
    ),
    "A2C imitating the planner first": _rl_alone({"algorithm": "A2C", "imitation_scenarios": 8}),
    "A2C imitating the planner first, context features, decaying learning rate": _rl_alone(
        {
            "algorithm": "A2C",
            "imitation_scenarios": 8,
            "context_features": True,
            "learning_rate_decay": True,
            "timesteps": 5_000_000,
        }
    ),
    "PPO imitating the planner first": _rl_alone({"imitation_scenarios": 8}),
    "A2C imitating the planner first, learning rate 1e-4": _rl_alone(
        {"algorithm": "A2C", "imitation_scenarios": 8, "hyperparameters": {"learning_rate": 1e-4}}
    ),
    "A2C, window ends bootstrapped": _rl_alone({"algorithm": "A2C", "bootstrap_window_ends": True}),
    "A2C imitating the planner first, window ends bootstrapped": _rl_alone(
        {"algorithm": "A2C", "imitation_scenarios": 8, "bootstrap_window_ends": True}
    ),
    "A2C imitating the planner, no reinforcement learning": _rl_alone(
        {
            "algorithm": "A2C",
            "imitation_scenarios": 8,
            "context_features": True,
            "timesteps": 256,
            "hyperparameters": {"learning_rate": 0.0},
        }
    ),
    "A2C, decaying learning rate": _rl_alone(
        {"algorithm": "A2C", "learning_rate_decay": True, "timesteps": 6_000_000}
    ),
}


def problems(held_out: int):  # noqa: ANN201
    from hydrorl.demo import demo_problem

    train = demo_problem(seed=0, scenarios=20, years=5)
    test = demo_problem(seed=HELD_OUT_SEED, scenarios=held_out, years=5).with_reference(train)
    return train, test


def _bound(args: tuple[int, int]) -> float:
    from hydrorl.baselines import perfect_foresight

    held_out, s = args
    _, test = problems(held_out)
    return float(perfect_foresight(test, s).total_eur)


def yardsticks(held_out: int, jobs: int) -> pd.DataFrame:
    """Bound (LPs in parallel), SDP benchmark and naive rule on each held-out scenario."""
    from hydrorl.baselines import ConstantRelease, WaterValuePolicy, water_values
    from hydrorl.evaluation import evaluate_policy

    train, test = problems(held_out)
    with multiprocessing.get_context("spawn").Pool(min(jobs, held_out)) as pool:
        bound = pool.map(_bound, [(held_out, s) for s in range(held_out)])
    benchmark = WaterValuePolicy(test, water_values(train))
    return pd.DataFrame(
        {
            "scenario": test.scenario_names,
            "bound": bound,
            "benchmark": evaluate_policy(benchmark, test).totals["total_eur"].to_numpy(),
            "naive": evaluate_policy(ConstantRelease(test), test).totals["total_eur"].to_numpy(),
        }
    )


def train_and_evaluate(job: tuple[str, dict[str, Any], int, int, float]) -> dict[str, Any]:
    """One variant in this process: train (to its steps or minutes), then play every held-out
    scenario deterministically."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAfter(BaseCallback):
        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def _on_training_start(self) -> None:
            self.started = time.perf_counter()
            self.deadline = time.monotonic() + self.seconds

        def _on_step(self) -> bool:
            return time.monotonic() < self.deadline

    from hydrorl.evaluation import evaluate_agent
    from hydrorl.project import TrainingSettings
    from hydrorl.training.agent import train_in_process

    name, changes, timesteps, held_out, minutes = job
    torch.set_num_threads(1)
    train, test = problems(held_out)
    budget = {} if timesteps is None else {"timesteps": timesteps}
    settings = TrainingSettings(**{**changes, **budget}).validate().resolved()
    start = time.perf_counter()
    stop = StopAfter(60 * minutes)
    model = train_in_process(settings, train, callback=stop)
    seconds = time.perf_counter() - start
    learn_seconds = time.perf_counter() - stop.started
    played = evaluate_agent(model, test)  # as its spec says it observes
    return {
        "variant": name,
        "settings": settings.to_dict(),
        "agent": played.totals["total_eur"].to_list(),
        "train_seconds": seconds,
        "learn_seconds": learn_seconds,
        "steps": int(model.num_timesteps),
    }


def table(agent: np.ndarray, marks: pd.DataFrame) -> pd.DataFrame:
    out = marks.assign(agent=agent)[["scenario", "agent", "bound", "benchmark", "naive"]].copy()
    out["agent/bound"] = out["agent"] / out["bound"]
    out["agent/benchmark"] = out["agent"] / out["benchmark"]
    out["benchmark/bound"] = out["benchmark"] / out["bound"]
    mean = out.drop(columns="scenario").mean()
    out.loc[len(out)] = {"scenario": "mean", **mean.to_dict()}
    return out


def show(frame: pd.DataFrame) -> str:
    money = ["agent", "bound", "benchmark", "naive"]
    shown = frame.copy()
    shown[money] = (shown[money] / 1e6).round(2)
    return shown.round(4).to_string(index=False)


def ablation(args: argparse.Namespace) -> None:
    marks = yardsticks(args.held_out, args.jobs)
    variants = {n: VARIANTS[n] for n in args.variants} if args.variants else VARIANTS
    jobs = [
        (name, changes, args.timesteps, args.held_out, args.minutes)
        for name, changes in variants.items()
    ]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(train_and_evaluate, jobs)
    rows = []
    for r in results:
        t = table(np.array(r["agent"]), marks).iloc[-1]
        rows.append(
            {
                "variant": r["variant"],
                "agent/bound": t["agent/bound"],
                "agent/benchmark": t["agent/benchmark"],
                "steps": r["steps"],
                "steps/s": round(r["steps"] / r["learn_seconds"]),
                "train (s)": round(r["train_seconds"]),
            }
        )
    frame = pd.DataFrame(rows)
    print(
        f"held-out scenarios: {args.held_out} x 5 years, 3-hourly; at most "
        f"{f'{args.timesteps:,}' if args.timesteps else 'the variant' + chr(39) + 's'} steps "
        f"or {args.minutes:g} min of learning each"
    )
    print(f"benchmark/bound on them: {(marks['benchmark'] / marks['bound']).mean():.4f}")
    print(frame.round(4).to_string(index=False))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ablation.json").write_text(json.dumps(results, indent=1))


def workbench(args: argparse.Namespace) -> None:
    import hydrorl
    from hydrorl.demo import demo_forecast

    RESULTS.mkdir(exist_ok=True)
    wb = hydrorl.connect(f"sqlite:///{Path(args.db).resolve()}")
    wb.setup_demo()
    if HELD_OUT_NAME not in set(wb.forecasts()["name"]):
        held = demo_forecast(seed=HELD_OUT_SEED, scenarios=args.held_out, years=5)
        wb.upload_forecast("Demo river", held, HELD_OUT_NAME, allow_duplicate=True)
    changes = dict(item.split("=", 1) for item in args.set)
    settings = {k: json.loads(v) for k, v in changes.items()}
    given = {"algorithm": args.algorithm, "agents": args.agents, "timesteps": args.timesteps}
    settings.update({k: v for k, v in given.items() if v is not None})
    from hydrorl.project import TrainingSettings

    budget = TrainingSettings(**settings).validate()
    marks = yardsticks(args.held_out, args.jobs)
    if args.run is None:
        run_id = wb.start_training("Demo project", "Demo forecast", **settings).id
        print(f"run {run_id}: {budget.agents} x {budget.timesteps:,} steps or {args.minutes:g} min")
    else:
        run_id = args.run  # evaluate a run trained before
    print(f"run {run_id} settings: {wb.run(run_id).settings}")
    from tqdm.auto import tqdm

    started = time.monotonic()
    with tqdm(total=budget.agents * budget.timesteps, unit="step") as bar:
        while wb.run(run_id).status in ("queued", "running"):
            bar.n = int(wb.agents(run_id)["timesteps_done"].sum())
            bar.refresh()
            if time.monotonic() - started > 60 * args.minutes:
                wb.stop(run_id)  # the time budget is spent: the agents keep their checkpoints
            time.sleep(5)
    info = wb.wait(run_id, timeout=60)
    agents = wb.agents(run_id)
    if info.status not in ("completed", "stopped"):
        sys.exit(f"run {run_id} {info.status}: {info.status_reason}\n{info.error}")
    evaluation = wb.evaluate(run_id, HELD_OUT_NAME)
    info = wb.wait(evaluation.id, timeout=3600)
    if info.status != "completed":
        sys.exit(f"evaluation {evaluation.id} {info.status}: {info.error}")
    episodes = wb.episodes(evaluation.id).set_index("scenario").loc[marks["scenario"]]
    result = table(episodes["total_eur"].to_numpy(), marks)
    seconds = (
        pd.to_datetime(agents["finished_at"]) - pd.to_datetime(agents["started_at"])
    ).dt.total_seconds()
    print(show(result))
    print(
        f"training: {budget.agents} agents, {int(agents['timesteps_done'].mean()):,} steps and "
        f"{seconds.mean() / 60:.1f} min each (in parallel); evaluated agent "
        f"{int(episodes['agent'].iloc[0])} (best peak reward); run {run_id}, evaluation "
        f"{evaluation.id} in {args.db}"
    )
    result.to_csv(RESULTS / "quality.csv", index=False)
    plot(result, wb.curves(run_id, "episode_value_eur"), RESULTS / "quality.html")


def plot(result: pd.DataFrame, curves: pd.DataFrame, path: Path) -> None:
    import holoviews as hv

    hv.extension("bokeh")
    per = result[result["scenario"] != "mean"]
    long = per.melt("scenario", ["agent", "benchmark", "naive", "bound"], "policy", "EUR")
    long["MEUR"] = long["EUR"] / 1e6
    bars = hv.Bars(long, ["scenario", "policy"], "MEUR").opts(
        width=900, height=320, title="Held-out scenarios: total value (revenue + end water value)"
    )
    curve = (
        hv.Curve(curves.assign(MEUR=curves["value"] / 1e6), "timestep", ["MEUR", "agent"])
        .groupby("agent")
        .overlay()
        .opts(width=900, height=300, title="Training windows' value")
    )
    hv.save((bars + curve).cols(1), str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, help="default: the recipe's (or the variant's)")
    parser.add_argument("--agents", type=int, help="default: the recipe's")
    parser.add_argument("--held-out", type=int, default=8)
    parser.add_argument("--algorithm", help="default: the recipe's")
    parser.add_argument("--set", action="append", default=[], help="setting=JSON value")
    parser.add_argument("--db", default=str(RESULTS / "quality.db"))
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--minutes", type=float, default=30.0, help="learning time per agent")
    parser.add_argument("--run", type=int, help="evaluate this run instead of training one")
    parser.add_argument("--variants", nargs="*", help="ablation: only these (names of VARIANTS)")
    args = parser.parse_args()
    os.environ.setdefault("SB3_LOGDIR", str(RESULTS / "sb3"))
    (ablation if args.ablation else workbench)(args)


if __name__ == "__main__":
    main()
