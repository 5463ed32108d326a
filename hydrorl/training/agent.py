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
    from hydrorl.training.points import PointWriter


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
        forecast_features=settings.forecast_features,
        residual_scale=settings.residual_scale if settings.guided else 0.0,
    )


def planner_guide(
    settings: TrainingSettings, problem: Problem, values: WaterValues | None, forecast: Any
) -> Any:
    """The guide of a guided agent on ``problem`` (a
    :class:`~hydrorl.baselines.foresight.PlannerGuide` of the imitated planner, planning on
    ``forecast`` with the water ``values``), or None if the agent is not guided."""
    if not settings.guided:
        return None
    from hydrorl.baselines.foresight import PlannerGuide
    from hydrorl.training.imitation import teacher

    if values is None or forecast is None:
        raise ValueError("a guided agent's planner needs the water values and the forecast")
    return PlannerGuide(teacher(problem, values, settings.imitation_lookahead_days, forecast.bind))


def forecaster(settings: TrainingSettings, training: Problem) -> Any:
    """The forecast the agent observes and its teacher plans on, fitted on ``training``
    (:class:`~hydrorl.baselines.expectation.StateForecast`, up to the planner's lookahead)."""
    from hydrorl.baselines.expectation import StateForecast

    per_day = 86_400.0 / training.dt_s
    steps = round(settings.imitation_lookahead_days * per_day)
    return StateForecast.fit(training, max(1, min(steps, training.n_steps)))


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
    settings: TrainingSettings,
    problem: Problem,
    training: Problem | None = None,
    values: WaterValues | None = None,
    forecast: Any = None,
) -> dict[str, Any]:
    """What :func:`~hydrorl.evaluation.evaluate_policy` needs to play an agent of these settings
    on ``problem`` as it was trained on ``training``: its observation and how its actions are read.
    ``values`` and ``forecast`` are the water values and the forecast it was shown (computed
    from ``training`` if not given).
    """
    if values is None and settings.guided:  # computed once for the planner and the features
        from hydrorl.baselines import water_values

        values = water_values(training or problem)
    _, marginal = water_value_functions(settings, problem, training, values)
    shown = None
    model = forecast
    if model is None and (settings.forecast_features or settings.guided):
        model = forecaster(settings, training or problem)
    if settings.forecast_features:
        from hydrorl.baselines.expectation import expected

        shown = expected(model, problem)
    return {
        "expected": shown,
        "guide": planner_guide(settings, problem, values, model),
        "residual_scale": settings.residual_scale if settings.guided else 0.0,
        "forecast_horizon_steps": settings.forecast_horizon_steps,
        "marginal": marginal,
        "spill_guard": settings.spill_guard,
        "context_features": settings.context_features,
        "bootstrap_window_ends": settings.bootstrap_window_ends,
    }


def imitates(settings: TrainingSettings) -> bool:
    return (
        settings.imitation_scenarios > 0 and settings.algorithm in IMITATING and not settings.guided
    )


def uses_water_values(settings: TrainingSettings) -> bool:
    """Whether the settings use the SDP water values (shaping, observation, imitation, the
    validation's benchmark): computed once per agent, they take seconds."""
    needed = settings.shaping == "water_values" or settings.water_value_feature
    needed = needed or settings.guided
    return needed or imitates(settings) or settings.validation_scenarios > 0


def train_in_process(
    settings: TrainingSettings,
    problem: Problem,
    start_volumes: np.ndarray | None = None,
    callback: Any = None,
    sink: Any = None,
) -> Any:
    """Train one agent here, with no database: the recipe as the workbench's agents run it.

    For benchmarks and tests; ``settings`` get their tuned hyper-parameters filled in.  The
    points and the best validated policy go to ``sink`` (a
    :class:`~hydrorl.training.recipe.MemorySink` unless given); the model returned holds the
    best validated policy when the settings validate.
    """
    from stable_baselines3.common.callbacks import CallbackList

    from hydrorl.training.algorithm import build_model
    from hydrorl.training.recipe import ImitationState, MemorySink, Recipe

    settings = settings.resolved()
    sink = MemorySink() if sink is None else sink
    recipe = Recipe(settings, problem, start_volumes, settings.seed, sink)
    env = recipe.environment()
    model = build_model(settings, env, settings.seed)
    recipe.spec.attach(model)
    recipe.prepare_validation()
    recipe.validate(model, fresh=True)
    state = ImitationState()
    shown = recipe.imitate(model, state, None)
    remaining = settings.timesteps - int(model.num_timesteps)
    if remaining > 0:
        callbacks = recipe.callbacks(model, shown) + ([callback] if callback else [])
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False)
    best = getattr(sink, "best_policy", None)
    if best is not None and recipe.validation is not None:
        model.policy.load_state_dict(best)
    return model


