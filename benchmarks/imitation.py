"""How good is an agent that only imitates the forecast planner? (No reinforcement learning.)

Run::

    python benchmarks/imitation.py [--scenarios 8] [--lookahead-days 28] [--net 256,256]
                                   [--epochs 40] [--rounds 3] [--jobs 2]

The planner (``hydrorl.baselines.foresight``: a calendar forecast of ``--lookahead-days``,
re-planned daily) is played over the first ``--scenarios`` training scenarios of the demo
forecast; an A2C policy (the recipe's observation with context features, spill guard and
water value) is fitted to its actions (``hydrorl.training.imitation``), then ``--rounds``
times (DAgger) plays those scenarios itself, the planner labels the states it reached, and
is fitted again.  After each fit it is played deterministically on the quality benchmark's
held-out scenarios; prints agent/bound and agent/benchmark per pass, and per scenario at
the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import problems, table, yardsticks  # noqa: E402


def _settings(net: list[int]):  # noqa: ANN202
    from hydrorl.project import TrainingSettings

    return TrainingSettings(
        algorithm="A2C",
        context_features=True,
        hyperparameters={"policy_kwargs": {"net_arch": net}},
    ).resolved()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=8)
    parser.add_argument("--lookahead-days", type=float, default=28.0)
    parser.add_argument("--net", default="256,256")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--held-out", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="DAgger rounds: the planner labels the states the fitted policy reaches, refit",
    )
    args = parser.parse_args()
    os.environ.setdefault("SB3_LOGDIR", str(HERE / "results" / "sb3"))

    import torch

    from hydrorl.baselines import water_values
    from hydrorl.env import CascadeVecEnv
    from hydrorl.evaluation import evaluate_policy
    from hydrorl.training.agent import episode_design, evaluation_options, water_value_functions
    from hydrorl.training.algorithm import build_model
    from hydrorl.training.imitation import concatenate, gather, imitate

    net = [int(n) for n in args.net.split(",")]
    torch.set_num_threads(args.jobs)
    settings = _settings(net)
    train, test = problems(args.held_out)
    values = water_values(train)
    potential, marginal = water_value_functions(settings, train, values=values)
    design = episode_design(settings)
    env = CascadeVecEnv(train, 16, design, potential=potential, marginal=marginal)
    model = build_model(settings, env, 0)
    options = evaluation_options(settings, test, train)
    marks = yardsticks(args.held_out, args.jobs)
    demo_seconds = fit_seconds = 0.0
    shown = None
    for round_ in range(args.rounds + 1):
        started = time.perf_counter()
        more = gather(
            train,
            design,
            np.arange(args.scenarios),
            workers=args.jobs,
            policy=model.policy if round_ else None,
            gamma=settings.hyperparameters["gamma"],
            potential=potential,
            marginal=marginal,
            lookahead_days=args.lookahead_days,
            values=values,
        )
        shown = more if shown is None else concatenate([shown, more])
        demo_seconds += time.perf_counter() - started
        started = time.perf_counter()
        losses = imitate(model, shown, epochs=args.epochs)
        fit_seconds += time.perf_counter() - started
        agent = evaluate_policy(model, test, **options).totals["total_eur"].to_numpy()
        result = table(agent, marks)
        mean = result.iloc[-1]
        print(
            f"pass {round_ + 1}: {len(shown.actions):,} labelled steps, losses "
            f"{ {k: round(v, 4) for k, v in losses.items()} }, agent/bound "
            f"{mean['agent/bound']:.4f}, agent/benchmark {mean['agent/benchmark']:.4f}",
            flush=True,
        )
    shown_frame = result.copy()
    money = ["agent", "bound", "benchmark", "naive"]
    shown_frame[money] = (shown_frame[money] / 1e6).round(2)
    print(
        f"imitating the {args.lookahead_days:g}-day forecast planner on {args.scenarios} training "
        f"scenarios ({len(shown.actions):,} steps, {demo_seconds:.0f} s), network {net}, "
        f"{args.epochs} epochs ({fit_seconds:.0f} s), {args.rounds} DAgger rounds; "
        "no reinforcement learning"
    )
    print(shown_frame.round(4).to_string(index=False))
    (HERE / "results").mkdir(exist_ok=True)
    pd.DataFrame(result).to_csv(HERE / "results" / "imitation.csv", index=False)


if __name__ == "__main__":
    main()
