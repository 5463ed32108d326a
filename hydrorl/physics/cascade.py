"""The cascade transition, batched over B independent states (numpy only).

For each step of length ``dt_s`` seconds and reservoir r, in upstream-first order::

    available = v[r] + dt·1e-6·(f[r]·inflow + arrivals[r])          (Mm³)
    release   = Σ q[s] of the stations drawing from r, scaled down
                so that available − dt·1e-6·release ≥ min_volume[r]
    v'[r]     = available − dt·1e-6·release
    spill[r]  = (v'[r] − max_volume[r]) / (dt·1e-6)  if v'[r] > max_volume[r]  (m³/s)
    v'[r]     = min(v'[r], max_volume[r])

Station discharges arrive in their downstream reservoir, and spill in the
reservoir's spill target, within the same step.  Generation (MWh) is
``q·dt·1e-6·energy_equivalent·1000`` and revenue ``price·Σ generation``.
Spill is forced only: it happens when a reservoir would overflow, never by choice.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hydrorl.system import HydroSystem

#: Mm³ per m³: flows (m³/s) times seconds times this give volumes (Mm³).
MM3_PER_M3 = 1e-6
#: MWh per Mm³ for each kWh/m³ of energy equivalent.
MWH_PER_MM3_PER_KWH_M3 = 1000.0

_SEA = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Cascade:
    """A hydro system as index arrays: R reservoirs, S stations (``-1`` means the sea)."""

    reservoir_names: tuple[str, ...]
    station_names: tuple[str, ...]
    min_volume_mm3: np.ndarray  # (R,)
    max_volume_mm3: np.ndarray  # (R,)
    inflow_factor: np.ndarray  # (R,)
    upstream: np.ndarray  # (S,) reservoir a station draws from
    downstream: np.ndarray  # (S,) reservoir it releases into, -1: the sea
    spill_to: np.ndarray  # (R,) where a reservoir's spill goes, -1: the sea
    order: np.ndarray  # (R,) reservoirs, upstream first
    max_discharge_m3s: np.ndarray  # (S,)
    energy_equivalent_kwh_m3: np.ndarray  # (S,)
    energy_to_sea_kwh_m3: np.ndarray  # (R,) on the best way to the sea

    @property
    def n_reservoirs(self) -> int:
        return len(self.reservoir_names)

    @property
    def n_stations(self) -> int:
        return len(self.station_names)

    @classmethod
    def from_system(cls, system: HydroSystem) -> Cascade:
        system.validate()
        names = system.reservoir_names
        index = {n: i for i, n in enumerate(names)}
        stations = system.power_stations

        def where(name: str | None) -> int:
            return _SEA if name is None else index[name]

        return cls(
            reservoir_names=tuple(names),
            station_names=tuple(s.name for s in stations),
            min_volume_mm3=np.array([r.min_volume_mm3 for r in system.reservoirs], float),
            max_volume_mm3=np.array([r.max_volume_mm3 for r in system.reservoirs], float),
            inflow_factor=np.array([r.inflow_factor for r in system.reservoirs], float),
            upstream=np.array([index[s.upstream] for s in stations], dtype=np.int64),
            downstream=np.array([where(s.downstream) for s in stations], dtype=np.int64),
            spill_to=np.array([where(system.spill_target(n)) for n in names], dtype=np.int64),
            order=np.array([index[n] for n in system.topological_order()], dtype=np.int64),
            max_discharge_m3s=np.array([s.max_discharge_m3s for s in stations], float),
            energy_equivalent_kwh_m3=np.array(
                [s.energy_equivalent_kwh_m3 for s in stations], float
            ),
            energy_to_sea_kwh_m3=np.array([system.energy_to_sea_kwh_m3(n) for n in names], float),
        )

    def stations_from(self, reservoir: int) -> np.ndarray:
        return np.flatnonzero(self.upstream == reservoir)

    def clip_volume(self, volume_mm3: np.ndarray) -> np.ndarray:
        return np.clip(volume_mm3, self.min_volume_mm3, self.max_volume_mm3)

    def water_value_eur_mm3(self, price_eur_mwh: float) -> np.ndarray:
        """Value of one Mm³ above the minimum in each reservoir at ``price_eur_mwh``."""
        return price_eur_mwh * self.energy_to_sea_kwh_m3 * MWH_PER_MM3_PER_KWH_M3

    def max_generation_mwh(self, dt_s: float) -> float:
        """Energy of all stations at full discharge for one step."""
        per_station = self.max_discharge_m3s * dt_s * MM3_PER_M3 * self.energy_equivalent_kwh_m3
        return float(per_station.sum() * MWH_PER_MM3_PER_KWH_M3)


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What one step did, per batch row: all arrays have B rows."""

    volume_mm3: np.ndarray  # (B, R) at the end of the step
    discharge_m3s: np.ndarray  # (B, S) actually released (after water limits)
    spill_m3s: np.ndarray  # (B, R)
    generation_mwh: np.ndarray  # (B, S)
    revenue_eur: np.ndarray  # (B,)


