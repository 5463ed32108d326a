"""Benchmark: environment steps per second of the batched physics against single envs.

Run: ``python benchmarks/physics.py [--seconds 1.0]``

In one process, on the demo problem (3-hourly, 20 scenarios, 5 years), it
measures env-steps/s of:

* ``CascadeVecEnv`` (the batched physics behind SB3, auto-reset included) at
  batch 1, 64, 256 and 1024;
* the single gymnasium ``CascadeEnv`` of the same physics, stepped in a Python loop;
* ``gymnasium.make("CartPole-v1")`` as a yardstick of a cheap Python env.

It prints each rate and its ratio to the single env (aim: >= 50x at batch 256)
and to CartPole.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

from hydrorl.demo import demo_problem
from hydrorl.env import CascadeEnv, CascadeVecEnv
from hydrorl.physics.episode import EpisodeDesign

DESIGN = EpisodeDesign(episode_steps=8 * 7 * 4, random_start=True, random_start_volumes=True)


def rate_single(env: gym.Env, seconds: float) -> float:
    env.reset(seed=0)
    action = env.action_space.sample()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        steps += 100
    return steps / (time.perf_counter() - start)


def rate_vec(vec: CascadeVecEnv, seconds: float) -> float:
    vec.reset()
    actions = np.random.default_rng(0).random((vec.num_envs, vec.action_space.shape[0]))
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(actions)
        calls += 1
    return calls * vec.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    problem = demo_problem()
    single = rate_single(CascadeEnv(problem, DESIGN), args.seconds)
    cartpole = rate_single(gym.make("CartPole-v1"), args.seconds)
    print(f"{'what':<28} {'env-steps/s':>14} {'x single env':>13} {'x CartPole':>11}")
    print(
        f"{'CartPole-v1 (yardstick)':<28} {cartpole:>14,.0f} {cartpole / single:>13.2f} {1:>11.2f}"
    )
    print(f"{'CascadeEnv (single)':<28} {single:>14,.0f} {1:>13.2f} {single / cartpole:>11.2f}")
    for batch in (1, 64, 256, 1024):
        rate = rate_vec(CascadeVecEnv(problem, batch, DESIGN, seed=0), args.seconds)
        print(
            f"{f'CascadeVecEnv batch {batch}':<28} {rate:>14,.0f} {rate / single:>13.1f} "
            f"{rate / cartpole:>11.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
