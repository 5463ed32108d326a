"""A warm start for the agents: first imitate a planner that knows no more than they do.

The teacher is a :class:`~hydrorl.baselines.foresight.Planner` on a forecast learned
from the training forecast (:func:`teacher`: the calendar and the recent state of price and
inflow): it re-plans four weeks ahead every six hours and values the water left beyond with
the SDP water values.  It is played on *windows*:
stretches of training scenarios from random first steps and random volumes, so that the
states shown cover what the agent will meet, not one path.  Along the path the agent's
own observations are recorded (the same features and spill guard as in training) with
the planner's actions and the discounted returns of the agent's (shaped) rewards.  The
policy's mean action is fitted to the planner's actions and its value to those returns by
least squares, and its exploration noise is narrowed.

Then DAgger: the fitted policy walks new windows itself, the planner re-plans from the
states the policy reached and its plans label what the policy saw there, and the policy is
fitted again to everything shown so far.  A policy fitted only to the planner's path
drifts to states the planner never visited; these passes teach it to recover.

Reinforcement learning then goes on from there, anchored (:class:`Anchor`): a decaying
share of every update pulls the policy back towards the planner's actions on the
demonstrations, so that the first noisy gradients do not undo what imitation taught.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hydrorl.physics import Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, Potential

if TYPE_CHECKING:
    from hydrorl.baselines.foresight import Forecast, Planner
    from hydrorl.baselines.sdp import WaterValues

#: How often the planner re-plans (hours; every step if steps are longer).  A plan kept for a
#: whole day misses the spikes of a spiky price (measured in ``hydrorl.baselines.expectation``).
PLANNER_EVERY_HOURS = 6.0
#: Exploration noise (standard deviation of the action, a fraction of full discharge) after it.
EXPLORATION_STD = 0.1
#: A window is at least this many discount horizons long (1 / (1 - gamma) steps), so that the
#: returns of most of its steps are not cut short by its end.
WINDOW_HORIZONS = 4.0
#: Steps within this many discount horizons of a window's end teach the critic nothing.
RETURN_HORIZONS = 3.0


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """What the agent saw along a path through some windows, and what the planner did there."""

    observations: np.ndarray  # (N, D)
    actions: np.ndarray  # (N, S): discharge fractions
    returns: np.ndarray  # (N,): discounted shaped rewards from each step on, agent units
    weights: np.ndarray  # (N,): 1 where the return is not cut short by the window's end

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file, then a rename)."""
        temporary = path.with_name(path.stem + ".partial.npz")
        np.savez(temporary, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> Demonstrations:
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Windows:
    """Stretches of scenarios to walk: ``steps`` steps from ``starts`` and ``volumes``."""

    scenarios: np.ndarray  # (n,)
    starts: np.ndarray  # (n,)
    volumes: np.ndarray  # (n, R)
    steps: int

    def __len__(self) -> int:
        return int(self.scenarios.size)

    def part(self, rows: np.ndarray) -> Windows:
        return Windows(self.scenarios[rows], self.starts[rows], self.volumes[rows], self.steps)


def window_steps(problem: Problem, days: float, gamma: float) -> int:
    """Steps of an imitation window: ``days`` (0: the whole horizon), but at least a few
    discount horizons, and whole days, within the horizon."""
    per_day = max(1, round(86_400.0 / problem.dt_s))
    if days <= 0:
        return problem.n_steps
    wanted = max(round(days * per_day), round(WINDOW_HORIZONS / max(1.0 - gamma, 1e-6)))
    wanted = -(-wanted // per_day) * per_day
    return int(min(wanted, problem.n_steps))


def draw_windows(
    problem: Problem,
    count: int,
    steps: int,
    rng: np.random.Generator,
    *,
    random_volumes: bool = True,
    start_volumes: np.ndarray | None = None,
) -> Windows:
    """``count`` windows spread over the scenarios (each scenario as evenly as possible),
    from random first steps (at midnight) and random volumes (or ``start_volumes``)."""
    c = problem.cascade
    scenarios = rng.permutation(np.resize(rng.permutation(problem.n_scenarios), count))
    per_day = max(1, round(86_400.0 / problem.dt_s))
    last = problem.n_steps - steps
    starts = (
        (rng.integers(0, last // per_day + 1, count) * per_day)
        if last > 0
        else np.zeros(count, dtype=np.int64)
    )
    if random_volumes:
        u = rng.random((count, c.n_reservoirs))
        volumes = c.min_volume_mm3 + u * (c.max_volume_mm3 - c.min_volume_mm3)
    else:
        base = problem.default_start_volumes() if start_volumes is None else start_volumes
        volumes = np.broadcast_to(np.asarray(base, float), (count, c.n_reservoirs)).copy()
    return Windows(scenarios.astype(np.int64), starts.astype(np.int64), volumes, int(steps))


def teacher_forecast(
    training: Problem, lookahead_days: float = 28.0
) -> Callable[[Problem], Forecast]:
    """What the teacher expects: a forecast fitted on ``training`` (the calendar and the recent
    state of price and inflow, :class:`~hydrorl.baselines.expectation.StateForecast`), to be
    bound to a problem."""
    from hydrorl.baselines.expectation import StateForecast

    per_day = 86_400.0 / training.dt_s
    steps = max(1, min(round(lookahead_days * per_day), training.n_steps))
    return StateForecast.fit(training, steps).bind


def teacher(
    problem: Problem,
    values: WaterValues,
    lookahead_days: float,
    forecast: Callable[[Problem], Forecast] | None = None,
) -> Planner:
    """The planner the agents imitate, on ``problem`` (fitted on it unless ``forecast``)."""
    from hydrorl.baselines.foresight import Planner

    per_day = 86_400.0 / problem.dt_s
    bind = teacher_forecast(problem, lookahead_days) if forecast is None else forecast
    lookahead = min(max(1, round(lookahead_days * per_day)), problem.n_steps)
    every = min(max(1, round(PLANNER_EVERY_HOURS * 3600.0 / problem.dt_s)), lookahead)
    return Planner(problem, values, lookahead, every, bind(problem))


def demonstrations(
    planner: Planner,
    design: EpisodeDesign,
    windows: Windows,
    *,
    gamma: float,
    potential: Potential | None = None,
    marginal: Potential | None = None,
    expected: tuple[np.ndarray, np.ndarray] | None = None,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[float], None] | None = None,
) -> Demonstrations:
    """Ask the planner what to do along a path through ``windows`` of its problem.

    The path is the planner's own, or, given ``act`` (observations to discharge
    fractions: the agent's policy), the agent's: the planner then re-plans from the
    states the agent reaches, and its plans label what the agent saw (DAgger).  The
    returns are those of the path played.  ``progress`` is told the share done before
    each plan.
    """
    problem = planner.problem
    along = dataclasses.replace(
        design, episode_steps=windows.steps, random_start=False, random_start_volumes=False
    )
    episodes = BatchedEpisodes(
        problem,
        len(windows),
        along,
        scenarios=windows.scenarios,
        starts=windows.starts,
        start_volumes=windows.volumes,
        potential=potential,
        marginal=marginal,
        expected=expected,
    )
    n_t, n_k = windows.steps, len(windows)
    obs = np.empty((n_k, n_t, episodes.layout.size), dtype=np.float32)
    labels = np.empty((n_k, n_t, problem.cascade.n_stations), dtype=np.float32)
    rewards = np.empty((n_k, n_t))
    k = 0
    while k < n_t:
        if progress is not None:
            progress(k / n_t)
        plans = [
            planner.plan(int(s), int(episodes.t[i]), episodes.volume[i])
            for i, s in enumerate(windows.scenarios)
        ]
        for j in range(min(len(plan) for plan in plans)):
            obs[:, k] = episodes.observe()
            labels[:, k] = [plan[j] for plan in plans]
            played = labels[:, k] if act is None else act(obs[:, k])
            _, rewards[:, k], _, _ = episodes.step(played)
            k += 1
            if k == n_t:
                break
    returns = np.empty_like(rewards)
    following = np.zeros(n_k)
    for t in range(n_t - 1, -1, -1):
        following = rewards[:, t] + gamma * following
        returns[:, t] = following
    cut = round(RETURN_HORIZONS / max(1.0 - gamma, 1e-6))
    reaches_end = windows.starts[:, None] + n_t >= problem.n_steps  # the horizon's own end
    remaining = n_t - np.arange(n_t)[None, :]
    weights = ((remaining >= cut) | reaches_end).astype(np.float32)
    return Demonstrations(
        obs.reshape(-1, obs.shape[-1]),
        labels.reshape(-1, labels.shape[-1]),
        returns.reshape(-1).astype(np.float32),
        weights.reshape(-1),
    )


def gather(
    planner: Planner,
    design: EpisodeDesign,
    windows: Windows,
    *,
    workers: int = 1,
    policy: Any = None,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> Demonstrations:
    """:func:`demonstrations` of ``windows``, in ``workers`` processes.

    ``policy`` (an SB3 policy, played deterministically) walks the path instead of the
    planner.  ``progress`` is called about once a second with the share done; it may
    raise to stop, and the workers are then ended.
    """
    jobs = [
        {"planner": planner, "design": design, "windows": windows.part(rows), "policy": policy,
         **options}
        for rows in (
            np.array_split(np.arange(len(windows)), min(workers, len(windows)))
            if workers > 1
            else [np.arange(len(windows))]
        )
    ]  # fmt: skip
    if len(jobs) == 1:
        return _demonstrate({**jobs[0], "progress": progress})
    import multiprocessing

    import cloudpickle  # the shaping potentials are closures

    pool = multiprocessing.get_context("spawn").Pool(len(jobs), _one_thread)
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
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Fit an SB3 actor-critic policy to the demonstrations; return the final losses.

    ``progress`` is told the share of epochs done before each; it may raise to stop.
    ``on_epoch`` is told each epoch's mean losses (``actor``: squared error of the mean
    action; ``critic``: of the value, where the return is whole).
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
    weights = torch.as_tensor(shown.weights, device=policy.device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = {"actor": float("nan"), "critic": float("nan")}
    whole = float(weights.sum())
    with torch.no_grad():  # start the value at the mean return: the rest is the shape
        mean = float((returns * weights).sum() / max(whole, 1.0))
        policy.value_net.bias.fill_(mean)
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
            w = weights[idx]
            error = (policy.value_net(latent_vf).squeeze(-1) - returns[idx]) ** 2
            critic = (error * w).sum() / w.sum().clamp(min=1.0)
            optimizer.zero_grad()
            (actor + critic).backward()
            optimizer.step()
            actor_sum += actor.item() * len(idx)
            critic_sum += float((error * w).sum().item())
        losses = {"actor": actor_sum / len(x), "critic": critic_sum / max(whole, 1.0)}
        if on_epoch is not None:
            on_epoch(epoch, losses)
    with torch.no_grad():
        policy.log_std.fill_(float(np.log(EXPLORATION_STD)))
    return losses


class Anchor:
    """Pulls the policy's mean action towards the planner's on the demonstrations while it
    learns by reinforcement, with a weight falling linearly from ``weight`` to zero over
    ``steps`` environment steps: call :meth:`update` after every rollout."""

    def __init__(
        self,
        model: Any,
        shown: Demonstrations,
        *,
        weight: float,
        steps: int,
        seed: int = 0,
        batch: int = 256,
    ) -> None:
        import torch

        self.model, self.weight, self.steps, self.batch = model, float(weight), int(steps), batch
        self.first = int(model.num_timesteps)
        self.x = torch.as_tensor(shown.observations)
        self.actions = torch.as_tensor(shown.actions)
        self.generator = torch.Generator().manual_seed(seed)
        learning_rate = model.lr_schedule(1.0) if callable(model.lr_schedule) else 1e-4
        self.optimizer = torch.optim.Adam(model.policy.parameters(), lr=float(learning_rate))

    def share(self) -> float:
        done = int(self.model.num_timesteps) - self.first
        return self.weight * max(0.0, 1.0 - done / max(self.steps, 1))

    def update(self) -> float | None:
        """One step on the imitation loss at the present weight; its loss, or None if done."""
        import torch

        share = self.share()
        if share <= 0.0 or len(self.x) == 0:
            return None
        policy = self.model.policy
        idx = torch.randint(len(self.x), (min(self.batch, len(self.x)),), generator=self.generator)
        latent_pi, _ = policy.mlp_extractor(policy.extract_features(self.x[idx]))
        loss = ((policy.action_net(latent_pi) - self.actions[idx]) ** 2).mean()
        self.optimizer.zero_grad()
        (share * loss).backward()
        self.optimizer.step()
        return float(loss.item())
