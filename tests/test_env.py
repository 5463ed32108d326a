"""The gymnasium environment and the SB3 VecEnv over the batched physics."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hydrorl
from hydrorl.demo import demo_problem
from hydrorl.env import ENV_ID, CascadeEnv, CascadeVecEnv
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign


@pytest.fixture(scope="module")
def problem() -> hydrorl.Problem:
    return demo_problem(scenarios=3, years=1)


TRAINING = EpisodeDesign(
    episode_steps=40, random_start=True, random_start_volumes=True, forecast_horizon_steps=8
)


@pytest.mark.parametrize("design", [EpisodeDesign(episode_steps=40), TRAINING])
def test_the_registered_env_passes_both_checkers(problem: hydrorl.Problem, design) -> None:
    env = gym.make(ENV_ID, problem=problem, design=design)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    assert env.observation_space.shape == (3 + 7 + 2 * design.forecast_horizon_steps,)
    assert env.action_space.shape == (3,)


def test_make_without_arguments_plays_the_demo() -> None:
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.unwrapped.problem.n_steps == 14_608


def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list:
    obs, info = env.reset(seed=seed)
    trace = [obs, info]
    for a in actions:
        trace.append(env.step(a))
    return trace


def test_same_seed_same_episode_other_seed_other_episode(problem: hydrorl.Problem) -> None:
    actions = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    make = lambda: CascadeEnv(problem, TRAINING)  # noqa: E731
    a, b, c = (
        _rollout(make(), 5, actions),
        _rollout(make(), 5, actions),
        _rollout(make(), 6, actions),
    )
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    for x, y in zip(a[2:], b[2:], strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]
    assert not np.array_equal(a[0], c[0])


def test_an_episode_ends_after_its_window_and_pays_the_end_value(problem: hydrorl.Problem) -> None:
    env = CascadeEnv(problem, EpisodeDesign(episode_steps=10), scenario=1)
    env.reset(seed=0)
    for i in range(10):
        _, reward, terminated, truncated, info = env.step(np.zeros(3, dtype=np.float32))
        assert terminated == (i == 9) and not truncated
    assert info["revenue_eur"] == 0.0 and info["end_value_eur"] > 0
    assert reward == pytest.approx(info["reward_eur"] / env.episodes.reward_scale)


def test_evaluation_plays_the_whole_horizon_of_the_given_scenario(problem) -> None:
    env = CascadeEnv(problem, scenario=2, start_volumes=problem.cascade.max_volume_mm3)
    obs, info = env.reset(seed=3)
    assert info == {"scenario": 2, "start_step": 0}
    np.testing.assert_array_equal(obs[:3], [1.0, 1.0, 1.0])
    steps = 0
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(np.ones(3, dtype=np.float32))
        steps += 1
    assert steps == problem.n_steps
    assert info["price_eur_mwh"] == problem.price_eur_mwh[2, -1]


def test_vec_env_rows_are_the_single_env(problem: hydrorl.Problem) -> None:
    vec = CascadeVecEnv(problem, 1, TRAINING)
    vec.seed(5)
    obs = vec.reset()
    env = CascadeEnv(problem, TRAINING)
    single, _ = env.reset(seed=5)
    np.testing.assert_array_equal(obs[0], single)
    rng = np.random.default_rng(1)
    for _ in range(40):
        a = rng.random((1, 3)).astype(np.float32)
        obs, reward, done, infos = vec.step(a)
        single, r, terminated, _, info = env.step(a[0])
        assert reward[0] == pytest.approx(r, rel=1e-6) and done[0] == terminated
    # The finished row was reset at once; its last observation is kept for SB3.
    np.testing.assert_array_equal(infos[0]["terminal_observation"], single)
    assert infos[0]["revenue_eur"] == info["revenue_eur"]


def test_vec_env_auto_resets_finished_rows_only(problem: hydrorl.Problem) -> None:
    vec = CascadeVecEnv(problem, 64, EpisodeDesign(episode_steps=5, random_start=True), seed=0)
    obs = vec.reset()
    assert obs.shape == (64, 10)
    for i in range(5):
        obs, reward, done, infos = vec.step(np.full((64, 3), 0.5))
        assert done.all() == (i == 4)
    assert all("terminal_observation" in info for info in infos)
    assert np.allclose(obs[:, 6 + 3], 0.0)  # progress back to the start
    assert len(set(vec.episodes.scenario.tolist())) > 1


def test_ppo_trains_on_the_vec_env(problem, tmp_path, monkeypatch) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    vec = VecMonitor(CascadeVecEnv(problem, 8, EpisodeDesign(episode_steps=16), seed=0))
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=512)
    assert model.num_timesteps == 512
    assert len(model.ep_info_buffer) > 0


def test_bootstrapped_window_ends_are_truncations_without_progress(problem) -> None:
    design = EpisodeDesign(episode_steps=5, bootstrap_window_ends=True)
    vec = CascadeVecEnv(problem, 3, design, seed=0)
    obs = vec.reset()
    progress = vec.episodes.layout.progress
    for k in range(5):
        obs, _, done, infos = vec.step(np.full((3, 3), 0.5))
        assert (obs[:, progress] == 0).all()
        assert done.all() == (k == 4)
    assert all(info["TimeLimit.truncated"] for info in infos)
    single = CascadeEnv(problem, design)
    single.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, _ = single.step(np.full(3, 0.5))
    assert (terminated, truncated) == (False, True)
    plain = CascadeVecEnv(problem, 3, EpisodeDesign(episode_steps=5), seed=0)
    plain.reset()
    for _ in range(5):
        _, _, _, infos = plain.step(np.full((3, 3), 0.5))
    assert not any(info.get("TimeLimit.truncated", False) for info in infos)


def test_a_saved_agent_carries_what_it_observes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydrorl.env.spec import ObservationSpec
    from hydrorl.evaluation import evaluate_agent, evaluate_policy
    from hydrorl.project import TrainingSettings
    from hydrorl.training.agent import evaluation_options, train_in_process
    from hydrorl.training.algorithm import load_model
    from tests.test_recipe import lake_problem

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train = lake_problem(0, scenarios=4, days=20)
    settings = TrainingSettings(
        timesteps=512, n_envs=4, episode_steps=32, imitation_scenarios=0, validation_days=5
    ).resolved()
    model = train_in_process(settings, train)
    model.save(tmp_path / "agent.zip")
    loaded = load_model(settings, tmp_path / "agent.zip")  # nothing else at hand
    spec = ObservationSpec.of(loaded)
    assert spec.water_values is not None and spec.context_features and spec.spill_guard

    held_out = lake_problem(1, scenarios=2, days=20)  # its own scales: the spec brings training's
    by_spec = evaluate_agent(loaded, held_out).totals["total_eur"].to_numpy()
    in_memory = evaluate_agent(model, held_out).totals["total_eur"].to_numpy()
    assert np.allclose(by_spec, in_memory, rtol=1e-12)  # the checkpoint alone plays the same
    # What the settings alone would rebuild is not what it saw (its forecast was fitted on
    # the scenarios it learnt on, the validation ones held aside): the spec is what counts.
    seen = held_out.with_reference(train)
    assert spec.forecast is not None
    rebuilt = evaluate_policy(model, seen, **evaluation_options(settings, seen, train))
    assert rebuilt.totals["total_eur"].to_numpy() != pytest.approx(by_spec, rel=1e-9)

    # The registered environment and the VecEnv observe as the agent does.
    env = gym.make(ENV_ID, problem=held_out, scenario=1, spec=loaded)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action, _ = loaded.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        total += info["reward_eur"]
        done = terminated or truncated
    assert total == pytest.approx(by_spec[1], rel=1e-9)
    vec = CascadeVecEnv(held_out, 3, spec=loaded)
    assert vec.observation_space.shape == loaded.observation_space.shape

    # A problem of another system, or a model with no spec, is refused with what differs.
    with pytest.raises(hydrorl.ValidationError, match="reservoirs"):
        evaluate_agent(loaded, demo_problem(scenarios=1, years=1))
    del loaded.hydrorl_spec
    with pytest.raises(hydrorl.ValidationError, match="no observation spec"):
        evaluate_agent(loaded, held_out)


def test_a_guided_episode_with_no_correction_plays_the_planner(problem: hydrorl.Problem) -> None:
    """Residual actions of 0 are the planner's own plans through the same physics: the same
    totals as the planner's own play; +1 and -1 move each discharge by ``residual_scale``."""
    from hydrorl.baselines import water_values
    from hydrorl.baselines.expectation import StateForecast
    from hydrorl.baselines.foresight import PlannerGuide, limited_foresight
    from hydrorl.evaluation import evaluate_policy
    from hydrorl.training.imitation import teacher

    one = problem.scenarios([0, 1])
    values = water_values(one)
    planner = teacher(one, values, 7.0, StateForecast.fit(one, 8 * 7).bind)

    class Zero:
        def predict(self, obs, deterministic=True):  # noqa: ANN001, ANN202
            return np.zeros((len(obs), one.cascade.n_stations)), None

    guide, told = PlannerGuide(planner), []
    played = evaluate_policy(
        Zero(), one, guide=guide, residual_scale=0.3, batch_size=1, progress=told.append
    )
    assert told[0] == 0.0 and told == sorted(told) and 0.5 < told[-1] < 1.0  # as it goes
    own = [
        limited_foresight(
            one, s, values, planner.lookahead_steps, planner.every_steps, None, planner.forecast
        ).total_eur
        for s in range(2)
    ]
    assert played.totals["total_eur"].to_numpy() == pytest.approx(own, rel=1e-9)
    assert guide.solves == sum(-(-one.n_steps // planner.every_steps) for _ in range(2))

    design = EpisodeDesign(residual_scale=0.3)
    episodes = BatchedEpisodes(one, 2, design, scenarios=np.array([0, 1]), guide=guide)
    obs = episodes.observe()
    shown = obs[:, episodes.layout.guidance]
    assert shown == pytest.approx(episodes.guided)
    up = episodes.discharge(np.ones((2, one.cascade.n_stations)))
    down = episodes.discharge(-np.ones((2, one.cascade.n_stations)))
    assert up == pytest.approx(np.clip(episodes.guided + 0.3, 0, 1))
    assert down == pytest.approx(np.clip(episodes.guided - 0.3, 0, 1))
    with pytest.raises(ValueError, match="guide"):
        BatchedEpisodes(one, 2, design)  # a residual with nothing to correct


def test_a_guided_agent_carries_its_planner_and_starts_as_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings.guide="planner": the actions are corrections in [-1, 1]; the checkpoint alone
    plays the agent (planner and all) on another problem; before it learns it is the planner."""
    from hydrorl.env.spec import ObservationSpec
    from hydrorl.evaluation import evaluate_agent
    from hydrorl.project import TrainingSettings
    from hydrorl.training.agent import train_in_process
    from hydrorl.training.algorithm import load_model
    from tests.test_recipe import lake_problem

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train = lake_problem(0, scenarios=4, days=20)
    settings = TrainingSettings(
        algorithm="PPO", guide="planner", timesteps=256, n_envs=4, episode_steps=32,
        validation_days=5, imitation_lookahead_days=5.0,
        hyperparameters={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    ).resolved()  # fmt: skip
    assert settings.imitation_scenarios == 0  # nothing to imitate: it starts as the planner
    model = train_in_process(settings, train)
    assert model.action_space.low.min() == -1.0 and model.action_space.high.max() == 1.0
    model.save(tmp_path / "agent.zip")
    loaded = load_model(settings, tmp_path / "agent.zip")
    spec = ObservationSpec.of(loaded)
    assert spec.guide is not None and spec.residual_scale == 0.25
    held_out = lake_problem(1, scenarios=2, days=20)
    by_spec = evaluate_agent(loaded, held_out).totals["total_eur"].to_numpy()
    in_memory = evaluate_agent(model, held_out).totals["total_eur"].to_numpy()
    assert np.allclose(by_spec, in_memory, rtol=1e-12)
    vec = CascadeVecEnv(held_out, 2, spec=loaded)
    assert vec.action_space.low.min() == -1.0
    assert vec.observation_space.shape == loaded.observation_space.shape
    with pytest.raises(hydrorl.ValidationError, match="guide"):
        TrainingSettings(guide="oracle").validate()
