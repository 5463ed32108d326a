"""Benchmark: evaluating a policy on every demo scenario, batched against one by one.

Run: ``python benchmarks/evaluation.py``

Plays the SDP benchmark policy and the constant-release rule over the whole
horizon (5 years, 3-hourly) of all 20 demo scenarios, once with all scenarios as
rows of one batched physics call and once scenario by scenario, in the same
process, and prints both times and their ratio.
"""

from __future__ import annotations

import time

import numpy as np

from hydrorl.baselines import ConstantRelease, WaterValuePolicy, water_values
from hydrorl.demo import demo_problem
from hydrorl.evaluation import evaluate_policy


def main() -> None:
    problem = demo_problem()
    policies = {
        "SDP water values": WaterValuePolicy(problem, water_values(problem)),
        "constant release": ConstantRelease(problem),
    }
    print(f"{'policy':<18} {'batched s':>10} {'one by one s':>13} {'speed-up':>9}")
    for name, policy in policies.items():
        start = time.perf_counter()
        batched = evaluate_policy(policy, problem)
        t_batched = time.perf_counter() - start
        start = time.perf_counter()
        single = evaluate_policy(policy, problem, batch_size=1)
        t_single = time.perf_counter() - start
        assert np.allclose(batched.totals["total_eur"], single.totals["total_eur"])
        print(
            f"{name:<18} {t_batched:>10.2f} {t_single:>13.2f} {t_single / t_batched:>9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