def start_volumes(session: Session, run: models.ProjectRun) -> np.ndarray:
    """The run's start volumes in the order of the system's reservoirs."""
    by_reservoir = {v.reservoir_id: v.volume_mm3 for v in run.start_volumes}
    return np.array([by_reservoir[r.id] for r in run.forecast.system.reservoirs])


def train_agent(url: str, agent_id: int) -> int:
    """Train one agent to its run's budget; return the process exit code."""
    parent_pid = os.getppid()  # before the slow imports: a supervisor may die meanwhile
    db = Database(url)
    with db.read() as session:
        agent = session.get(models.Agent, agent_id)
        if agent is None:
            return 2
        run = agent.run
        settings = TrainingSettings.from_run(run.settings)
        run_id, index, seed, checkpoint = run.id, agent.index, agent.seed, agent.checkpoint_path
        best_share = agent.best_validation
    started = claim(db, models.Agent, agent_id)
    if not started:
        return 3  # someone else owns it, or it was stopped before it began

    def stop() -> str | None:
        from hydrorl.training.points import stop_reason

        return stop_reason(db, agent_id, run_id, parent_pid)

    reporter = _Reporter(db, agent_id, stop)
    # Claimed first, then the seconds of loading (longer on a busy machine): the row says so.
    reporter.show("starting: loading the forecast and the learning libraries")
    try:
        with Heartbeat(db, models.Agent, agent_id):
            with db.read() as session:
                run_row = session.get(models.ProjectRun, run_id)
                assert run_row is not None
                problem = load_problem(session, run_row.forecast)
                volumes = start_volumes(session, run_row)
            stop_reason_text = None
            recorder = None
            try:
                model, recorder, recipe, shown = _prepare(
                    db, url, agent_id, run_id, index, seed, checkpoint, settings, problem,
                    volumes, reporter, parent_pid, best_share,
                )  # fmt: skip
            except _Stopped as stopped:  # what was done is checkpointed: a resume goes on
                stop_reason_text = stopped.reason
            if stop_reason_text is None:
                from stable_baselines3.common.callbacks import CallbackList

                from hydrorl.training.algorithm import user_callbacks

                assert recorder is not None
                recorder.init_callback(model)  # (learn does it again; imitation may use it all)
                remaining = settings.timesteps - int(model.num_timesteps)
                try:
                    if remaining > 0:
                        model.learn(
                            remaining,
                            callback=CallbackList(
                                [recorder, *recipe.callbacks(model, shown),
                                 *user_callbacks(settings)]
                            ),
                            reset_num_timesteps=False,
                        )  # fmt: skip
                    stop_reason_text = recorder.stop_reason
                except _Stopped as stopped:  # asked during a validation's planner reference
                    stop_reason_text = stopped.reason
                recorder.checkpoint()
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
    best_share: float | None,
) -> tuple[Any, Any, Any, Any]:
    """Everything before reinforcement learning (water values, validation, model, imitation),
    its progress shown as the agent's status reason and its points as curves; raises _Stopped
    when a stop is asked for meanwhile (after the last imitation pass was checkpointed).

    The reference lines and a fresh guided agent's first validation point (its planner's
    value) are written before the learning libraries are even imported: they are what the
    user sees first."""
    from hydrorl.training.points import PointWriter
    from hydrorl.training.recipe import Recipe

    folder = run_folder(url, run_id) / f"agent-{index}"
    points = PointWriter(db, agent_id)
    sink = _DatabaseSink(db, agent_id, folder, reporter, run_folder(url, run_id), points)
    resumed = bool(checkpoint and Path(checkpoint).exists())
    if not resumed:
        _forget_after(db, agent_id, -1)  # a restart from scratch drops earlier points
    recipe = Recipe(settings, problem, volumes, seed, sink, best_share=best_share, index=index)
    recipe.prepare_validation()
    if not resumed:
        recipe.record_fresh()

    import torch

    from hydrorl.training.algorithm import build_model, load_model
    from hydrorl.training.imitation import Demonstrations
    from hydrorl.training.recipe import ACTOR_LOSS, CRITIC_LOSS, ImitationState
    from hydrorl.training.recorder import Recorder

    torch.set_num_threads(_threads(settings))
    sink.status("building the agent's environment and model")
    env = recipe.environment()
    recorder = Recorder(
        db,
        agent_id,
        run_id,
        folder,
        env.venv.episodes.reward_scale,  # type: ignore[attr-defined]
        checkpoint_seconds=settings.checkpoint_seconds,
        parent_pid=parent_pid,
        best_by_peak=settings.validation_scenarios <= 0,
        points=points,
    )
    sink.recorder = recorder
    if resumed:
        assert checkpoint is not None
        model = load_model(settings, checkpoint, env)
        state = ImitationState.load(folder / IMITATION_STATE)
        _forget_after(db, agent_id, int(model.num_timesteps))
        _forget_after(db, agent_id, state.epochs_done, names=(ACTOR_LOSS, CRITIC_LOSS))
        demos = folder / DEMONSTRATIONS
        shown = Demonstrations.load(demos) if demos.exists() else None
    else:
        model = build_model(settings, env, seed)
        state, shown = ImitationState(), None
    recipe.spec.attach(model)  # every checkpoint carries what the agent observes
    if not resumed:
        recipe.validate(model, fresh=True)  # the first point: what the fresh policy is worth
    shown = recipe.imitate(model, state, shown)
    sink.flush()
    reporter.check()
    reporter.show("")
    return model, recorder, recipe, shown


