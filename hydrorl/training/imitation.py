"""A warm start for the agents: first imitate a planner that knows no more than they do.

The planner (:func:`~hydrorl.baselines.foresight.limited_foresight` on a
:class:`~hydrorl.baselines.foresight.CalendarForecast` of one week, re-planned
daily) is played over the whole horizon of some training scenarios.  Along its
path the agent's own observations are recorded (the same episodes, features and
spill guard as in training) with the planner's actions and the discounted
returns of the agent's (shaped) rewards.  The policy's mean action is fitted to
the planner's actions and its value to those returns by least squares, and its
exploration noise is narrowed; reinforcement learning then goes on from there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hydrorl.physics import Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, Potential

#: What the planner sees and how often it re-plans (steps of 3 h in the demo: 1 week, 1 day).
PLANNER_LOOKAHEAD_DAYS = 7
PLANNER_EVERY_DAYS = 1
#: Exploration noise (standard deviation of the action, a fraction of full discharge) after it.
EXPLORATION_STD = 0.1


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """The planner's path through some scenarios, as the agent sees it."""

    observations: np.ndarray  # (N, D)
    actions: np.ndarray  # (N, S): discharge fractions
    returns: np.ndarray  # (N,): discounted shaped rewards from each step on, agent units


def demonstrations(
    problem: Problem,
    design: EpisodeDesign,
    scenarios: np.ndarray,
    *,
    gamma: float,
    start_volumes: np.ndarray | None = None,
    potential: Potential | None = None,
    marginal: Potential | None = None,
    lookahead_days: float = PLANNER_LOOKAHEAD_DAYS,
) -> Demonstrations:
    """Play the planner over the whole horizon of ``scenarios`` of ``problem`` (training data)."""
    from hydrorl.baselines import water_values
    from hydrorl.baselines.foresight import CalendarForecast, limited_foresight

    per_day = max(1, round(86_400.0 / problem.dt_s))
    values = water_values(problem)
    forecast = CalendarForecast.fit(problem).bind(problem)
    fractions = np.stack(
        [
            limited_foresight(
                problem,
                int(s),
                values,
                min(round(lookahead_days * per_day), problem.n_steps),
                min(PLANNER_EVERY_DAYS * per_day, problem.n_steps),
                start_volumes,
                forecast=forecast,
            ).fraction
            for s in scenarios
        ]
    )  # (K, T, S)
    whole = dataclasses.replace(
        design, episode_steps=0, random_start=False, random_start_volumes=False
    )
    episodes = BatchedEpisodes(
        problem,
        len(scenarios),
        whole,
        scenarios=np.asarray(scenarios),
        start_volumes=start_volumes,
        potential=potential,
        marginal=marginal,
    )
    n_t = problem.n_steps
    obs = np.empty((len(scenarios), n_t, episodes.layout.size), dtype=np.float32)
    rewards = np.empty((len(scenarios), n_t))
    for t in range(n_t):
        obs[:, t] = episodes.observe()
        _, rewards[:, t], _, _ = episodes.step(fractions[:, t])
    returns = np.empty_like(rewards)
    following = np.zeros(len(scenarios))
    for t in range(n_t - 1, -1, -1):
        following = rewards[:, t] + gamma * following
        returns[:, t] = following
    return Demonstrations(
        obs.reshape(-1, obs.shape[-1]),
        fractions.reshape(-1, fractions.shape[-1]).astype(np.float32),
        returns.reshape(-1).astype(np.float32),
    )


def imitate(model: Any, shown: Demonstrations, *, epochs: int, seed: int = 0) -> dict[str, float]:
    """Fit an SB3 actor-critic policy to the demonstrations; return the final losses."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy = model.policy
    if not isinstance(policy, ActorCriticPolicy):
        raise TypeError(f"imitation needs an actor-critic policy (PPO, A2C), not {type(policy)}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(shown.observations)
    actions = torch.as_tensor(shown.actions)
    returns = torch.as_tensor(shown.returns)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = {"actor": float("nan"), "critic": float("nan")}
    with torch.no_grad():  # start the value at the mean return: the rest is the shape
        policy.value_net.bias.fill_(float(returns.mean()))
    batch = max(32, min(1024, len(x) // 8))  # at least 8 steps per pass over the data
    policy.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        actor_sum = critic_sum = 0.0
        for lo in range(0, len(x), batch):
            idx = order[lo : lo + batch]
            latent_pi, latent_vf = policy.mlp_extractor(policy.extract_features(x[idx]))
            actor = ((policy.action_net(latent_pi) - actions[idx]) ** 2).mean()
            critic = ((policy.value_net(latent_vf).squeeze(-1) - returns[idx]) ** 2).mean()
            optimizer.zero_grad()
            (actor + critic).backward()
            optimizer.step()
            actor_sum += actor.item() * len(idx)
            critic_sum += critic.item() * len(idx)
        losses = {"actor": actor_sum / len(x), "critic": critic_sum / len(x)}
    with torch.no_grad():
        policy.log_std.fill_(float(np.log(EXPLORATION_STD)))
    return losses
