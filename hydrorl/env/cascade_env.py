"""The single gymnasium environment: one row of the batched physics."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hydrorl.env.spaces import action_space, observation_space, scalar_info
from hydrorl.physics import Problem
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign


class CascadeEnv(gym.Env[np.ndarray, np.ndarray]):
    """Schedule the discharges of a hydropower cascade against price and inflow.

    ## Description
    A cascade of reservoirs and power stations (DESIGN.md §2) is run step by step
    (typically 3 h) through one price/inflow scenario of a forecast.  Water
    released by a station produces energy sold at the step's price and flows on to
    the reservoir below; water that overflows a full reservoir is spilled downstream.

    ## Action Space
    ``Box(0, 1, (n_stations,), float32)``: each station's discharge as a fraction of
    its maximum.  Requests that would draw a reservoir below its minimum are scaled down.

    ## Observation Space
    ``Box((n_reservoirs + 7 + 2·H,), float32)``: the volume of each reservoir as a
    fraction of its range, the normalised price and inflow of the coming step, sine
    and cosine of the time of day and of the time of year, the progress through the
    episode, then H future prices and H future inflows (H =
    ``forecast_horizon_steps``, 0 by default: no peeking at the future).  See
    :class:`hydrorl.physics.episode.ObservationLayout`.

    ## Rewards
    The revenue of the step (EUR); on the last step also the end water value of the
    water left above the minimum volumes, at the problem's water price.  Rewards are
    divided by ``design.reward_scale_eur`` (default: one step of all stations at full
    discharge at the mean price).  ``info`` carries the components in EUR
    (``revenue_eur``, ``end_value_eur``, ``reward_eur``) and ``spill_mm3``.

    ## Starting State
    The start volumes given (half-full reservoirs by default) or, with
    ``design.random_start_volumes``, uniformly random volumes.  The scenario is the
    one given or a random one each reset; the window starts at step 0 or, with
    ``design.random_start``, at a random step.

    ## Episode End
    Terminated after ``design.episode_steps`` steps (0: the whole horizon).  The end
    water value is paid on the last step, so no value is left to bootstrap.

    ## Arguments
    * ``problem``: a :class:`hydrorl.physics.Problem` (default: the embedded demo).
    * ``design``: an :class:`~hydrorl.physics.episode.EpisodeDesign`.
    * ``scenario``: play only this scenario index (evaluation); ``None`` samples one.
    * ``start_volumes``: (n_reservoirs,) volumes in Mm³.
    * ``spec``: an agent (a model trained by HydroRL, or loaded from its checkpoint) or its
      :class:`~hydrorl.env.spec.ObservationSpec`: the environment then observes as that
      agent does (its features, the training scales, the water value feature) and reads
      actions as it was trained (spill guard), so the agent plays it as it is.

    ## Version History
    * v0: first version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        problem: Problem | None = None,
        design: EpisodeDesign | None = None,
        scenario: int | None = None,
        start_volumes: np.ndarray | None = None,
        spec: Any = None,
    ) -> None:
        from hydrorl.env.spec import as_spec

        if problem is None:
            from hydrorl.demo import demo_problem

            problem = demo_problem()
        marginal = expected = guide = None
        observed = as_spec(spec)
        if observed is not None:
            observed.check(problem, spec if spec is not observed else None)
            problem = observed.view(problem)
            design = design or observed.design()
            marginal = observed.marginal(problem)
            expected = observed.expected(problem)
            guide = observed.guide_of(problem)
        self.problem = problem
        self.design = design or EpisodeDesign()
        fixed = None if scenario is None else np.array([scenario])
        self.episodes = BatchedEpisodes(
            problem,
            1,
            self.design,
            scenarios=fixed,
            start_volumes=start_volumes,
            marginal=marginal,
            expected=expected,
            guide=guide,
        )
        self.observation_space = observation_space(self.episodes.layout)
        self.action_space = action_space(problem.cascade.n_stations, guide is not None)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.episodes.rng = np.random.default_rng(seed)
        obs = self.episodes.reset()
        return obs[0], {
            "scenario": int(self.episodes.scenario[0]),
            "start_step": int(self.episodes.start[0]),
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, done, info = self.episodes.step(np.asarray(action, dtype=float)[None, :])
        ended = bool(done[0])
        if self.design.bootstrap_window_ends:  # a cut, not an end (gymnasium's truncation)
            return obs[0], float(reward[0]), False, ended, scalar_info(info, 0)
        return obs[0], float(reward[0]), ended, False, scalar_info(info, 0)
