"""The process of one agent: learn, report, checkpoint, obey stop signals."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl import settings as hydrorl_settings
from hydrorl.db import Database, models
from hydrorl.db.models import Status
from hydrorl.db.problems import load_problem
from hydrorl.jobs.heartbeat import Heartbeat
from hydrorl.jobs.ownership import claim, fail_with_traceback, finish
from hydrorl.physics import Problem
from hydrorl.physics.episode import EpisodeDesign, Potential
from hydrorl.project import IMITATING, TrainingSettings

if TYPE_CHECKING:
    from hydrorl.baselines.sdp import WaterValues


def run_folder(url: str, run_id: int) -> Path:
    """Where a run's checkpoints and process logs live: a folder per database and run.

    Two databases under one HydroRL home (say the default one and a benchmark's)
    both have a run 1; their files must not meet.
    """
    return hydrorl_settings.home_dir() / "runs" / hydrorl_settings.database_key(url) / str(run_id)


def episode_design(settings: TrainingSettings) -> EpisodeDesign:
    return EpisodeDesign(
        episode_steps=settings.episode_steps,
        random_start=settings.random_start,
        random_start_volumes=settings.random_start_volumes,
        forecast_horizon_steps=settings.forecast_horizon_steps,
        spill_guard=settings.spill_guard,
        context_features=settings.context_features,
        bootstrap_window_ends=settings.bootstrap_window_ends,
    )


def shaping_potential(settings: TrainingSettings, problem: Problem) -> Potential | None:
    """The reward shaping the settings ask for, computed on the training forecast."""
    return water_value_functions(settings, problem)[0]


def water_value_functions(
    settings: TrainingSettings,
    problem: Problem,
    training: Problem | None = None,
    values: WaterValues | None = None,
) -> tuple[Potential | None, Potential | None]:
    """(shaping potential, observed water value) the settings ask for, on ``problem``.

    Both come from the water values of the training forecast (``training``, by
    default ``problem`` itself), computed once unless given as ``values``.
    """
    if settings.shaping != "water_values" and not settings.water_value_feature:
        return None, None
    from hydrorl.baselines import water_values

    values = water_values(training or problem) if values is None else values
    potential = values.potential(problem) if settings.shaping == "water_values" else None
    marginal = values.marginal(problem) if settings.water_value_feature else None
    return potential, marginal


def evaluation_options(
    settings: TrainingSettings, problem: Problem, training: Problem | None = None
) -> dict[str, Any]:
    """What :func:`~hydrorl.evaluation.evaluate_policy` needs to play an agent of these settings
    on ``problem`` as it was trained on ``training``: its observation and how its actions are read.
    """
    _, marginal = water_value_functions(settings, problem, training)
    return {
        "forecast_horizon_steps": settings.forecast_horizon_steps,
        "marginal": marginal,
        "spill_guard": settings.spill_guard,
        "context_features": settings.context_features,
        "bootstrap_window_ends": settings.bootstrap_window_ends,
    }


def imitates(settings: TrainingSettings) -> bool:
    return settings.imitation_scenarios > 0 and settings.algorithm in IMITATING


def uses_water_values(settings: TrainingSettings) -> bool:
    """Whether the settings use the SDP water values (shaping, observation, imitation)."""
    needed = settings.shaping == "water_values" or settings.water_value_feature
    return needed or imitates(settings)


def training_water_values(
    settings: TrainingSettings,
    problem: Problem,
    progress: Callable[[float], None] | None = None,
) -> WaterValues | None:
    """The SDP water values of ``problem`` if the settings use them (shaping, observation,
    the imitated planner's end values): computed once per agent, they take seconds.
    ``progress`` is told the share done (it may raise to stop)."""
    if not uses_water_values(settings):
        return None
    from hydrorl.baselines import water_values

    return water_values(problem, progress=progress)


def warm_start(
    model: Any,
    settings: TrainingSettings,
    problem: Problem,
    start_volumes: np.ndarray | None,
    potential: Potential | None,
    marginal: Potential | None,
    seed: int,
    progress: Callable[[str], None] | None = None,
    values: WaterValues | None = None,
) -> None:
    """Teach a fresh model to imitate the planner first, if the settings ask for it.

    One pass along the planner's own path, then ``imitation_rounds`` passes along the
    policy's (DAgger), each followed by a fit to all that was shown.  ``progress`` is
    told what is being done about once a second; it may raise to stop.  ``values`` are
    the benchmark's water values of ``problem`` (computed if not given).
    """
    if not imitates(settings):
        return
    from hydrorl.baselines import water_values
    from hydrorl.training.imitation import concatenate, gather, imitate

    rng = np.random.default_rng(seed)
    count = min(settings.imitation_scenarios, problem.n_scenarios)
    scenarios = np.sort(rng.choice(problem.n_scenarios, count, replace=False))
    values = water_values(problem) if values is None else values
    passes = settings.imitation_rounds + 1
    workers = min(count, _threads(settings))
    shown = None
    for k in range(passes):
        path = "the planner's path" if k == 0 else "the agent's own path"

        def report(done: float, k: int = k, path: str = path) -> None:
            if progress is not None:
                progress(f"imitating the planner: pass {k + 1} of {passes} ({path}), {done:.0%}")

        more = gather(
            problem,
            episode_design(settings),
            scenarios,
            workers=workers,
            policy=None if k == 0 else model.policy,
            progress=report,
            gamma=float(model.gamma),
            start_volumes=start_volumes,
            potential=potential,
            marginal=marginal,
            lookahead_days=settings.imitation_lookahead_days,
            values=values,
        )
        shown = more if shown is None else concatenate([shown, more])

        def fitting(done: float, k: int = k) -> None:
            if progress is not None:
                progress(
                    f"imitating the planner: fitting after pass {k + 1} of {passes}, {done:.0%}"
                )

        imitate(model, shown, epochs=IMITATION_EPOCHS, seed=seed, progress=fitting)


#: Passes over the demonstrations at each fit.
IMITATION_EPOCHS = 40


def train_in_process(
    settings: TrainingSettings,
    problem: Problem,
    start_volumes: np.ndarray | None = None,
    callback: Any = None,
) -> Any:
    """Train one agent here, with no database: the recipe as the workbench's agents run it.

    For benchmarks and tests; ``settings`` get their tuned hyper-parameters filled in.
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from hydrorl.env import CascadeVecEnv
    from hydrorl.training.algorithm import build_model

    settings = settings.resolved()
    values = training_water_values(settings, problem)
    potential, marginal = water_value_functions(settings, problem, values=values)
    env = VecMonitor(
        CascadeVecEnv(
            problem,
            settings.n_envs,
            episode_design(settings),
            start_volumes=start_volumes,
            seed=settings.seed,
            potential=potential,
            marginal=marginal,
        )
    )
    model = build_model(settings, env, settings.seed)
    warm_start(
        model, settings, problem, start_volumes, potential, marginal, settings.seed, values=values
    )
    model.learn(settings.timesteps, callback=callback)
    return model


def start_volumes(session: Session, run: models.ProjectRun) -> np.ndarray:
    """The run's start volumes in the order of the system's reservoirs."""
    by_reservoir = {v.reservoir_id: v.volume_mm3 for v in run.start_volumes}
    return np.array([by_reservoir[r.id] for r in run.forecast.system.reservoirs])


def train_agent(url: str, agent_id: int) -> int:
    """Train one agent to its run's budget; return the process exit code."""
    parent_pid = os.getppid()  # before the slow imports: a supervisor may die meanwhile
    import torch
    from stable_baselines3.common.callbacks import CallbackList

    from hydrorl.training.algorithm import user_callbacks
    from hydrorl.training.recorder import stop_reason

    db = Database(url)
    with db.read() as session:
        agent = session.get(models.Agent, agent_id)
        if agent is None:
            return 2
        run = agent.run
        settings = TrainingSettings.from_run(run.settings)
        problem = load_problem(session, run.forecast)
        volumes = start_volumes(session, run)
        run_id, index, seed, checkpoint = run.id, agent.index, agent.seed, agent.checkpoint_path
    torch.set_num_threads(_threads(settings))
    started = claim(db, models.Agent, agent_id)
    if not started:
        return 3  # someone else owns it, or it was stopped before it began
    reporter = _Reporter(db, agent_id, lambda: stop_reason(db, agent_id, run_id, parent_pid))
    try:
        with Heartbeat(db, models.Agent, agent_id):
            stop_reason_text = None
            try:
                model, recorder = _prepare(
                    db, url, agent_id, run_id, index, seed, checkpoint, settings, problem,
                    volumes, reporter, parent_pid,
                )  # fmt: skip
            except _Stopped as stopped:  # nothing worth keeping yet: a resume starts again
                stop_reason_text = stopped.reason
            if stop_reason_text is None:
                remaining = settings.timesteps - int(model.num_timesteps)
                if remaining > 0:
                    model.learn(
                        remaining,
                        callback=CallbackList([recorder, *user_callbacks(settings)]),
                        reset_num_timesteps=False,
                    )
                recorder.checkpoint()
                stop_reason_text = recorder.stop_reason
        final = Status.STOPPED if stop_reason_text else Status.COMPLETED
        finish(db, models.Agent, agent_id, final, stop_reason_text or "")
        return 0
    except BaseException as e:
        fail_with_traceback(db, models.Agent, agent_id, e)
        return 1
    finally:
        db.dispose()


def _prepare(
    db: Database,
    url: str,
    agent_id: int,
    run_id: int,
    index: int,
    seed: int,
    checkpoint: str | None,
    settings: TrainingSettings,
    problem: Problem,
    volumes: np.ndarray,
    reporter: _Reporter,
    parent_pid: int,
) -> tuple[Any, Any]:
    """Everything before learning (water values, model, imitation), showing its progress as
    the agent's status reason; raises _Stopped when a stop is asked for meanwhile."""
    from stable_baselines3.common.vec_env import VecMonitor

    from hydrorl.env import CascadeVecEnv
    from hydrorl.training.algorithm import build_model, load_model
    from hydrorl.training.recorder import Recorder

    design = episode_design(settings)
    values = training_water_values(
        settings, problem, lambda done: reporter(f"computing the water values, {done:.0%}")
    )
    potential, marginal = water_value_functions(settings, problem, values=values)
    env = VecMonitor(
        CascadeVecEnv(
            problem,
            settings.n_envs,
            design,
            start_volumes=volumes,
            seed=seed,
            potential=potential,
            marginal=marginal,
        )
    )
    recorder = Recorder(
        db,
        agent_id,
        run_id,
        run_folder(url, run_id) / f"agent-{index}",
        env.venv.episodes.reward_scale,  # type: ignore[attr-defined]
        checkpoint_seconds=settings.checkpoint_seconds,
        parent_pid=parent_pid,
    )
    if checkpoint and Path(checkpoint).exists():
        model = load_model(settings, checkpoint, env)
        _forget_after(db, agent_id, int(model.num_timesteps))
    else:
        model = build_model(settings, env, seed)
        _forget_after(db, agent_id, -1)  # a restart from scratch drops earlier points
        warm_start(model, settings, problem, volumes, potential, marginal, seed, reporter, values)
    reporter.check()
    reporter.show("")
    return model, recorder


class _Stopped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Reporter:
    """Shows the preparation's progress as the agent's status reason; stops it when asked."""

    def __init__(
        self, db: Database, agent_id: int, stop: Callable[[], str | None], seconds: float = 1.0
    ) -> None:
        self.db, self.agent_id, self.stop, self.seconds = db, agent_id, stop, seconds
        self._next = 0.0
        self._shown = ""

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.seconds
        self.check()
        self.show(text)

    def check(self) -> None:
        reason = self.stop()
        if reason:
            raise _Stopped(reason)

    def show(self, text: str) -> None:
        if text != self._shown:
            self.db.run_write(
                lambda s: s.execute(
                    sa.update(models.Agent)
                    .where(models.Agent.id == self.agent_id)
                    .values(status_reason=text)
                )
            )
            self._shown = text


def _threads(settings: TrainingSettings) -> int:
    """Torch threads (and imitation workers) of one agent: the cores shared by the agents."""
    return max(1, (os.cpu_count() or 1) // settings.agents)


def _forget_after(db: Database, agent_id: int, timestep: int) -> None:
    """Drop curve points written after the checkpoint a resumed agent goes on from."""
    data_ids = sa.select(models.TrainStepData.id).where(models.TrainStepData.agent_id == agent_id)
    db.run_write(
        lambda s: s.execute(
            sa.delete(models.TrainStepValue).where(
                models.TrainStepValue.data_id.in_(data_ids),
                models.TrainStepValue.timestep > timestep,
            )
        )
    )
    db.run_write(
        lambda s: s.execute(
            sa.update(models.Agent)
            .where(models.Agent.id == agent_id)
            .values(timesteps_done=max(timestep, 0))  # -1: a fresh start, nothing done
        )
    )
