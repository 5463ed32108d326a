"""The default recipe still learns: a short training closes most of the naive-to-bound gap.

A regression test with a small budget; the real quality figures come from
``benchmarks/quality.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hydrorl.baselines import ConstantRelease, WaterValuePolicy, perfect_foresight, water_values
from hydrorl.evaluation import evaluate_policy
from hydrorl.physics import Cascade, Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign
from hydrorl.project import TrainingSettings
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from hydrorl.training.agent import evaluation_options, shaping_potential, train_in_process

STEPS_PER_DAY = 8


def lake_problem(seed: int, scenarios: int = 4, days: int = 60) -> Problem:
    """One lake, one station, a daily price cycle with noise, a steady inflow."""
    system = HydroSystem(
        name="Lake",
        reservoirs=(Reservoir("Lake", 0.0, 20.0, 1.0),),
        power_stations=(PowerStation("Lake PS", "Lake", None, 60.0, 1.0),),
    )
    rng = np.random.default_rng(seed)
    t = np.arange(days * STEPS_PER_DAY)
    day = 2 * np.pi * (t % STEPS_PER_DAY) / STEPS_PER_DAY
    price = 40 - 25 * np.cos(day) + rng.normal(0, 4, (scenarios, t.size))
    inflow = rng.gamma(20.0, 1.0, (scenarios, t.size))  # ~20 m³/s, a third of the capacity
    return Problem.create(Cascade.from_system(system), price, inflow, 3 * 3600, "2027-01-01")


def test_shaping_pays_revenue_plus_the_change_of_the_water_value() -> None:
    problem = lake_problem(0, scenarios=2, days=10)
    potential = water_values(problem).potential(problem)
    design = EpisodeDesign(episode_steps=16, reward_scale_eur=1.0)
    plain = BatchedEpisodes(problem, 2, design, seed=0)
    shaped = BatchedEpisodes(problem, 2, design, seed=0, potential=potential)
    rng = np.random.default_rng(0)
    start = potential(shaped.t, shaped.volume)
    total_plain = total_shaped = np.zeros(2)
    for _ in range(16):
        action = rng.random((2, 1))
        _, r_plain, done, info = plain.step(action)
        _, r_shaped, _, shaped_info = shaped.step(action)
        total_plain, total_shaped = total_plain + r_plain, total_shaped + r_shaped
        assert np.allclose(info["revenue_eur"], shaped_info["revenue_eur"])  # same physics
    assert done.all()
    # The window's shaped rewards telescope: revenue + Φ(end) − Φ(start).
    revenue = total_plain - info["end_value_eur"]
    end = potential(shaped.t, shaped.volume)
    assert np.allclose(total_shaped, revenue + end - start)


@pytest.mark.parametrize("seed", [0])
def test_a_short_training_clearly_beats_the_naive_rule(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train, held_out = lake_problem(0), lake_problem(1).with_reference(lake_problem(0))
    # Reinforcement learning alone (PPO, as it was tuned): no imitation warm start, which
    # would hide a broken learner.
    settings = TrainingSettings(
        algorithm="PPO",
        timesteps=40_960,
        seed=seed,
        episode_steps=8 * 7,
        imitation_scenarios=0,
        guide="none",
        context_features=False,
    )
    assert settings.shaping == "water_values"  # the recipe's default
    model = train_in_process(settings, train)

    options = evaluation_options(settings, held_out, train)  # what the agent observes
    agent = evaluate_policy(model, held_out, **options).totals["total_eur"].to_numpy()
    naive = evaluate_policy(ConstantRelease(held_out), held_out).totals["total_eur"].to_numpy()
    benchmark = WaterValuePolicy(held_out, water_values(train))
    sdp = evaluate_policy(benchmark, held_out).totals["total_eur"].to_numpy()
    bound = np.array([perfect_foresight(held_out, s).total_eur for s in range(4)])
    gap = bound - naive
    share = (agent - naive) / gap  # 0: the naive rule, 1: the bound
    print(
        f"agent/bound {np.mean(agent / bound):.3f}, naive {np.mean(naive / bound):.3f}, "
        f"benchmark {np.mean(sdp / bound):.3f}; share of the naive-to-bound gap {share}"
    )
    assert (agent <= bound + 1e-6 * np.abs(bound)).all()
    # Measured 0.90-0.92 (without the observed water value and the spill guard: 0.72-0.78).
    assert share.mean() > 0.75, "the recipe learns less: the agent is nearer the naive rule"


def test_the_shaping_is_computed_from_the_training_forecast() -> None:
    problem = lake_problem(0, scenarios=2, days=10)
    assert shaping_potential(TrainingSettings(shaping="none"), problem) is None
    phi = shaping_potential(TrainingSettings(), problem)
    full, empty = np.array([[20.0]]), np.array([[0.0]])
    t = np.array([0])
    assert phi(t, full)[0] > phi(t, empty)[0]  # water is worth something


def test_the_water_value_can_be_observed_beside_the_price() -> None:
    problem = lake_problem(0, scenarios=2, days=10)
    values = water_values(problem)
    marginal = values.marginal(problem)
    episodes = BatchedEpisodes(problem, 2, EpisodeDesign(episode_steps=8), marginal=marginal)
    plain = BatchedEpisodes(problem, 2, EpisodeDesign(episode_steps=8))
    obs = episodes.observe()
    assert obs.shape[1] == plain.observe().shape[1] + 1 == episodes.layout.size
    value = obs[:, episodes.layout.water_value] * problem.price_std + problem.price_mean
    assert np.allclose(value, marginal(episodes.t, episodes.volume), rtol=1e-5)
    assert (value > 0).all()  # water is worth something at the price scale
    full, empty = np.array([[20.0]]), np.array([[0.0]])
    t = np.array([0])
    assert marginal(t, empty)[0] >= marginal(t, full)[0]  # scarce water is worth more
    with pytest.raises(ValueError, match="water_value_feature"):
        TrainingSettings(water_value_feature="yes").validate()


def test_imitation_teaches_the_policy_the_planners_actions_and_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydrorl.env import CascadeVecEnv
    from hydrorl.training.agent import episode_design, water_value_functions
    from hydrorl.training.algorithm import build_model
    from hydrorl.training.imitation import EXPLORATION_STD, demonstrations, imitate, teacher

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    problem = lake_problem(0, scenarios=3, days=30)
    settings = TrainingSettings(
        algorithm="A2C",
        episode_steps=8 * 7,
        n_envs=4,
        context_features=False,
        forecast_features=False,  # (the recipe's own tests show them)
        guide="none",
    ).resolved()
    potential, marginal = water_value_functions(settings, problem)
    design = episode_design(settings)
    planner = teacher(problem, water_values(problem), settings.imitation_lookahead_days)
    shown = demonstrations(
        planner, design, _whole(problem, [0, 2]), gamma=0.99, potential=potential,
        marginal=marginal,
    )  # fmt: skip
    assert shown.observations.shape == (2 * problem.n_steps, 1 + 7 + 1)
    assert shown.actions.shape == (2 * problem.n_steps, 1)
    assert shown.actions.min() >= 0.0 and shown.actions.max() <= 1.0
    assert shown.actions.std() > 0.1  # the planner follows the daily price cycle
    env = CascadeVecEnv(problem, 4, design, seed=0, potential=potential, marginal=marginal)
    model = build_model(settings, env, seed=0)

    def action_error() -> float:
        predicted, _ = model.predict(shown.observations, deterministic=True)
        return float(np.abs(predicted - shown.actions).mean())

    before = action_error()
    losses = imitate(model, shown, epochs=60)
    assert action_error() < 0.5 * before and action_error() < 0.15
    assert losses["critic"] < float(np.var(shown.returns))  # the value explains the returns
    std = float(model.policy.log_std.detach().exp().mean())
    assert std == pytest.approx(EXPLORATION_STD, rel=1e-5)

    # Played on held-out scenarios, the imitating policy is near the planner it imitated.
    held_out = lake_problem(1, scenarios=3, days=30).with_reference(problem)
    share = _share_of_the_gap(model, settings, held_out, problem)
    print(f"imitating agent: share of the naive-to-bound gap {share}")
    assert share.mean() > 0.75


def test_dagger_labels_the_states_the_policy_reaches_with_the_planners_plans() -> None:
    from hydrorl.baselines.foresight import Planner
    from hydrorl.training.imitation import demonstrations, gather, teacher

    problem = lake_problem(0, scenarios=3, days=20)
    design = EpisodeDesign(episode_steps=8 * 7)
    values = water_values(problem)
    teaching = teacher(problem, values, 7)

    def hold(obs: np.ndarray) -> np.ndarray:  # a policy that keeps all the water
        return np.zeros((len(obs), 1))

    shown = demonstrations(teaching, design, _whole(problem, [1]), gamma=0.99, act=hold)
    layout = BatchedEpisodes(problem, 1, design).layout
    volumes = layout.volumes_mm3(shown.observations, problem)[:, 0]
    assert (np.diff(volumes) >= -1e-9).all()  # the policy's path, not the planner's
    day = 5 * 8
    fresh = Planner(  # the same planner, built again: the plan depends on the state alone
        problem, values, teaching.lookahead_steps, teaching.every_steps, teaching.forecast
    )
    plan = fresh.plan(1, day, np.array([volumes[day]]))
    assert len(plan) == teaching.every_steps == 2  # re-planned every 6 hours
    assert np.allclose(shown.actions[day : day + len(plan)], plan, atol=1e-3)
    assert shown.actions.std() > 0.1  # it says what it would do, which is not holding

    # In worker processes (one per window), the same.
    both = gather(teaching, design, _whole(problem, [0, 1]), workers=2, gamma=0.99)
    alone = demonstrations(teaching, design, _whole(problem, [0, 1]), gamma=0.99)
    for name in ("observations", "actions", "returns", "weights"):
        assert np.allclose(getattr(both, name), getattr(alone, name), atol=1e-5)


def test_the_imitating_recipe_imitates_then_learns_and_comes_near_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train = lake_problem(0, scenarios=3, days=30)
    held_out = lake_problem(1, scenarios=3, days=30).with_reference(train)
    # The recipe as it is (A2C, planner imitation with DAgger rounds), on a small budget.
    settings = TrainingSettings(
        timesteps=4096, episode_steps=8 * 7, n_envs=4, imitation_scenarios=2, guide="none"
    ).resolved()
    assert settings.imitation_rounds >= 1 and settings.algorithm == "A2C"
    model = train_in_process(settings, train)
    share = _share_of_the_gap(model, settings, held_out, train)
    print(f"default recipe: share of the naive-to-bound gap {share}")
    assert share.mean() > 0.75


def _whole(problem: Problem, scenarios: list[int]):  # noqa: ANN202
    """Imitation windows that are whole scenarios from half-full reservoirs."""
    from hydrorl.training.imitation import Windows

    n = len(scenarios)
    volumes = np.tile(problem.default_start_volumes(), (n, 1))
    return Windows(np.array(scenarios), np.zeros(n, dtype=np.int64), volumes, problem.n_steps)


def _share_of_the_gap(
    model: object, settings: TrainingSettings, held_out: Problem, train: Problem
) -> np.ndarray:
    """Per held-out scenario, where the agent lands: 0 the naive rule, 1 the bound."""
    options = evaluation_options(settings, held_out, train)  # what the agent observes
    agent = evaluate_policy(model, held_out, **options).totals["total_eur"].to_numpy()
    bound = np.array(
        [perfect_foresight(held_out, s).total_eur for s in range(held_out.n_scenarios)]
    )
    naive = evaluate_policy(ConstantRelease(held_out), held_out).totals["total_eur"].to_numpy()
    return (agent - naive) / (bound - naive)


def test_the_default_recipe_beats_the_benchmark_on_a_river_it_was_not_tuned_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small case of the seeded generator (not the demo): a lake of 26 days' storage, daily
    steps, rain season, floods and price regimes; the default recipe's agent (guided by the
    planner) and the imitating recipe's (imitation alone), played on held-out scenarios as
    their checkpoints carry them."""
    from hydrorl.cases import small_case
    from hydrorl.env.spec import ObservationSpec
    from hydrorl.evaluation import evaluate_agent

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    case = small_case(0)
    train, held_out = case.problem("training"), case.problem("held_out")
    values = water_values(train)
    sdp = evaluate_policy(WaterValuePolicy(held_out, values), held_out)
    benchmark = sdp.totals["total_eur"].to_numpy()
    bound = np.array([perfect_foresight(held_out, s).total_eur for s in range(3)])

    guided = TrainingSettings(agents=2, timesteps=2048, validation_days=120, n_envs=4)
    model = train_in_process(guided, train)
    agent = evaluate_agent(model, held_out).totals["total_eur"].to_numpy()
    spec = ObservationSpec.of(model)  # the planner it carries, with no correction
    seen = spec.view(held_out)

    class Uncorrected:
        def predict(self, obs, deterministic=True):  # noqa: ANN001, ANN202
            return np.zeros((len(obs), seen.cascade.n_stations)), None

    options = {**spec.evaluation_options(seen), "guide": spec.guide_of(seen)}
    planned = evaluate_policy(Uncorrected(), seen, **options).totals["total_eur"].to_numpy()
    print(f"{case.description}: guided agent/bound {agent / bound}, /SDP {agent / benchmark}, "
          f"/planner {agent / planned}")  # fmt: skip
    assert (agent <= bound * (1 + 1e-9)).all()
    assert np.mean(agent / benchmark) > 1.01, "the guided recipe no longer beats the benchmark"
    # Its best validated policy is at least the planner it started as, give or take what the
    # validation scenarios do not tell of the held-out ones.
    assert np.mean(agent / planned) > 0.995
    assert np.mean(planned / benchmark) > 1.01  # the planner is what beats the benchmark

    imitating = TrainingSettings(agents=2, timesteps=1, validation_days=120, guide="none")
    model = train_in_process(imitating, train)  # no RL steps
    agent = evaluate_agent(model, held_out).totals["total_eur"].to_numpy()
    print(f"imitation alone: agent/bound {agent / bound}, agent/SDP {agent / benchmark}")
    assert (agent <= bound * (1 + 1e-9)).all()
    # Measured 1.028, 1.013, 1.057 x the SDP benchmark (0.961 of the bound, SDP 0.931).
    assert np.mean(agent / benchmark) > 1.01, "the imitating recipe no longer beats the benchmark"