#: Files beside an agent's checkpoints: how far its imitation got, and what it was shown.
IMITATION_STATE = "imitation.json"
DEMONSTRATIONS = "demonstrations.npz"


class _DatabaseSink:
    """The recipe's :class:`~hydrorl.training.recipe.Sink` in an agent process: status reason,
    curve points and checkpoints of the agent, the references shared in the run's folder."""

    def __init__(
        self,
        db: Database,
        agent_id: int,
        folder: Path,
        reporter: _Reporter,
        run: Path,
        points: PointWriter,
    ) -> None:
        self.db, self.agent_id, self.folder, self.reporter = db, agent_id, folder, reporter
        self.run, self.points = run, points
        self.recorder: Any = None  # once the model is built

    def status(self, text: str) -> None:
        if text:
            self.reporter(text)
        else:  # done: at once, not once a second
            self.reporter.check()
            self.reporter.show("")

    def record(self, name: str, timestep: int, value: float) -> None:
        self.points.add(name, timestep, value)

    def flush(self) -> None:
        if self.recorder is None:
            self.points.flush()
        else:  # with the agent's timesteps and best peak
            self.recorder.flush()

    def save_last(self, model: Any, state: Any, shown: Any) -> None:
        from hydrorl.training.recorder import save_atomically

        self.folder.mkdir(parents=True, exist_ok=True)
        if shown is not None:
            shown.save(self.folder / DEMONSTRATIONS)
        save_atomically(model, self.recorder.last_path)
        state.save(self.folder / IMITATION_STATE)  # last: it says the files beside it are whole
        self.recorder.num_timesteps = int(model.num_timesteps)
        self.recorder.flush()
        path = str(self.recorder.last_path)
        self.db.run_write(
            lambda s: s.execute(
                sa.update(models.Agent)
                .where(models.Agent.id == self.agent_id)
                .values(checkpoint_path=path)
            )
        )
        self.reporter.check()

    def save_best(self, model: Any, share: float) -> None:
        from hydrorl.training.recorder import save_atomically

        self.folder.mkdir(parents=True, exist_ok=True)
        save_atomically(model, self.recorder.best_path)
        path = str(self.recorder.best_path)
        self.db.run_write(
            lambda s: s.execute(
                sa.update(models.Agent)
                .where(models.Agent.id == self.agent_id)
                .values(best_checkpoint_path=path, best_validation=float(share))
            )
        )

    def shared(self) -> Path | None:
        return self.run / "shared"


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


def _forget_after(
    db: Database, agent_id: int, timestep: int, names: tuple[str, ...] | None = None
) -> None:
    """Drop curve points written after the checkpoint a resumed agent goes on from (of the
    curves ``names`` only, their own timestep: the imitation counts epochs)."""
    data_ids = sa.select(models.TrainStepData.id).where(models.TrainStepData.agent_id == agent_id)
    if names is not None:
        data_ids = data_ids.where(models.TrainStepData.name.in_(names))
    db.run_write(
        lambda s: s.execute(
            sa.delete(models.TrainStepValue).where(
                models.TrainStepValue.data_id.in_(data_ids),
                models.TrainStepValue.timestep > timestep,
            )
        )
    )
    if names is not None:
        return
    db.run_write(
        lambda s: s.execute(
            sa.update(models.Agent)
            .where(models.Agent.id == agent_id)
            .values(timesteps_done=max(timestep, 0))  # -1: a fresh start, nothing done
        )
    )
