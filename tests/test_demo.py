"""The embedded demo: a realistic cascade and a synthetic forecast with the promised shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hydrorl
from hydrorl.demo import demo_forecast, demo_system


@pytest.fixture(scope="module")
def forecast() -> hydrorl.ForecastTable:
    return demo_forecast(seed=3, scenarios=6, years=5)


def test_the_demo_cascade_is_three_reservoirs_in_a_row_to_the_sea() -> None:
    system = demo_system()
    assert system.topological_order() == ["Hoegfjell", "Midtvatn", "Nedrevatn"]
    assert [system.spill_target(r) for r in system.reservoir_names] == [
        "Midtvatn",
        "Nedrevatn",
        None,
    ]
    sizes = [r.max_volume_mm3 for r in system.reservoirs]
    assert sizes == sorted(sizes, reverse=True)  # a large seasonal reservoir on top


def test_default_grid_is_3_hourly_over_5_years() -> None:
    table = demo_forecast(scenarios=2)
    assert table.n_steps == 14_608
    assert table.step == pd.Timedelta(hours=3)
    assert table.start_time == pd.Timestamp("2027-01-01")


def test_same_seed_same_forecast_other_seed_other_forecast(forecast: hydrorl.ForecastTable) -> None:
    again = demo_forecast(seed=3, scenarios=6, years=5)
    np.testing.assert_array_equal(again.price_eur_mwh, forecast.price_eur_mwh)
    np.testing.assert_array_equal(again.inflow_m3s, forecast.inflow_m3s)
    assert again.content_hash == forecast.content_hash
    other = demo_forecast(seed=4, scenarios=6, years=5)
    assert not np.allclose(other.inflow_m3s, forecast.inflow_m3s)
    assert other.content_hash != forecast.content_hash


def _by(table: hydrorl.ForecastTable, key: np.ndarray, values: np.ndarray) -> pd.Series:
    return pd.Series(values.mean(axis=0)).groupby(key).mean()


def test_inflow_is_a_late_spring_snow_melt_with_yearly_variation(
    forecast: hydrorl.ForecastTable,
) -> None:
    times = forecast.times
    monthly = _by(forecast, times.month.to_numpy(), forecast.inflow_m3s)
    assert monthly.idxmax() in (5, 6)
    assert monthly[[5, 6]].mean() > 3 * monthly[[1, 2, 3]].mean()
    assert (forecast.inflow_m3s >= 0).all()
    yearly = pd.DataFrame(forecast.inflow_m3s.T).groupby(times.year.to_numpy()).mean()
    assert yearly.to_numpy().std() / yearly.to_numpy().mean() > 0.1


def test_price_has_daily_weekly_and_seasonal_shape(forecast: hydrorl.ForecastTable) -> None:
    times = forecast.times
    hourly = _by(forecast, times.hour.to_numpy(), forecast.price_eur_mwh)
    assert hourly[18] > hourly[3] + 5  # evening peak above the night
    weekday = _by(forecast, times.day_of_week.to_numpy(), forecast.price_eur_mwh)
    assert weekday[[5, 6]].mean() < weekday[[0, 1, 2, 3, 4]].mean() - 4
    monthly = _by(forecast, times.month.to_numpy(), forecast.price_eur_mwh)
    assert monthly[[12, 1, 2]].mean() > monthly[[6, 7, 8]].mean() + 10


def test_price_falls_when_inflow_is_high(forecast: hydrorl.ForecastTable) -> None:
    correlation = np.corrcoef(forecast.inflow_m3s.ravel(), forecast.price_eur_mwh.ravel())[0, 1]
    assert correlation < -0.2


def test_scenarios_differ(forecast: hydrorl.ForecastTable) -> None:
    assert len(set(forecast.scenario_names)) == 6
    annual = forecast.inflow_m3s.mean(axis=1)
    assert annual.std() > 0.02 * annual.mean()


def test_setup_demo_is_complete_and_idempotent(wb: hydrorl.Workbench) -> None:
    result = wb.setup_demo(scenarios=3, years=1)
    assert result["created"] == ["system", "forecast", "project"]
    assert result["forecast"].scenario_names == ("S01", "S02", "S03")
    again = wb.setup_demo(scenarios=3, years=1)
    assert again["created"] == []
    assert len(wb.forecasts()) == 1 and len(wb.systems()) == 1 and len(wb.projects()) == 1
    stored = wb.forecast_table("Demo forecast")
    expected = demo_forecast(scenarios=3, years=1)
    np.testing.assert_array_equal(stored.price_eur_mwh, expected.price_eur_mwh)
    assert "Demo river" in wb.summary()


def test_setup_demo_with_other_settings_gets_its_own_forecast(wb: hydrorl.Workbench) -> None:
    """A small tour on a database holding a bigger demo gets the small forecast it asked for."""
    full = wb.setup_demo(scenarios=3, years=2)
    assert full["forecast"].name == "Demo forecast"
    small = wb.setup_demo(scenarios=2, years=1)
    assert small["created"] == ["forecast"]
    assert small["forecast"].name == "Demo forecast (seed 0, 2 scenarios, 1 year)"
    assert small["forecast"].scenario_names == ("S01", "S02")
    assert "2 scenarios x 1 year of" in small["note"]
    assert "3 scenarios, 2 years" in small["note"]  # and says what the plain demo holds
    again = wb.setup_demo(scenarios=3, years=2)
    assert again["created"] == [] and again["forecast"].name == "Demo forecast"
    assert wb.setup_demo(scenarios=2, years=1)["created"] == []
    assert len(wb.forecasts()) == 2 and len(wb.projects()) == 1


def test_setup_demo_refuses_a_foreign_forecast_under_its_name(wb: hydrorl.Workbench) -> None:
    wb.setup_demo(scenarios=3, years=1)
    other = demo_forecast(scenarios=2, years=1, seed=5)
    name = "Demo forecast (seed 0, 2 scenarios, 1 year)"
    wb.upload_forecast("Demo river", other, name, allow_duplicate=True)
    with pytest.raises(hydrorl.HydroRLError, match="not the demo forecast of seed 0"):
        wb.setup_demo(scenarios=2, years=1)
