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

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hydrorl.physics import Problem
from hydrorl.project import TrainingSettings
from hydrorl.training import validation as val
from hydrorl.training.shared import Piece, SharedWork

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

    def shared(self) -> Path | None:
        """A folder the agents of a run share their common work through (None: not shared);
        see :mod:`hydrorl.training.shared`."""


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

    def shared(self) -> Path | None:
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
        index: int = 0,
    ) -> None:
        from hydrorl.training.agent import (
            episode_design,
            uses_water_values,
            water_value_functions,
        )

        self.settings, self.problem, self.start_volumes = settings, problem, start_volumes
        self.seed, self.sink = seed, sink
        folder = sink.shared()
        if folder is not None:  # what the pieces are made of names their folder
            folder = folder / _fingerprint(settings, problem, start_volumes)
        self.shared = SharedWork(folder, sink.status, start=index)
        self.design = episode_design(settings)
        learn, aside = val.split(problem.n_scenarios, settings.validation_scenarios, settings.seed)
        self.learn_scenarios, self.aside = learn, aside
        self.learning = problem.scenarios(learn) if len(learn) < problem.n_scenarios else problem
        self.episodes = (
            val.episodes(problem, aside, settings.validation_days)
            if settings.validation_scenarios > 0
            else None
        )
        # The pieces every agent of the run needs, shared: computed once, two at a time.
        pieces = []
        if values is None and uses_water_values(settings):
            from hydrorl.baselines import water_values

            pieces.append(Piece("water-values", "the water values", lambda: water_values(
                problem,
                progress=lambda done: sink.status(f"computing the water values, {done:.0%}"),
            )))  # fmt: skip
        if settings.forecast_features or self.imitates() or settings.guided:
            from hydrorl.training.agent import forecaster

            def fit() -> Any:
                sink.status("fitting the forecast to the training scenarios")
                return forecaster(settings, self.learning)

            pieces.append(Piece("forecast", "the fitted forecast", fit))
        episodes = self.episodes
        if episodes is not None:
            pieces += [self._bound_piece(episodes, s) for s in range(episodes.n_scenarios)]
        found = self.shared.get(pieces)
        self.values = found.get("water-values", values)
        self.forecaster: Any = found.get("forecast")  # fitted on the scenarios learnt on
        self._bounds = [found[f"bound-{s}"] for s in range(len(aside))] if episodes else []
        self.potential, self.marginal = water_value_functions(settings, problem, values=self.values)
        self.validation: val.Validation | None = None
        self.best_share = best_share
        self._fresh_value: float | None = None  # recorded before the model was built

    @functools.cached_property
    def expected(self) -> Any:
        """The forecast features of the scenarios learnt on (seconds: computed when needed)."""
        return self.expected_of(self.learning)

    def _bound_piece(self, episodes: Problem, s: int) -> Piece:
        n = episodes.n_scenarios

        def bound() -> float:
            self.sink.status(f"validation: the bound of held-aside scenario {s + 1} of {n}")
            return val.bound_eur(episodes, s, self.start_volumes)

        return Piece(f"bound-{s}", f"the bound of held-aside scenario {s + 1}", bound)

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
        """The SDP benchmark and the planner on the validation episodes (shared by a run's
        agents, as the bound is); records and shows the reference lines at once."""
        episodes = self.episodes
        if episodes is None or self.validation is not None:
            return
        values = self.values
        assert values is not None
        from hydrorl.training.agent import evaluation_options

        def sdp() -> float:
            self.sink.status("validation: the SDP benchmark of the held-aside scenarios")
            return val.sdp_eur(episodes, values, self.start_volumes)

        n = episodes.n_scenarios
        pieces = []  # the longest first: two agents start on different planners
        if self.forecaster is not None:  # the forecast planner: guide, teacher, yardstick
            pieces += [self._planner_piece(episodes, s) for s in range(n)]
        pieces.append(Piece("sdp", "the SDP benchmark", sdp))
        found = self.shared.get(pieces)
        planner = [found[f"planner-{s}"] for s in range(n) if f"planner-{s}" in found]
        self.validation = val.Validation(
            episodes,
            self.start_volumes,
            evaluation_options(
                self.settings, episodes, self.problem, values=values, forecast=self.forecaster
            ),
            float(np.mean(self._bounds)),
            float(found["sdp"]),
            float(np.mean(planner)) if planner else None,
        )
        self._record_references(0)
        self.sink.flush()  # the reference lines are on the page before the first validation

    def _planner_piece(self, episodes: Problem, s: int) -> Piece:
        n = episodes.n_scenarios
        assert self.values is not None
        values = self.values

        def planner() -> float:
            return val.planner_eur(
                episodes,
                s,
                values,
                self.settings.imitation_lookahead_days,
                self.teacher_forecast(),
                self.start_volumes,
                lambda done: self.sink.status(
                    f"validation: the planner on held-aside scenario {s + 1} of {n}, {done:.0%}"
                ),
            )

        return Piece(f"planner-{s}", f"the planner on held-aside scenario {s + 1}", planner)

    def _record_references(self, timestep: int) -> None:
        assert self.validation is not None
        for name, value in self.validation.reference_points().items():
            self.sink.record(name, timestep, value)

    def record_fresh(self) -> None:
        """Record a fresh guided agent's first validation point before its model is built: with
        its corrections all zero it plays its planner, whose value on the episodes is known."""
        v = self.validation
        if v is None or v.planner_eur is None or not self.settings.guided:
            return
        for name, point in v.points(v.planner_eur).items():
            self.sink.record(name, 0, point)
        self.sink.flush()
        self._fresh_value = v.planner_eur

    def validate(self, model: Any, *, fresh: bool = False) -> float | None:
        """Score the policy on the validation episodes, record it, keep it if it is the best.

        A ``fresh`` guided agent whose corrections are all zero plays its planner: its value is
        the planner's on the same episodes, already computed, so it is not played again (nor
        recorded again if :meth:`record_fresh` did).
        """
        if self.validation is None:
            return None
        from hydrorl.training.algorithm import plays_its_guide

        planner = self.validation.planner_eur
        timestep = int(model.num_timesteps)
        plays_planner = (
            fresh and planner is not None and self.settings.guided and plays_its_guide(model)
        )
        value = planner if plays_planner else self.validation.score(model)
        assert value is not None
        if not (plays_planner and timestep == 0 and self._fresh_value is not None):
            for name, point in self.validation.points(value).items():
                self.sink.record(name, timestep, point)
        share = self.validation.share(value)
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
                        recipe.validate(self.model)
                        self.next = time.monotonic() + s.validation_seconds

                def _on_training_end(self) -> None:
                    if self.num_timesteps >= s.timesteps:  # the budget's end, not a stop
                        recipe.validate(self.model)

            found.append(Validating())
        return found


def _fingerprint(settings: TrainingSettings, problem: Problem, volumes: np.ndarray | None) -> str:
    """A name for what a run's shared pieces are computed from (its settings, forecast and
    start volumes), so that a folder left by another run is never read as this run's."""
    digest = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True).encode())
    for array in (problem.price_eur_mwh, problem.inflow_m3s, volumes):
        if array is not None:
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update(f"{problem.dt_s}".encode())
    return digest.hexdigest()[:16]
