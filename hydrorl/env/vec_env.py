"""A Stable-Baselines3 VecEnv whose environments are the rows of one batched physics call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from hydrorl.env.spaces import action_space, observation_space, scalar_info
from hydrorl.physics import Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, Guide, Potential


class CascadeVecEnv(VecEnv):
    """``n_envs`` cascade episodes stepped by array operations, not by Python env objects.

    Finished rows are reset at once (SB3's contract): their last observation is in
    ``infos[i]["terminal_observation"]`` with their reward components.  The
    components of every row for the last step are in :attr:`last_info` (arrays).
    """

    def __init__(
        self,
        problem: Problem,
        n_envs: int,
        design: EpisodeDesign | None = None,
        *,
        start_volumes: np.ndarray | None = None,
        scenarios: np.ndarray | None = None,
        seed: int | None = None,
        potential: Potential | None = None,
        marginal: Potential | None = None,
        spec: Any = None,
        expected: tuple[np.ndarray, np.ndarray] | None = None,
        guide: Guide | None = None,
    ) -> None:
        from hydrorl.env.spec import as_spec

        observed = as_spec(spec)  # an agent (or its spec): observe as it does
        if observed is not None:
            observed.check(problem, spec if spec is not observed else None)
            problem = observed.view(problem)
            design = design or observed.design()
            marginal = observed.marginal(problem) if marginal is None else marginal
            expected = observed.expected(problem) if expected is None else expected
            guide = observed.guide_of(problem) if guide is None else guide
        self.design = design or EpisodeDesign()
        self.episodes = BatchedEpisodes(
            problem,
            n_envs,
            self.design,
            scenarios=scenarios,
            start_volumes=start_volumes,
            seed=seed,
            potential=potential,
            marginal=marginal,
            expected=expected,
            guide=guide,
        )
        self.render_mode = None
        super().__init__(
            n_envs,
            observation_space(self.episodes.layout),
            action_space(problem.cascade.n_stations, guide is not None),
        )
        self._actions = np.zeros((n_envs, problem.cascade.n_stations))
        self.last_info: dict[str, np.ndarray] = {}

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        if seed is not None:
            self.episodes.rng = np.random.default_rng(seed)
        self._reset_seeds()
        self._reset_options()
        return self.episodes.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=float).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, done, info = self.episodes.step(self._actions)
        self.last_info = info
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(done)
        if finished.size:
            for i in finished:
                infos[i] = scalar_info(info, int(i))
                infos[i]["terminal_observation"] = obs[i].copy()
                if self.design.bootstrap_window_ends:
                    infos[i]["TimeLimit.truncated"] = True
            obs = self.episodes.reset(finished)
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        pass

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._seeds = [seed] * self.num_envs
        return self._seeds

    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        return self._get_indices(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        return [
            getattr(self, method_name)(*method_args, **method_kwargs)
            for _ in self._indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
