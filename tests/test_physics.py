"""The cascade physics: water balance, limits and forced spill on random cascades."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydrorl.physics import MM3_PER_M3, Cascade, Problem, step
from hydrorl.physics.episode import BatchedEpisodes, EpisodeDesign, ObservationLayout
from hydrorl.system import HydroSystem, PowerStation, Reservoir


@st.composite
def cascades(draw: st.DrawFn) -> HydroSystem:
    """Random acyclic cascades: reservoir i releases into a later reservoir or the sea."""
    n = draw(st.integers(1, 4))
    reservoirs = []
    for i in range(n):
        low = draw(st.floats(0.0, 50.0))
        span = draw(st.floats(0.5, 500.0))
        reservoirs.append(Reservoir(f"R{i}", low, low + span, draw(st.floats(0.0, 1.0))))
    stations = []
    for i in range(n):
        for k in range(draw(st.integers(0, 2))):
            target = draw(st.sampled_from([None, *[f"R{j}" for j in range(i + 1, n)]]))
            stations.append(
                PowerStation(
                    f"S{i}{k}",
                    f"R{i}",
                    target,
                    draw(st.floats(1.0, 300.0)),
                    draw(st.floats(0.0, 2.0)),
                )
            )
    return HydroSystem("random", tuple(reservoirs), tuple(stations)).validate()


def _downstream_of_sea(c: Cascade) -> tuple[np.ndarray, np.ndarray]:
    return c.downstream < 0, c.spill_to < 0


@settings(max_examples=60, deadline=None)
@given(system=cascades(), seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5))
def test_water_balance_limits_and_forced_spill(system: HydroSystem, seed: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    c = Cascade.from_system(system)
    dt = 3 * 3600.0
    to_mm3 = dt * MM3_PER_M3
    volume = c.min_volume_mm3 + rng.random((batch, c.n_reservoirs)) * (
        c.max_volume_mm3 - c.min_volume_mm3
    )
    start_total = volume.sum(axis=1)
    entered = np.zeros(batch)
    left = np.zeros(batch)
    station_to_sea, spill_to_sea = _downstream_of_sea(c)
    for _ in range(200):
        inflow = rng.gamma(1.0, 80.0, batch)
        fraction = rng.random((batch, c.n_stations)) * rng.integers(0, 2, (batch, 1))
        result = step(c, volume, fraction, inflow, rng.normal(40, 20, batch), dt)
        v = result.volume_mm3
        # Limits.
        assert (v >= c.min_volume_mm3 - 1e-9).all() and (v <= c.max_volume_mm3 + 1e-9).all()
        assert (result.discharge_m3s >= 0).all()
        assert (result.discharge_m3s <= c.max_discharge_m3s + 1e-9).all()
        assert (result.discharge_m3s <= fraction * c.max_discharge_m3s + 1e-9).all()
        # Spill only from a full reservoir.
        spilling = result.spill_m3s > 0
        assert np.allclose(v[spilling], np.broadcast_to(c.max_volume_mm3, v.shape)[spilling])
        entered += to_mm3 * inflow * c.inflow_factor.sum()
        left += to_mm3 * (
            result.discharge_m3s[:, station_to_sea].sum(axis=1)
            + result.spill_m3s[:, spill_to_sea].sum(axis=1)
        )
        volume = v
    scale = max(1.0, float(start_total.max()), float(entered.max()))
    np.testing.assert_allclose(volume.sum(axis=1), start_total + entered - left, atol=1e-9 * scale)


def test_no_water_no_release_and_revenue_from_generation() -> None:
    system = HydroSystem(
        "one", (Reservoir("R", 10.0, 20.0, 1.0),), (PowerStation("S", "R", None, 100.0, 0.5),)
    )
    c = Cascade.from_system(system)
    dt = 3600.0
    # At the minimum with no inflow nothing can be released.
    empty = step(c, np.array([[10.0]]), np.array([[1.0]]), np.array([0.0]), np.array([50.0]), dt)
    assert empty.discharge_m3s[0, 0] == 0.0 and empty.revenue_eur[0] == 0.0
    # Full discharge for an hour: 0.36 Mm³ · 0.5 kWh/m³ = 180 MWh, sold at 50 EUR/MWh.
    full = step(c, np.array([[15.0]]), np.array([[1.0]]), np.array([0.0]), np.array([50.0]), dt)
    np.testing.assert_allclose(full.generation_mwh[0, 0], 180.0)
    np.testing.assert_allclose(full.revenue_eur[0], 9000.0)
    np.testing.assert_allclose(full.volume_mm3[0, 0], 15.0 - 0.36)


def test_spill_is_routed_to_the_reservoir_below() -> None:
    system = HydroSystem(
        "two",
        (Reservoir("Up", 0.0, 1.0, 1.0), Reservoir("Down", 0.0, 100.0, 0.0)),
        (PowerStation("S", "Up", "Down", 10.0, 1.0),),
    )
    c = Cascade.from_system(system)
    # 1000 m³/s for an hour into a full reservoir: 3.6 Mm³ arrive, 0.036 go through the station.
    r = step(
        c, np.array([[1.0, 0.0]]), np.array([[1.0]]), np.array([1000.0]), np.array([1.0]), 3600.0
    )
    np.testing.assert_allclose(r.volume_mm3[0], [1.0, 3.6])
    np.testing.assert_allclose(r.spill_m3s[0, 0] * 3600 * 1e-6, 3.6 - 0.036)


def test_batched_episodes_match_row_by_row() -> None:
    from hydrorl.demo import demo_problem

    problem = demo_problem(scenarios=3, years=1)
    design = EpisodeDesign(
        episode_steps=50, random_start=True, random_start_volumes=True, forecast_horizon_steps=4
    )
    batch = BatchedEpisodes(problem, 3, design, seed=7)
    rows = [BatchedEpisodes(problem, 1, design, seed=1) for _ in range(3)]
    for i, one in enumerate(rows):  # put each single row in the batch row's state
        one.scenario[:], one.start[:], one.t[:] = batch.scenario[i], batch.start[i], batch.t[i]
        one.volume[:] = batch.volume[i]
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = rng.random((3, problem.cascade.n_stations))
        obs, reward, done, _ = batch.step(action)
        for i, one in enumerate(rows):
            o, r, d, _ = one.step(action[i : i + 1])
            np.testing.assert_array_equal(o[0], obs[i])
            assert r[0] == reward[i] and d[0] == done[i]
    assert done.all()


def test_observations_read_back_and_do_not_peek_without_a_horizon() -> None:
    from hydrorl.demo import demo_problem

    problem = demo_problem(scenarios=2, years=1)
    episodes = BatchedEpisodes(problem, 2, EpisodeDesign(), scenarios=np.array([0, 1]))
    for _ in range(13):
        episodes.step(np.full((2, 3), 0.5))
    obs = episodes.observe()
    layout = ObservationLayout(problem.cascade.n_reservoirs)
    assert obs.shape == (2, layout.size)
    np.testing.assert_allclose(layout.volumes_mm3(obs, problem), episodes.volume, rtol=1e-6)
    np.testing.assert_allclose(
        layout.price_eur_mwh(obs, problem), problem.price_eur_mwh[[0, 1], 13], rtol=1e-5
    )
    np.testing.assert_allclose(
        layout.inflow_m3s(obs, problem), problem.inflow_m3s[[0, 1], 13], rtol=1e-5
    )
    # Step 13 is 2027-01-02 15:00: day-of-year fraction (1 + 15/24) / 365.25.
    np.testing.assert_allclose(layout.year_fraction(obs), (1 + 15 / 24) / 365.25, atol=1e-6)
    # Changing the future of the scenario changes nothing in today's observation.
    changed = another_future(problem, 14)
    other = BatchedEpisodes(changed, 2, EpisodeDesign(), scenarios=np.array([0, 1]))
    for _ in range(13):
        other.step(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(other.observe(), obs)


def test_the_physics_imports_numpy_and_nothing_heavy() -> None:
    import ast
    from pathlib import Path

    import hydrorl.physics

    allowed_hydrorl = {"hydrorl.physics", "hydrorl.system", "hydrorl.errors"}
    folder = Path(hydrorl.physics.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "hydrorl":
                    assert any(name.startswith(a) for a in allowed_hydrorl), (path.name, name)
                else:
                    assert top in {
                        "numpy",
                        "__future__",
                        "dataclasses",
                        "typing",
                        "math",
                        "collections",
                    }, (
                        path.name,
                        name,
                    )


def test_the_spill_guard_turbines_what_would_overflow() -> None:
    system = HydroSystem(
        name="Guard",
        reservoirs=(Reservoir("Up", 0.0, 10.0, 1.0), Reservoir("Down", 0.0, 1.0, 0.0)),
        power_stations=(
            PowerStation("Up PS", "Up", "Down", 100.0, 1.0),
            PowerStation("Down PS", "Down", None, 50.0, 0.5),
        ),
    )
    cascade = Cascade.from_system(system)
    volume = np.array([[9.9, 0.9], [5.0, 0.5]])
    inflow, price, dt = np.array([200.0, 200.0]), np.array([30.0, 30.0]), 3 * 3600.0
    plain = step(cascade, volume, np.zeros((2, 2)), inflow, price, dt)
    guarded = step(cascade, volume, np.zeros((2, 2)), inflow, price, dt, spill_guard=True)
    assert plain.spill_m3s[0].sum() > 0 and (plain.discharge_m3s == 0).all()
    # Full reservoir: the stations take what would spill, up to their maximum; the rest spills.
    assert guarded.discharge_m3s[0, 0] == pytest.approx(100.0)
    assert guarded.spill_m3s[0, 0] < plain.spill_m3s[0, 0]
    assert guarded.revenue_eur[0] > 0
    # Room to spare: nothing changes.
    assert guarded.discharge_m3s[1].sum() == 0 and guarded.spill_m3s[1].sum() == 0
    # Water balance holds either way.
    for r in (plain, guarded):
        out = (r.discharge_m3s[:, 1] + r.spill_m3s[:, 1]) * dt * 1e-6
        change = r.volume_mm3.sum(axis=1) - volume.sum(axis=1)
        assert np.allclose(change, inflow * dt * 1e-6 - out)


def test_context_features_show_the_weekday_and_only_the_past() -> None:
    from hydrorl.demo import demo_problem
    from hydrorl.physics.episode import PRICE_MEMORY_DAYS

    problem = demo_problem(scenarios=2, years=1)
    design = EpisodeDesign(context_features=True)
    episodes = BatchedEpisodes(problem, 2, design, scenarios=np.array([0, 1]))
    layout = episodes.layout
    assert layout.size == ObservationLayout(problem.cascade.n_reservoirs).size + 4
    both = ObservationLayout(problem.cascade.n_reservoirs, 2, True, True)
    assert both.context_features.stop == both.water_value == both.size - 1
    # 2027-01-04 00:00 (step 24) is a Monday: the week's angle starts there.
    for _ in range(24):
        episodes.step(np.full((2, 3), 0.5))
    obs = episodes.observe()
    context = obs[:, layout.context_features]
    np.testing.assert_allclose(context[:, :2], [[0.0, 1.0]] * 2, atol=1e-6)
    # The recent price: an exponential average of the past standardised prices.
    price = (problem.price_eur_mwh[:, :25] - problem.price_mean) / problem.price_std
    weight = 1.0 / (PRICE_MEMORY_DAYS * 8)
    expected = price[:, 0]
    for t in range(1, 25):
        expected = expected + weight * (price[:, t] - expected)
    np.testing.assert_allclose(context[:, 2], expected, rtol=1e-5)
    # Another future changes nothing today; another past does.
    for first, same in ((25, True), (10, False)):
        changed = another_future(problem, first, price_add=30.0, inflow_factor=2.0)
        other = BatchedEpisodes(changed, 2, design, scenarios=np.array([0, 1]))
        for _ in range(24):
            other.step(np.full((2, 3), 0.5))
        seen = other.observe()[:, layout.context_features]
        assert np.array_equal(seen, context) == same


def another_future(
    problem: Problem, first: int, price_add: float = 100.0, inflow_factor: float = 1.0
) -> Problem:
    """A copy of ``problem`` (same scales) with other prices and inflows from step ``first`` on."""
    changed = Problem.create(
        problem.cascade,
        problem.price_eur_mwh.copy(),
        problem.inflow_m3s.copy(),
        problem.dt_s,
        problem.start_time,
    ).with_reference(problem)
    changed.price_eur_mwh[:, first:] += price_add
    changed.inflow_m3s[:, first:] *= inflow_factor
    return changed
