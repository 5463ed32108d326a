"""Benchmark: PPO with all of HydroRL's bookkeeping against plain SB3 PPO on the same VecEnv.

Run: ``python benchmarks/training.py [--timesteps 65536] [--repeat 2]``

In one process, on the demo problem with the default run settings (16 batched
environments, 4-week windows), it times ``PPO.learn`` twice per repeat,
interleaved: once plain (no callback), once with the agent process's
bookkeeping (the Recorder callback writing curve points in batches to an SQLite
file, stop polling, atomic checkpoints every 30 s and of the best model, and
the heartbeat thread).  It prints env-steps/s of both and their ratio (aim >= 0.95).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

import hydrorl
from hydrorl.db import models
from hydrorl.env import CascadeVecEnv
from hydrorl.jobs.heartbeat import Heartbeat
from hydrorl.project import TrainingSettings
from hydrorl.training.agent import episode_design
from hydrorl.training.recorder import Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=65_536)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = TrainingSettings(forecast_features=False, guide="none")  # the env is built by hand
    with tempfile.TemporaryDirectory(prefix="hydrorl-bench-") as tmp:
        wb = hydrorl.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        wb.setup_demo(scenarios=20, years=5)
        problem = wb.problem("Demo forecast")

        def new_agent(session) -> tuple[int, int]:  # noqa: ANN001
            run = models.ProjectRun(
                project=session.scalar(sa.select(models.Project)),
                forecast=session.scalar(sa.select(models.Forecast)),
                kind=models.RunKind.TRAIN,
                status=models.Status.RUNNING,
                settings=settings.to_dict(),
            )
            run.agents = [models.Agent(index=0, seed=0, status=models.Status.RUNNING)]
            session.add(run)
            session.flush()
            return run.id, run.agents[0].id

        def env() -> VecMonitor:
            return VecMonitor(
                CascadeVecEnv(problem, settings.n_envs, episode_design(settings), seed=0)
            )

        rates: dict[str, list[float]] = {"plain SB3 PPO": [], "with HydroRL bookkeeping": []}
        for _ in range(args.repeat):
            model = PPO("MlpPolicy", env(), seed=0, device="cpu")
            start = time.perf_counter()
            model.learn(args.timesteps)
            rates["plain SB3 PPO"].append(model.num_timesteps / (time.perf_counter() - start))

            run_id, agent_id = wb.database.run_write(new_agent)
            vec = env()
            model = PPO("MlpPolicy", vec, seed=0, device="cpu")
            recorder = Recorder(
                wb.database,
                agent_id,
                run_id,
                Path(tmp) / f"agent-{agent_id}",
                vec.venv.episodes.reward_scale,
            )
            start = time.perf_counter()
            with Heartbeat(wb.database, models.Agent, agent_id):
                model.learn(args.timesteps, callback=recorder)
                recorder.checkpoint()
            rates["with HydroRL bookkeeping"].append(
                model.num_timesteps / (time.perf_counter() - start)
            )
        points = len(wb.curves(run_id, None))
    best = {k: max(v) for k, v in rates.items()}
    for name, rate in best.items():
        print(f"{name:<26} {rate:>10,.0f} env-steps/s (best of {args.repeat})")
    ratio = best["with HydroRL bookkeeping"] / best["plain SB3 PPO"]
    print(f"ratio: {ratio:.3f}  ({points} curve points written in the last run)")


if __name__ == "__main__":
    main()
