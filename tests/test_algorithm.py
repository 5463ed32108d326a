"""Every supported algorithm is built from run settings, learns on the VecEnv and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hydrorl
from hydrorl.demo import demo_problem
from hydrorl.env import CascadeVecEnv
from hydrorl.project import TrainingSettings
from hydrorl.training.agent import episode_design
from hydrorl.training.algorithm import build_model, load_model
from hydrorl.training.recorder import save_atomically

SMALL = {
    "PPO": {"n_steps": 32, "batch_size": 64},
    "A2C": {"n_steps": 8},
    "SAC": {"buffer_size": 2_000, "learning_starts": 32, "batch_size": 32},
    "TD3": {"buffer_size": 2_000, "learning_starts": 32, "batch_size": 32},
}


@pytest.mark.parametrize("algorithm", hydrorl.ALGORITHMS)
def test_build_learn_save_load(algorithm: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    settings = TrainingSettings(
        algorithm=algorithm,
        hyperparameters=SMALL[algorithm],
        n_envs=4,
        episode_steps=16,
        forecast_features=False,  # an env built by hand, without the recipe's forecast
        guide="none",  # nor its planner
    ).resolved()
    stored = json.dumps(settings.to_dict())
    env = CascadeVecEnv(demo_problem(scenarios=2, years=1), 4, episode_design(settings), seed=0)
    model = build_model(settings, env, seed=3)
    assert json.dumps(settings.to_dict()) == stored  # SB3 wrote nothing into the run's settings
    model.learn(256)
    path = tmp_path / "last.zip"
    save_atomically(model, path)
    assert path.is_file() and not (tmp_path / "last.partial.zip").exists()
    again = load_model(settings, path)
    obs = env.reset()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], again.predict(obs, deterministic=True)[0]
    )


def test_an_unknown_hyperparameter_is_named() -> None:
    settings = TrainingSettings(
        hyperparameters={"learning_rat": 0.1}, n_envs=2, forecast_features=False, guide="none"
    )
    env = CascadeVecEnv(demo_problem(scenarios=1, years=1), 2, episode_design(settings))
    with pytest.raises(hydrorl.ValidationError, match="learning_rat"):
        build_model(settings, env, seed=0)


@pytest.mark.parametrize(("algorithm", "start"), [("A2C", 7e-4), ("PPO", 1e-3)])
def test_the_learning_rate_can_decay_to_zero_over_the_budget(
    algorithm: str, start: float, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    own = {"learning_rate": start} if algorithm == "PPO" else {}  # the run's own, or SB3's
    settings = TrainingSettings(
        algorithm=algorithm,
        hyperparameters={**SMALL[algorithm], **own},
        n_envs=4,
        episode_steps=16,
        learning_rate_decay=True,
        forecast_features=False,
        guide="none",
    ).validate()
    env = CascadeVecEnv(demo_problem(scenarios=2, years=1), 4, episode_design(settings), seed=0)
    model = build_model(settings, env, seed=3)
    model.learn(512)
    rates = [g["lr"] for g in model.policy.optimizer.param_groups]
    assert model.lr_schedule(1.0) == pytest.approx(start)
    assert model.lr_schedule(0.5) == pytest.approx(start / 2)
    assert max(rates) < start / 4  # the last update came at the end of the budget
    with pytest.raises(hydrorl.ValidationError, match="learning_rate"):
        build_model(
            TrainingSettings(hyperparameters={"learning_rate": "fast"}, learning_rate_decay=True),
            env,
            seed=0,
        )
