"""A warm start for the agents: first imitate a planner that knows no more than they do.

The planner (:class:`~hydrorl.baselines.foresight.Planner` on a
:class:`~hydrorl.baselines.foresight.CalendarForecast`, four weeks ahead by default,
re-planned daily) is played over the whole horizon of some training scenarios.  Along its
path the agent's own observations are recorded (the same episodes, features and spill
guard as in training) with the planner's actions and the discounted returns of the
agent's (shaped) rewards.  The policy's mean action is fitted to the planner's actions and
its value to those returns by least squares, and its exploration noise is narrowed.

Then DAgger: the fitted policy plays the same scenarios itself, the planner re-plans from
the states the policy reached and its plans label what the policy saw there, and the policy
is fitted again to everything shown so far.  A policy fitted only to the planner's path
drifts to states the planner never visited; these rounds teach it to recover.
Reinforcement learning then goes on from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from hydrorl.physics import Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, Potential

if TYPE_CHECKING:
    from hydrorl.baselines.sdp import WaterValues

#: What the planner sees and how often it re-plans (steps of 3 h in the demo: 1 week, 1 day).
PLANNER_LOOKAHEAD_DAYS = 7
PLANNER_EVERY_DAYS = 1
#: Exploration noise (standard deviation of the action, a fraction of full discharge) after it.
EXPLORATION_STD = 0.1


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """What the agent saw along a path through some scenarios, and what the planner did there."""

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
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    values: WaterValues | None = None,
    progress: Callable[[float], None] | None = None,
) -> Demonstrations:
    """Ask the planner what to do along a path through the whole horizon of ``scenarios``.

    The path is the planner's own, or, given ``act`` (observations to discharge
    fractions: the agent's policy), the agent's: the planner then re-plans from the
    states the agent reaches, and its plans label what the agent saw (DAgger).  The
    returns are those of the path played.  ``values`` are the benchmark's water
    values of ``problem`` (computed if not given); ``progress`` is told the share
    of the horizon done before each plan.
    """
    from hydrorl.baselines import water_values
    from hydrorl.baselines.foresight import CalendarForecast, Planner

    per_day = max(1, round(86_400.0 / problem.dt_s))
    planner = Planner(
        problem,
        water_values(problem) if values is None else values,
        min(round(lookahead_days * per_day), problem.n_steps),
        min(PLANNER_EVERY_DAYS * per_day, problem.n_steps),
        CalendarForecast.fit(problem).bind(problem),
    )
    whole = dataclasses.replace(
        design, episode_steps=0, random_start=False, random_start_volumes=False
    )
    scenarios = np.asarray(scenarios)
    episodes = BatchedEpisodes(
        problem,
        len(scenarios),
        whole,
        scenarios=scenarios,
        start_volumes=start_volumes,
        potential=potential,
        marginal=marginal,
    )
    n_t, n_k = problem.n_steps, len(scenarios)
    obs = np.empty((n_k, n_t, episodes.layout.size), dtype=np.float32)
    labels = np.empty((n_k, n_t, problem.cascade.n_stations), dtype=np.float32)
    rewards = np.empty((n_k, n_t))
    t = 0
    while t < n_t:
        if progress is not None:
            progress(t / n_t)
        plans = [planner.plan(int(s), t, episodes.volume[i]) for i, s in enumerate(scenarios)]
        for k in range(len(plans[0])):
            obs[:, t] = episodes.observe()
            labels[:, t] = [plan[k] for plan in plans]
            played = labels[:, t] if act is None else act(obs[:, t])
            _, rewards[:, t], _, _ = episodes.step(played)
            t += 1
    returns = np.empty_like(rewards)
    following = np.zeros(n_k)
    for t in range(n_t - 1, -1, -1):
        following = rewards[:, t] + gamma * following
        returns[:, t] = following
    return Demonstrations(
        obs.reshape(-1, obs.shape[-1]),
        labels.reshape(-1, labels.shape[-1]),
        returns.reshape(-1).astype(np.float32),
    )


def gather(
    problem: Problem,
    design: EpisodeDesign,
    scenarios: np.ndarray,
    *,
    workers: int = 1,
    policy: Any = None,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> Demonstrations:
    """:func:`demonstrations` of ``scenarios``, in ``workers`` processes (one scenario each).

    ``policy`` (an SB3 policy, played deterministically) walks the path instead of the
    planner.  ``progress`` is called about once a second with the share done; it may
    raise to stop, and the workers are then ended.
    """
    scenarios = np.asarray(scenarios)
    jobs = [
        {"problem": problem, "design": design, "scenarios": part, "policy": policy, **options}
        for part in (np.array_split(scenarios, len(scenarios)) if workers > 1 else [scenarios])
    ]
    if workers <= 1 or len(jobs) == 1:
        return _demonstrate({**jobs[0], "progress": progress})
    import multiprocessing

    import cloudpickle  # the shaping potentials are closures

    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), _one_thread)
    try:
        pending = [pool.apply_async(_demonstrate_pickled, (cloudpickle.dumps(j),)) for j in jobs]
        while not all(p.ready() for p in pending):
            if progress is not None:
                progress(sum(p.ready() for p in pending) / len(pending))
            pending[[p.ready() for p in pending].index(False)].wait(1.0)
        parts = [p.get() for p in pending]
    finally:
        pool.terminate()
    return concatenate(parts)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def concatenate(parts: list[Demonstrations]) -> Demonstrations:
    return Demonstrations(
        *(
            np.concatenate([getattr(part, f.name) for part in parts])
            for f in dataclasses.fields(Demonstrations)
        )
    )


def _demonstrate_pickled(job: bytes) -> Demonstrations:
    import cloudpickle

    return _demonstrate(cloudpickle.loads(job))


def _demonstrate(job: dict[str, Any]) -> Demonstrations:
    job = dict(job)
    policy = job.pop("policy")
    if policy is not None:

        def act(obs: np.ndarray) -> np.ndarray:
            return policy.predict(obs, deterministic=True)[0]

        job["act"] = act
    return demonstrations(**job)


def imitate(
    model: Any,
    shown: Demonstrations,
    *,
    epochs: int,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> dict[str, float]:
    """Fit an SB3 actor-critic policy to the demonstrations; return the final losses.

    ``progress`` is told the share of epochs done before each; it may raise to stop.
    """
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy = model.policy
    if not isinstance(policy, ActorCriticPolicy):
        raise TypeError(f"imitation needs an actor-critic policy (PPO, A2C), not {type(policy)}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(shown.observations, device=policy.device)
    actions = torch.as_tensor(shown.actions, device=policy.device)
    returns = torch.as_tensor(shown.returns, device=policy.device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = {"actor": float("nan"), "critic": float("nan")}
    with torch.no_grad():  # start the value at the mean return: the rest is the shape
        policy.value_net.bias.fill_(float(returns.mean()))
    batch = max(32, min(1024, len(x) // 8))  # at least 8 steps per pass over the data
    policy.train()
    for epoch in range(epochs):
        if progress is not None:
            progress(epoch / epochs)
        order = torch.randperm(len(x), generator=generator).to(policy.device)
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
