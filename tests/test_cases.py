"""The seeded suite of hydro cases: deterministic, varied, valid, and the physics runs on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hydrorl
from hydrorl.baselines import ConstantRelease, WaterValuePolicy, perfect_foresight, water_values
from hydrorl.cases import TOPOLOGIES, Case, generate_case, small_case, suite
from hydrorl.demo import demo_system
from hydrorl.evaluation import evaluate_policy
from hydrorl.forecast import check_table
from hydrorl.physics import MM3_PER_M3
from hydrorl.system import HydroSystem


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return suite()


def shapes(system: HydroSystem) -> set[str]:
    """What the system's structure shows, read from its stations, not from its description."""
    pairs = {(s.upstream, s.downstream) for s in system.power_stations}
    found = set()
    if len(system.reservoirs) == 1 and len(system.power_stations) == 1:
        found.add("single")
    if any(n >= 2 for n in Counter(down for _, down in pairs if down).values()):
        found.add("join")
    if any(n >= 2 for n in Counter(up for up, _ in pairs).values()):
        found.add("fork")
    if len(pairs) < len(system.power_stations):
        found.add("two stations")
    if len(system.reservoirs) >= 2 and not found:
        found.add("chain")
    return found


def test_same_seed_same_case_other_seed_other_case() -> None:
    first, again = generate_case(12), generate_case(12)
    assert first.system == again.system and first.description == again.description
    for one, other in ((first.training, again.training), (first.held_out, again.held_out)):
        np.testing.assert_array_equal(one.price_eur_mwh, other.price_eur_mwh)
        np.testing.assert_array_equal(one.inflow_m3s, other.inflow_m3s)
        assert one.content_hash == other.content_hash
    assert generate_case(15).training.content_hash != first.training.content_hash
    assert first.held_out.content_hash != first.training.content_hash  # another sub-seed
    assert first.held_out.n_steps == first.training.n_steps
    assert first.held_out.start_time == first.training.start_time


def test_keywords_fix_what_they_name_and_refuse_what_cannot_be() -> None:
    case = generate_case(12, step_hours=3, reservoirs=2, scenarios=3, held_out_scenarios=2)
    assert case.training.step == pd.Timedelta(hours=3)
    assert len(case.system.reservoirs) == 2
    assert (case.training.n_scenarios, case.held_out.n_scenarios) == (3, 2)
    assert 2 * 2920 <= case.training.n_steps <= 3 * 2928  # 2-3 years
    assert case.name == case.system.name == "case-12"
    assert generate_case(12, name="Elsewhere").system.name == "Elsewhere"
    with pytest.raises(hydrorl.ValidationError, match="a 'join' system has 3 to 6 reservoirs"):
        generate_case(1, topology="join", reservoirs=2)
    with pytest.raises(hydrorl.ValidationError, match="step_hours must be one of 1, 3 or 24"):
        generate_case(1, step_hours=2)
    with pytest.raises(hydrorl.ValidationError, match="seed must be a whole number >= 0"):
        generate_case(-1)


def test_the_suite_covers_step_lengths_topologies_and_process_kinds(cases: list[Case]) -> None:
    assert len(cases) == 8
    assert cases[0].name == "demo" and cases[0].system == demo_system()
    assert len({c.name for c in cases}) == 8
    assert {c.training.step for c in cases} == {pd.Timedelta(hours=h) for h in (1, 3, 24)}
    assert set().union(*(shapes(c.system) for c in cases)) == set(TOPOLOGIES)
    described = " ".join(c.description for c in cases[1:])
    for kind in ("floods", "rain season", "snow melt", "regimes", "spikes", "trend", "link strong"):
        assert kind in described, kind
    links = [
        np.corrcoef(c.training.price_eur_mwh.ravel(), c.training.inflow_m3s.ravel())[0, 1]
        for c in cases
    ]
    assert min(links) < -0.3 and max(links) > -0.1  # from none to strong


def test_every_case_is_valid_and_plausible(cases: list[Case]) -> None:
    for case in cases:
        system = case.system.validate()
        assert sum(r.inflow_factor for r in system.reservoirs) == pytest.approx(1.0)
        assert all(0.1 <= s.energy_equivalent_kwh_m3 <= 1.5 for s in system.power_stations)
        for table in (case.training, case.held_out):
            check_table(table)
            assert np.isfinite(table.price_eur_mwh).all() and (table.inflow_m3s >= 0).all()
            assert 1_800 <= table.n_steps <= 9_000
            assert (table.start_time, table.step) == (case.training.start_time, case.training.step)
        if case.name != "demo":  # the demo's own prices dip below zero now and then
            assert (case.training.price_eur_mwh > 0).all()
            assert all(
                0.01 <= r.min_volume_mm3 / r.max_volume_mm3 <= 0.1 for r in system.reservoirs
            )
        held_out = case.problem("held_out")
        assert held_out.price_mean == case.problem().price_mean  # the training scales


@pytest.mark.parametrize("seed", [0, 1])
def test_the_bound_beats_the_benchmark_on_small_cases(seed: int) -> None:
    case = small_case(seed)
    assert len(case.system.reservoirs) <= 2 and case.training.n_steps <= 2_928
    training, held_out = case.problem(), case.problem("held_out")
    bound = perfect_foresight(held_out, 0)
    played = evaluate_policy(WaterValuePolicy(held_out, water_values(training)), held_out)
    assert bound.total_eur >= played.totals["total_eur"].iloc[0] > 0


def test_spill_is_a_real_risk() -> None:
    def spilled(policy: type, case: Case) -> float:
        """The share of the inflow a policy spills (summed over the reservoirs it passes)."""
        problem = case.problem("held_out")
        if policy is WaterValuePolicy:
            played = evaluate_policy(
                WaterValuePolicy(problem, water_values(case.problem())), problem
            )
        else:
            played = evaluate_policy(policy(problem), problem)
        inflow_mm3 = problem.inflow_m3s.sum() * problem.dt_s * MM3_PER_M3
        return float(played.totals["spill_mm3"].sum() / inflow_mm3)

    assert max(spilled(ConstantRelease, small_case(seed)) for seed in range(4)) > 0.05
    assert spilled(WaterValuePolicy, small_case(0)) > 0.01  # a small reservoir in floods


def test_a_case_uploads_through_the_workbench(tmp_path: Path) -> None:
    case = small_case(1)
    with hydrorl.connect(f"sqlite:///{tmp_path / 'cases.db'}") as wb:
        wb.create_system(case.system)
        assert wb.system(case.system.name) == case.system
        wb.upload_forecast(case.system.name, case.training, "training")
        wb.upload_forecast(case.system.name, case.held_out.to_frame(), "held-out")
        stored = wb.problem("held-out")
        np.testing.assert_array_equal(stored.price_eur_mwh, case.held_out.price_eur_mwh)
        np.testing.assert_array_equal(stored.inflow_m3s, case.held_out.inflow_m3s)
        assert stored.scenario_names == case.held_out.scenario_names
        assert wb.forecast("training").n_steps == case.training.n_steps
