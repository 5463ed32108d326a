"""Decision cost: an agent's time per decision against its teacher's (why deploy a policy).

Run::

    python benchmarks/decision.py [--scenarios 2] [--days 60] [--repeat 3]

On the demo, a policy of the imitating recipe's shape (``guide="none"``: the 256x256
actor-critic, built by the recipe on the demo's observation; its weights do not change the
time) decides the next step from an observation; the planner it imitates
(``hydrorl.training.imitation.teacher``:
a 4-week LP on the state forecast, warm-started, re-planned every 6 hours) decides by
solving its window.  Both are timed in this process, one decision at a time, as a
scheduler would run them, and the ratio is printed: the yardstick is the planner.  The
agent is also timed deciding for many scenarios at once (a batch), as the evaluation does.
A guided agent (the default recipe's) decides with its planner: per step it costs the
planner's share plus its own network's, as printed last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=2)
    parser.add_argument("--days", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch

    from hydrorl.demo import demo_problem
    from hydrorl.project import TrainingSettings
    from hydrorl.training.algorithm import build_model
    from hydrorl.training.imitation import teacher
    from hydrorl.training.recipe import MemorySink, Recipe

    torch.set_num_threads(1)
    problem = demo_problem(scenarios=max(args.scenarios, 4), years=1)
    settings = TrainingSettings(agents=2, validation_scenarios=0, guide="none").resolved()
    recipe = Recipe(settings, problem, None, 0, MemorySink())
    env = recipe.environment()
    model = build_model(settings, env, 0)
    assert recipe.values is not None
    planner = teacher(problem, recipe.values, settings.imitation_lookahead_days,
                      recipe.teacher_forecast())  # fmt: skip
    per_day = 86_400.0 / problem.dt_s
    steps = min(problem.n_steps - planner.lookahead_steps, round(args.days * per_day))
    obs = env.reset()
    volume = problem.default_start_volumes()

    def planner_seconds() -> float:
        started = time.perf_counter()
        solves = 0
        for s in range(args.scenarios):
            for t in range(0, steps, planner.every_steps):
                planner.plan(s, t, volume)
                solves += 1
        return (time.perf_counter() - started) / solves

    def agent_seconds(batch: int) -> float:
        rows = np.resize(obs, (batch, obs.shape[1]))
        n = 2000 // batch + 1
        started = time.perf_counter()
        for _ in range(n):
            model.predict(rows, deterministic=True)
        return (time.perf_counter() - started) / (n * batch)

    planner_seconds()  # warm: the solver's model is built on the first window
    plan = min(planner_seconds() for _ in range(args.repeat))
    one = min(agent_seconds(1) for _ in range(args.repeat))
    many = min(agent_seconds(256) for _ in range(args.repeat))
    print(f"planner (warm LP of {planner.lookahead_steps} steps): {plan * 1e3:.2f} ms per decision")
    print(f"agent, one decision at a time: {one * 1e3:.3f} ms   planner/agent {plan / one:.0f}x")
    print(
        f"agent, 256 at a time: {many * 1e6:.1f} us per decision   planner/agent {plan / many:.0f}x"
    )
    print(
        f"a decision every {planner.every_steps} steps for the planner, every step for the agent: "
        f"per step of a schedule the planner costs {plan / planner.every_steps / one:.0f}x "
        "the agent"
    )
    guided = plan / planner.every_steps + one
    print(f"a guided agent (its planner, then its network): {guided * 1e3:.2f} ms per step")


if __name__ == "__main__":
    main()
