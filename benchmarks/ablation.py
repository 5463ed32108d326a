"""What each ingredient of the recipe adds, over agent seeds, on small generated cases.

Run::

    python benchmarks/ablation.py [--cases 0 1] [--seeds 0 1 2] [--timesteps 20000]
                                  [--variant NAME ...]

On each small case (``hydrorl.cases.small_case``: rivers and forecasts nobody tuned to, daily
or 3-hourly), each variant of the recipe trains one agent per seed in this process
(``train_in_process``: the recipe as the agents run it, its best validated policy kept) and
plays it on the case's held-out scenarios (``evaluate_agent``, as its checkpoint carries it).
Beside it, on the same scenarios: the bound, the SDP benchmark and the forecast planner (the
one the guided agents correct, with its forecast fitted on all training scenarios).  Printed
per case and variant: mean ± std over the seeds of agent/bound, agent/SDP and agent/planner,
and the training time (one torch thread).

Variants (each the default recipe with some ingredients off):

* ``rl-alone``: no guide, no imitation, reinforcement learning only;
* ``imitation``: no guide; imitation of the planner (DAgger) and no reinforcement learning;
* ``imitation+rl``: no guide; imitation, then reinforcement learning anchored to it;
* ``guided``: the default (the agent corrects the planner) before any learning;
* ``guided+rl``: the default with reinforcement learning.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

VARIANTS: dict[str, dict[str, Any]] = {
    "rl-alone": {"guide": "none", "imitation_scenarios": 0},
    "imitation": {"guide": "none", "timesteps": 1},
    "imitation+rl": {"guide": "none"},
    "guided": {"timesteps": 1},
    "guided+rl": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    args = parser.parse_args()

    import torch

    from hydrorl.baselines import WaterValuePolicy, perfect_foresight, water_values
    from hydrorl.baselines.foresight import limited_foresight
    from hydrorl.cases import small_case
    from hydrorl.evaluation import evaluate_agent, evaluate_policy
    from hydrorl.project import TrainingSettings
    from hydrorl.training.agent import train_in_process
    from hydrorl.training.imitation import teacher, teacher_forecast

    torch.set_num_threads(1)
    rows = []
    for number in args.cases:
        case = small_case(number)
        train, held = case.problem("training"), case.problem("held_out")
        values = water_values(train)
        n = held.n_scenarios
        bound = np.array([perfect_foresight(held, s).total_eur for s in range(n)])
        sdp = evaluate_policy(WaterValuePolicy(held, values), held).totals["total_eur"].to_numpy()
        planner = teacher(held, values, 28.0, teacher_forecast(train))
        planned = np.array([
            limited_foresight(held, s, values, planner.lookahead_steps, planner.every_steps,
                              None, planner.forecast).total_eur
            for s in range(n)
        ])  # fmt: skip
        print(f"{case.name}: {case.description}", flush=True)
        print(f"  SDP {np.mean(sdp / bound):.4f} of the bound, "
              f"planner {np.mean(planned / bound):.4f}")  # fmt: skip
        for name in args.variant or list(VARIANTS):
            for seed in args.seeds:
                over = {"timesteps": args.timesteps, "agents": 1, "seed": seed,
                        "validation_days": 120, **VARIANTS[name]}  # fmt: skip
                started = time.perf_counter()
                model = train_in_process(TrainingSettings(**over), train)
                seconds = time.perf_counter() - started
                agent = evaluate_agent(model, held).totals["total_eur"].to_numpy()
                rows.append({
                    "case": case.name, "variant": name, "seed": seed,
                    "agent/bound": np.mean(agent / bound), "agent/SDP": np.mean(agent / sdp),
                    "agent/planner": np.mean(agent / planned), "train (s)": seconds,
                })  # fmt: skip
                print(f"  {name:13s} seed {seed}: " + ", ".join(
                    f"{k} {rows[-1][k]:.4f}" for k in ("agent/bound", "agent/SDP", "agent/planner")
                ) + f" ({seconds:.0f} s)", flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    summary = table.groupby(["case", "variant"], sort=False).agg(["mean", "std"])
    summary = summary.drop(columns="seed")
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(summary)


if __name__ == "__main__":
    main()