def step(
    cascade: Cascade,
    volume_mm3: np.ndarray,
    fraction: np.ndarray,
    inflow_m3s: np.ndarray,
    price_eur_mwh: np.ndarray,
    dt_s: float,
    spill_guard: bool = False,
) -> StepResult:
    """Advance B states by one step.

    Args:
        volume_mm3: (B, R) volumes at the start of the step, within their limits.
        fraction: (B, S) requested discharge as a fraction of each station's maximum
            (clipped to [0, 1]).
        inflow_m3s: (B,) scenario inflow; reservoir r receives ``inflow_factor[r]`` of it.
        price_eur_mwh: (B,) price of the step.
        dt_s: step length in seconds.
        spill_guard: run the stations harder where a reservoir would otherwise spill, up
            to their maximum (as an operator would), instead of following the fractions.
    """
    volume = np.asarray(volume_mm3, dtype=float)
    b = volume.shape[0]
    to_mm3 = dt_s * MM3_PER_M3
    requested = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0) * cascade.max_discharge_m3s
    inflow = np.asarray(inflow_m3s, dtype=float).reshape(b)
    arrivals = np.zeros((b, cascade.n_reservoirs))  # m³/s arriving from upstream this step
    discharge = np.zeros((b, cascade.n_stations))
    spill = np.zeros((b, cascade.n_reservoirs))
    new_volume = np.empty_like(volume)
    for r in cascade.order:
        available = volume[:, r] + to_mm3 * (cascade.inflow_factor[r] * inflow + arrivals[:, r])
        stations = cascade.stations_from(r)
        if stations.size:
            wanted = requested[:, stations].sum(axis=1)
            usable = np.maximum(available - cascade.min_volume_mm3[r], 0.0) / to_mm3
            # Not enough water for every station: scale all of them down alike.
            scale = np.where(wanted > usable, usable / np.where(wanted > 0, wanted, 1.0), 1.0)
            q = requested[:, stations] * scale[:, None]
            if spill_guard:
                room = cascade.max_discharge_m3s[stations] - q
                total_room = room.sum(axis=1)
                excess = np.maximum(
                    available - to_mm3 * q.sum(axis=1) - cascade.max_volume_mm3[r], 0.0
                )
                extra = np.minimum(excess / to_mm3, total_room)
                q = q + room * (extra / np.where(total_room > 0, total_room, 1.0))[:, None]
            discharge[:, stations] = q
            available = available - to_mm3 * q.sum(axis=1)
        overflow = np.maximum(available - cascade.max_volume_mm3[r], 0.0)
        spill[:, r] = overflow / to_mm3
        new_volume[:, r] = np.clip(available - overflow, cascade.min_volume_mm3[r], None)
        for s in stations:
            if cascade.downstream[s] != _SEA:
                arrivals[:, cascade.downstream[s]] += discharge[:, s]
        if cascade.spill_to[r] != _SEA:
            arrivals[:, cascade.spill_to[r]] += spill[:, r]
    generation = discharge * to_mm3 * cascade.energy_equivalent_kwh_m3 * MWH_PER_MM3_PER_KWH_M3
    revenue = np.asarray(price_eur_mwh, dtype=float).reshape(b) * generation.sum(axis=1)
    return StepResult(new_volume, discharge, spill, generation, revenue)


def end_water_value_eur(
    cascade: Cascade, volume_mm3: np.ndarray, water_price_eur_mwh: float
) -> np.ndarray:
    """Worth of the water above the minimum volumes, (B, R) -> (B,).

    Each Mm³ is valued at the energy it can still make on its way to the sea
    times ``water_price_eur_mwh`` (by default the forecast's mean price).
    """
    usable = np.maximum(np.asarray(volume_mm3) - cascade.min_volume_mm3, 0.0)
    return usable @ cascade.water_value_eur_mm3(water_price_eur_mwh)
