"""Naive rules a scheduler would try first; any policy worth using beats them."""

from __future__ import annotations

import numpy as np

from hydrorl.baselines.policy import Policy
from hydrorl.physics import Problem


class ConstantRelease(Policy):
    """Every station releases, all the time, the mean flow that reaches its reservoir."""

    def __init__(self, problem: Problem, horizon: int = 0) -> None:
        super().__init__(problem, horizon)
        c = problem.cascade
        flow = problem.inflow_mean * c.inflow_factor.copy()  # mean m³/s reaching each reservoir
        fraction = np.zeros(c.n_stations)
        for r in c.order:
            stations = c.stations_from(r)
            if stations.size:
                share = min(1.0, flow[r] / c.max_discharge_m3s[stations].sum())
                fraction[stations] = share
                for s in stations:
                    if c.downstream[s] >= 0:
                        flow[c.downstream[s]] += share * c.max_discharge_m3s[s]
        self.fraction = fraction

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.fraction, (obs.shape[0], self.fraction.size)).copy()


class PriceThreshold(Policy):
    """Every station at full discharge when the price is above a threshold (default: the mean)."""

    def __init__(self, problem: Problem, horizon: int = 0, threshold_eur_mwh: float | None = None):
        super().__init__(problem, horizon)
        self.threshold = problem.price_mean if threshold_eur_mwh is None else threshold_eur_mwh

    def act(self, obs: np.ndarray) -> np.ndarray:
        price = self.layout.price_eur_mwh(obs, self.problem)
        on = (price > self.threshold).astype(float)
        return np.repeat(on[:, None], self.problem.cascade.n_stations, axis=1)
