"""Building and loading the Stable-Baselines3 model of an agent from its run's settings."""

from __future__ import annotations

import copy
import importlib
import inspect
from pathlib import Path

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
        return cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hyperparameters)
    except TypeError as e:
        raise ValidationError(
            f"training settings: a hyper-parameter is not accepted by {settings.algorithm}: {e}"
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
