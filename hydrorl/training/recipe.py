"""The recipe of one agent, step by step, with or without a database.

1. The SDP water values of the training forecast (shaping, observation, the teacher's
   end values).
2. Validation (:mod:`hydrorl.training.validation`): some training scenarios are held
   aside; the bound and the SDP benchmark on them are the first reference lines, and the
   fresh policy's value the first point of the validation curve.
3. Imitation (:mod:`hydrorl.training.imitation`): passes of demonstrations and fits, each
   followed by a validation and a checkpoint of everything so far (the policy, the
   demonstrations, the passes done), so that a stop or a crash loses at most one pass.
4. Reinforcement learning, anchored to the demonstrations, validated every
   ``validation_seconds``; the best checkpoint is the best validated policy.

A guided agent (``settings.guide == "planner"``) skips step 3: its actions correct the
planner's discharges (:class:`~hydrorl.baselines.foresight.PlannerGuide`, shown in its
observation), so before it learns anything it plays the planner, and reinforcement
learning starts from there.

What the recipe tells as it goes goes to a :class:`Sink`: the agent process's writes
curve points and checkpoints to the database and the run's folder; :class:`MemorySink`
keeps them in memory (benchmarks, tests, notebooks without a workbench).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hydrorl.physics import Problem
from hydrorl.project import TrainingSettings
from hydrorl.training import validation as val

if TYPE_CHECKING:
    from hydrorl.baselines.sdp import WaterValues
    from hydrorl.training.imitation import Demonstrations

#: Passes over the demonstrations at each fit.
IMITATION_EPOCHS = 40
#: Curves of the imitation (their timestep counts fitting epochs, not environment steps).
ACTOR_LOSS, CRITIC_LOSS = "imitation/actor_loss", "imitation/critic_loss"
ANCHOR_LOSS = "imitation/anchor_loss"


@dataclasses.dataclass
class ImitationState:
    """How far an agent's imitation got: saved beside its last checkpoint."""

    passes_done: int = 0
    epochs_done: int = 0
    steps_walked: int = 0

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".partial")
        temporary.write_text(json.dumps(dataclasses.asdict(self)))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> ImitationState:
        return cls(**json.loads(path.read_text())) if path.exists() else cls()


class Sink(Protocol):
    """Where the recipe tells what it does (see the module docstring)."""

    def status(self, text: str) -> None:
        """Show what is being done now ("": nothing any more); may raise to stop."""

    def record(self, name: str, timestep: int, value: float) -> None: ...

    def flush(self) -> None: ...

    def save_last(self, model: Any, state: ImitationState, shown: Demonstrations | None) -> None:
        """Checkpoint the model with the imitation's state and demonstrations."""

    def save_best(self, model: Any, share: float) -> None:
        """Keep the model as the best validated one (``share``: of the bound)."""

    def references(self) -> Path | None:
        """A file the agents of a run share their validation references through, or None."""


class MemorySink:
    """Keeps the points, and the best validated policy's weights, in memory."""

    def __init__(self) -> None:
        self.points: list[tuple[str, int, float]] = []
        self.best_share: float | None = None
        self.best_policy: dict[str, Any] | None = None
        self.last: tuple[ImitationState, Demonstrations | None] | None = None

    def status(self, text: str) -> None:
        pass

    def record(self, name: str, timestep: int, value: float) -> None:
        self.points.append((name, timestep, value))

    def flush(self) -> None:
        pass

    def save_last(self, model: Any, state: ImitationState, shown: Demonstrations | None) -> None:
        self.last = (dataclasses.replace(state), shown)

    def save_best(self, model: Any, share: float) -> None:
        import copy

        self.best_share, self.best_policy = share, copy.deepcopy(model.policy.state_dict())

    def references(self) -> Path | None:
        return None

    def curves(self) -> dict[str, np.ndarray]:
        """Points per curve as (timestep, value) rows."""
        out: dict[str, list[tuple[int, float]]] = {}
        for name, timestep, value in self.points:
            out.setdefault(name, []).append((timestep, value))
        return {name: np.array(rows) for name, rows in out.items()}


