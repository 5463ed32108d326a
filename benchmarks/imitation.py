"""How good is an agent that only imitates the forecast planner? (No reinforcement learning.)

Run::

    python benchmarks/imitation.py [--scenarios 10] [--years 2] [--held-out 3]
                                   [--set field=JSON ...] [--set ...] [--variant ...]

The recipe's imitation as the agents run it (``hydrorl.training.recipe.Recipe``: windows,
DAgger passes, validation after each) on the demo generator's training scenarios, with no
step of reinforcement learning (``timesteps=1``), one torch thread.  Each ``--variant``
(``field=JSON,field=JSON``; the default recipe if none) prints its validation after every
pass (% of the bound on the held-aside scenarios), the planner on the same episodes, and
its best validated policy on held-out scenarios (the generator with seed 1) against the
bound and the SDP benchmark, all in this process.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np


def _variant(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        out[name.strip()] = json.loads(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], help="field=JSON,field=JSON")
    args = parser.parse_args()

    import torch

    from hydrorl.baselines import WaterValuePolicy, perfect_foresight, water_values
    from hydrorl.demo import demo_problem
    from hydrorl.evaluation import evaluate_agent, evaluate_policy
    from hydrorl.project import TrainingSettings
    from hydrorl.training.agent import train_in_process
    from hydrorl.training.recipe import MemorySink
    from hydrorl.training.validation import REFERENCES, SHARE

    torch.set_num_threads(1)
    train = demo_problem(seed=0, scenarios=args.scenarios, years=args.years)
    held = demo_problem(seed=1, scenarios=args.held_out, years=args.years).with_reference(train)
    bound = np.array([perfect_foresight(held, s).total_eur for s in range(held.n_scenarios)])
    sdp = evaluate_policy(WaterValuePolicy(held, water_values(train)), held)
    benchmark = sdp.totals["total_eur"].to_numpy()
    print(f"held-out: SDP benchmark {np.mean(benchmark / bound):.4f} of the bound", flush=True)
    for text in args.variant or [""]:
        over = _variant(text)
        sink = MemorySink()
        started = time.perf_counter()
        settings = TrainingSettings(timesteps=1, guide="none", **over)
        model = train_in_process(settings, train, sink=sink)
        seconds = time.perf_counter() - started
        curves = sink.curves()
        agent = evaluate_agent(model, held).totals["total_eur"].to_numpy()
        planner = curves.get(REFERENCES["planner"])
        print(
            f"{over or 'default recipe'}: {seconds:.0f} s; validation per pass "
            f"{np.round(curves[SHARE][:, 1], 2).tolist()} (planner "
            f"{'-' if planner is None else round(float(planner[-1, 1]), 2)}); held out: "
            f"agent/bound {np.mean(agent / bound):.4f}, agent/SDP {np.mean(agent / benchmark):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
