"""Building and loading the Stable-Baselines3 model of an agent from its run's settings."""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from hydrorl.errors import ValidationError
from hydrorl.project import TrainingSettings

CLASSES: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "TD3": TD3, "A2C": A2C}


def build_model(settings: TrainingSettings, env: VecEnv, seed: int) -> BaseAlgorithm:
    """A fresh model with the run's hyper-parameters (on the CPU: small MLPs)."""
    cls = CLASSES[settings.algorithm]
    # A copy all the way down: SB3's A2C writes its optimizer class into policy_kwargs.
    hyperparameters = copy.deepcopy(dict(settings.hyperparameters))
    if settings.learning_rate_decay:
        start = hyperparameters.get(
            "learning_rate", inspect.signature(cls.__init__).parameters["learning_rate"].default
        )
        if isinstance(start, bool) or not isinstance(start, int | float):
            raise ValidationError(
                f"training settings: learning_rate = {start!r} must be a number to decay"
            )
        hyperparameters["learning_rate"] = LinearSchedule(float(start), 0.0, 1.0)
    try:
        model = cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hyperparameters)
    except TypeError as e:
        raise ValidationError(
            f"training settings: a hyper-parameter is not accepted by {settings.algorithm}: {e}"
        ) from e
    if settings.guided:
        _correct_nothing(model)
    return model


def _correct_nothing(model: BaseAlgorithm) -> None:
    """Zero the last layer of a guided agent's actor: before it learns, its corrections are 0
    (it plays its guide) whatever it observes."""
    import torch

    for head in _heads(model):
        linear = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            linear[-1].weight.zero_()
            linear[-1].bias.zero_()


def plays_its_guide(model: BaseAlgorithm) -> bool:
    """Whether a guided agent's corrections are all zero (as built): it plays its guide."""
    import torch

    heads = _heads(model)
    return bool(heads) and all(
        not torch.any(p).item()
        for head in heads
        for p in [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1].parameters()
    )


def _heads(model: BaseAlgorithm) -> list[Any]:
    """The layers that end in a guided agent's corrections (its actor's last ones)."""
    policy = model.policy
    heads = [getattr(policy, "action_net", None)]  # PPO, A2C
    for actor in ("actor", "actor_target"):  # SAC: mu is a Linear; TD3: a Sequential to Tanh
        heads.append(getattr(getattr(policy, actor, None), "mu", None))
    return [h for h in heads if h is not None]


#: Arguments HydroRL sets itself: a run's hyper-parameters may not name them.
RESERVED = ("policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model")


#: Hyper-parameters that count something, and their least value.
COUNTS = {
    "n_steps": 1,
    "batch_size": 1,
    "n_epochs": 1,
    "buffer_size": 1,
    "learning_starts": 0,
    "policy_delay": 1,
}


def check_settings(settings: TrainingSettings, n_stations: int = 1) -> None:
    """Refuse hyper-parameters the algorithm does not take or cannot use, and callbacks that
    cannot be imported, before any row or process exists: a model is built on a stand-in
    environment of the run's shape (no data, no learning), so SB3's own checks run here."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.vec_env import DummyVecEnv

    own = dict(settings.hyperparameters)
    settings = settings.resolved()
    cls = CLASSES[settings.algorithm]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", *RESERVED}
    for name in settings.hyperparameters:
        if name not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValidationError(
                f"training settings: hyperparameters: {settings.algorithm} has no "
                f"hyper-parameter {name!r}{hint}"
            )
    for name, minimum in COUNTS.items():
        value = settings.hyperparameters.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < minimum
        ):
            raise ValidationError(
                f"training settings: hyperparameters: {name} = {value!r} must be an integer "
                f">= {minimum}"
            )
    for path in settings.callbacks:
        module, _, name = path.partition(":")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise ValidationError(
                f"training settings: callback {path!r} cannot be imported: {e}"
            ) from e
        if not (isinstance(found, type) and issubclass(found, BaseCallback)):
            raise ValidationError(
                f"training settings: callback {path!r} is not a stable_baselines3 BaseCallback"
            )

    class StandIn(gym.Env):  # the run's spaces, nothing else
        observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        action_space = gym.spaces.Box(0.0, 1.0, (n_stations,), np.float32)

    env = DummyVecEnv([StandIn] * settings.n_envs)
    try:
        build_model(settings, env, settings.seed)
    except ValidationError:
        raise
    except Exception as e:  # SB3 checks with assert, ValueError, TypeError...
        raise ValidationError(
            f"training settings: hyperparameters {own} are not usable by "
            f"{settings.algorithm}: {type(e).__name__}: {e}"
        ) from e


def load_model(settings: TrainingSettings, path: str | Path, env: VecEnv | None = None):  # noqa: ANN201
    """A model from a checkpoint, attached to ``env`` to go on learning if given."""
    return CLASSES[settings.algorithm].load(str(path), env=env, device="cpu")


def user_callbacks(settings: TrainingSettings) -> list[BaseCallback]:
    """The extra callbacks named in the settings, each built with no arguments."""
    found = []
    for path in settings.callbacks:
        module, _, name = path.partition(":")
        found.append(getattr(importlib.import_module(module), name)())
    return found