class Recipe:
    """The steps of one agent's training on ``problem`` (the run's whole training forecast)."""

    def __init__(
        self,
        settings: TrainingSettings,
        problem: Problem,
        start_volumes: np.ndarray | None,
        seed: int,
        sink: Sink,
        *,
        values: WaterValues | None = None,
        best_share: float | None = None,
    ) -> None:
        from hydrorl.training.agent import (
            episode_design,
            uses_water_values,
            water_value_functions,
        )

        self.settings, self.problem, self.start_volumes = settings, problem, start_volumes
        self.seed, self.sink = seed, sink
        self.design = episode_design(settings)
        learn, aside = val.split(problem.n_scenarios, settings.validation_scenarios, settings.seed)
        self.learn_scenarios, self.aside = learn, aside
        self.learning = problem.scenarios(learn) if len(learn) < problem.n_scenarios else problem
        if values is None and uses_water_values(settings):
            from hydrorl.baselines import water_values

            values = water_values(
                problem,
                progress=lambda done: sink.status(f"computing the water values, {done:.0%}"),
            )
        self.values = values
        self.potential, self.marginal = water_value_functions(settings, problem, values=values)
        self.validation: val.Validation | None = None
        self.best_share = best_share
        self.forecaster: Any = None  # fitted on the scenarios learnt on, once
        if settings.forecast_features or self.imitates() or settings.guided:
            from hydrorl.training.agent import forecaster

            sink.status("fitting the forecast")
            self.forecaster = forecaster(settings, self.learning)
        self.expected = self.expected_of(self.learning)

    def expected_of(self, problem: Problem) -> Any:
        """The forecast features of ``problem`` if the agent observes them, else None."""
        if not self.settings.forecast_features:
            return None
        from hydrorl.baselines.expectation import expected

        return expected(self.forecaster, problem)

    # ------------------------------------------------------------------ pieces

    def environment(self) -> Any:
        """The agent's VecEnv: windows of the scenarios it learns on."""
        from stable_baselines3.common.vec_env import VecMonitor

        from hydrorl.env import CascadeVecEnv
        from hydrorl.training.agent import planner_guide

        return VecMonitor(
            CascadeVecEnv(
                self.learning,
                self.settings.n_envs,
                self.design,
                start_volumes=self.start_volumes,
                seed=self.seed,
                potential=self.potential,
                marginal=self.marginal,
                expected=self.expected,
                guide=planner_guide(self.settings, self.learning, self.values, self.forecaster),
            )
        )

    @property
    def spec(self) -> Any:
        """What the agent observes (:class:`~hydrorl.env.spec.ObservationSpec`), carried by its
        checkpoints."""
        from hydrorl.env.spec import ObservationSpec

        return ObservationSpec.of_training(
            self.settings, self.problem, self.values, self.forecaster
        )

    def teacher_forecast(self) -> Callable[[Problem], Any]:
        """The teacher's forecast (the one the agent observes), to be bound to a problem."""
        return self.forecaster.bind

    def imitates(self) -> bool:
        from hydrorl.training.agent import imitates

        return imitates(self.settings)

    # ------------------------------------------------------------------ validation

    def prepare_validation(self) -> None:
        """Episodes, bound and SDP benchmark of the held-aside scenarios (shared by a run's agents
        through the sink's references file); records the reference lines."""
        if self.settings.validation_scenarios <= 0 or self.validation is not None:
            return
        assert self.values is not None
        from hydrorl.training.agent import evaluation_options

        self.sink.status("validation: the bound and the benchmark of the held-aside scenarios")
        shared = _read_references(self.sink.references())
        validation = val.Validation.prepare(
            self.problem,
            self.aside,
            self.settings.validation_days,
            self.values,
            lambda p: evaluation_options(
                self.settings, p, self.problem, values=self.values, forecast=self.forecaster
            ),
            self.start_volumes,
            known=shared,
        )
        self.validation = validation
        _write_references(self.sink.references(), validation)
        self._record_references(0)

    def add_planner_reference(self, timestep: int) -> None:
        """The imitated planner on the validation episodes, once per run (shared by the agents:
        one computes it, the others read it when it is there)."""
        v = self.validation
        if v is None or v.planner_eur is not None or self.values is None:
            return
        path = self.sink.references()
        shared = _read_references(path)
        if shared.get("planner_eur") is not None:
            v.planner_eur = float(shared["planner_eur"])
        else:
            with _exclusive(path) as mine:
                if not mine:
                    return  # another agent computes it: read at the next validation
                v.add_planner(
                    self.values,
                    self.settings.imitation_lookahead_days,
                    self.teacher_forecast(),
                    lambda done: self.sink.status(
                        f"validation: the planner on the held-aside scenarios, {done:.0%}"
                    ),
                )
                _write_references(path, v)
                self.sink.status("")
        self._record_references(timestep)

    def _record_references(self, timestep: int) -> None:
        assert self.validation is not None
        for name, value in self.validation.reference_points().items():
            self.sink.record(name, timestep, value)

    def validate(self, model: Any) -> float | None:
        """Score the policy on the validation episodes, record it, keep it if it is the best."""
        if self.validation is None:
            return None
        value = self.validation.score(model)
        share = self.validation.share(value)
        timestep = int(model.num_timesteps)
        for name, point in self.validation.points(value).items():
            self.sink.record(name, timestep, point)
        if self.best_share is None or share > self.best_share:
            self.best_share = share
            self.sink.save_best(model, share)
        self.sink.flush()
        return share

    # ------------------------------------------------------------------ imitation

    def imitate(
        self, model: Any, state: ImitationState, shown: Demonstrations | None
    ) -> Demonstrations | None:
        """The imitation passes not done yet (from ``state``); the demonstrations shown."""
        if not self.imitates():
            return shown
        from hydrorl.training.agent import _threads
        from hydrorl.training.imitation import (
            concatenate,
            draw_windows,
            gather,
            imitate,
            teacher,
            window_steps,
        )

        s = self.settings
        assert self.values is not None
        planner = teacher(self.learning, self.values, s.imitation_lookahead_days,
                          self.teacher_forecast())  # fmt: skip
        passes = s.imitation_rounds + 1
        steps = window_steps(self.learning, s.imitation_window_days, float(model.gamma))
        for k in range(state.passes_done, passes):
            path = "the planner's path" if k == 0 else "the agent's own path"
            rng = np.random.default_rng([self.seed, k])
            if s.imitation_window_days > 0:
                windows = draw_windows(
                    self.learning, s.imitation_scenarios, steps, rng,
                    random_volumes=s.random_start_volumes, start_volumes=self.start_volumes,
                )  # fmt: skip
            else:  # whole scenarios from the start volumes, as the recipe did first
                windows = draw_windows(
                    self.learning, min(s.imitation_scenarios, self.learning.n_scenarios),
                    steps, rng, random_volumes=False, start_volumes=self.start_volumes,
                )  # fmt: skip

            def walking(done: float, k: int = k, path: str = path) -> None:
                self.sink.status(
                    f"imitating the planner: pass {k + 1} of {passes} ({path}), {done:.0%}"
                )

            more = gather(
                planner,
                self.design,
                windows,
                workers=min(len(windows), _threads(s)),
                policy=None if k == 0 else model.policy,
                progress=walking,
                gamma=float(model.gamma),
                potential=self.potential,
                marginal=self.marginal,
                expected=self.expected,
            )
            shown = more if shown is None else concatenate([shown, more])

            def fitting(done: float, k: int = k) -> None:
                self.sink.status(
                    f"imitating the planner: fitting after pass {k + 1} of {passes}, {done:.0%}"
                )

            first_epoch = state.epochs_done

            def epoch_done(epoch: int, losses: dict[str, float], first: int = first_epoch) -> None:
                self.sink.record(ACTOR_LOSS, first + epoch + 1, losses["actor"])
                self.sink.record(CRITIC_LOSS, first + epoch + 1, losses["critic"])

            imitate(model, shown, epochs=IMITATION_EPOCHS, seed=self.seed + k,
                    progress=fitting, on_epoch=epoch_done)  # fmt: skip
            state.passes_done, state.epochs_done = k + 1, first_epoch + IMITATION_EPOCHS
            state.steps_walked += len(more)
            model.num_timesteps = state.steps_walked
            self.sink.status(f"validating after imitation pass {k + 1} of {passes}")
            self.validate(model)
            if k == 0:
                self.add_planner_reference(int(model.num_timesteps))
            self.sink.save_last(model, state, shown)
        return shown

    # ------------------------------------------------------------------ reinforcement learning

    def callbacks(self, model: Any, shown: Demonstrations | None) -> list[Any]:
        """SB3 callbacks of the reinforcement learning: anchoring and validation."""
        from stable_baselines3.common.callbacks import BaseCallback

        recipe = self
        found: list[BaseCallback] = []
        s = self.settings
        if shown is not None and len(shown) and s.imitation_anchor > 0:
            from hydrorl.training.imitation import Anchor

            anchor = Anchor(model, shown, weight=s.imitation_anchor, steps=s.timesteps,
                            seed=self.seed)  # fmt: skip

            class Anchoring(BaseCallback):
                def _on_step(self) -> bool:
                    return True

                def _on_rollout_end(self) -> None:
                    loss = anchor.update()
                    if loss is not None and self.n_calls % 50 == 0:
                        recipe.sink.record(ANCHOR_LOSS, int(self.num_timesteps), loss)

            found.append(Anchoring())
        if self.validation is not None:
            import time

            class Validating(BaseCallback):
                def _on_training_start(self) -> None:
                    self.next = time.monotonic() + s.validation_seconds

                def _on_step(self) -> bool:
                    return True

                def _on_rollout_end(self) -> None:
                    if time.monotonic() >= self.next:
                        recipe.add_planner_reference(int(self.num_timesteps))
                        recipe.validate(self.model)
                        self.next = time.monotonic() + s.validation_seconds

                def _on_training_end(self) -> None:
                    if self.num_timesteps >= s.timesteps:  # the budget's end, not a stop
                        recipe.validate(self.model)

            found.append(Validating())
        return found


def _read_references(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_references(path: Path | None, validation: val.Validation) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "bound_eur": validation.bound_eur,
        "sdp_eur": validation.sdp_eur,
        "planner_eur": validation.planner_eur,
    }
    temporary = path.with_name(f"{path.name}.{id(data)}.partial")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)


@contextlib.contextmanager
def _exclusive(path: Path | None):  # noqa: ANN202
    """Hold ``path``'s lock file if no one else does (yields whether it is held)."""
    if path is None:
        yield True
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
