"""The state forecast: reads only the past, knows the calendar, learns what persists."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hydrorl.baselines.expectation import StateForecast
from hydrorl.baselines.foresight import CalendarForecast
from hydrorl.demo import demo_problem
from hydrorl.physics import Problem
from tests.test_physics import another_future

DAY = 8  # 3-hourly steps


@pytest.fixture(scope="module")
def training() -> Problem:
    return demo_problem(seed=0, scenarios=4, years=1)


@pytest.fixture(scope="module")
def held_out(training: Problem) -> Problem:
    return demo_problem(seed=1, scenarios=3, years=1).with_reference(training)


@pytest.fixture(scope="module")
def fitted(training: Problem) -> StateForecast:
    return StateForecast.fit(training, 7 * DAY)


def test_the_forecast_reads_nothing_after_the_decision_step(
    fitted: StateForecast, held_out: Problem
) -> None:
    forecast = fitted.bind(held_out)
    for t in (0, 1, 5, 500, 1203, held_out.n_steps - 3):
        price, inflow = forecast(1, t, t + 10 * DAY)
        # The present is observed, as the agents observe it.
        assert price[0] == pytest.approx(held_out.price_eur_mwh[1, t])
        assert inflow[0] == pytest.approx(held_out.inflow_m3s[1, t])
        later = fitted.bind(another_future(held_out, t + 1, price_add=80.0, inflow_factor=4.0))
        again = later(1, t, t + 10 * DAY)
        np.testing.assert_array_equal(again[0], price)
        np.testing.assert_array_equal(again[1], inflow)
        assert len(price) == min(t + 10 * DAY, held_out.n_steps) - t


def test_leads_beyond_the_fitted_ones_use_the_last_and_inflows_stay_positive(
    fitted: StateForecast, held_out: Problem
) -> None:
    assert fitted.lookahead_steps == 7 * DAY
    price, inflow = fitted.bind(held_out)(0, 100, 100 + 28 * DAY)
    assert price.shape == inflow.shape == (28 * DAY,)
    assert np.isfinite(price).all() and (inflow > 0).all()


def test_a_price_that_is_only_its_calendar_is_forecast_exactly(training: Problem) -> None:
    day, year = training.time_angles()
    weekday = (training.week_angle() / (2 * np.pi) * 7).astype(int)
    calendar = 40 + 10 * np.cos(year) + 5 * np.sin(day) - 6.0 * (weekday >= 5)
    regular = Problem.create(
        training.cascade,
        np.tile(calendar, (2, 1)),
        training.inflow_m3s[:2],
        training.dt_s,
        training.start_time,
    )
    price, _ = StateForecast.fit(regular, 4 * DAY).bind(regular)(0, 2000, 2100)
    np.testing.assert_allclose(price, calendar[2000:2100], atol=0.5)


def test_it_learns_a_persistent_price_regime_the_calendar_forecast_lets_fade(
    training: Problem,
) -> None:
    # Prices that jump to another level every four weeks and stay there.
    rng = np.random.default_rng(3)
    months = -(-training.n_steps // (28 * DAY))

    def regimes(n: int) -> np.ndarray:
        level = rng.choice([-20.0, 0.0, 25.0], size=(n, months))
        noise = rng.normal(0.0, 3.0, (n, training.n_steps))
        return 50.0 + np.repeat(level, 28 * DAY, axis=1)[:, : training.n_steps] + noise

    def problem(n: int) -> Problem:
        return Problem.create(
            training.cascade,
            regimes(n),
            training.inflow_m3s[:n],
            training.dt_s,
            training.start_time,
        )

    fit_on, test_on = problem(4), problem(3)
    state = StateForecast.fit(fit_on, 7 * DAY).bind(test_on)
    calendar = CalendarForecast.fit(fit_on).bind(test_on)
    errors: dict[str, list[float]] = {"state": [], "calendar": []}
    for s in range(test_on.n_scenarios):
        for t in range(0, test_on.n_steps - 7 * DAY, DAY):
            truth = test_on.price_eur_mwh[s, t + 6 * DAY : t + 7 * DAY]
            for name, forecast in (("state", state), ("calendar", calendar)):
                guess = forecast(s, t, t + 7 * DAY)[0][6 * DAY :]
                errors[name].append(float(((guess - truth) ** 2).mean()))
    # A week ahead the regime has most likely not changed: the state forecast keeps it.
    assert np.mean(errors["state"]) < 0.7 * np.mean(errors["calendar"])


def test_it_forecasts_the_demo_better_than_the_calendar_forecast_and_fast(
    training: Problem, held_out: Problem, fitted: StateForecast
) -> None:
    state = fitted.bind(held_out)
    calendar = CalendarForecast.fit(training).bind(held_out)
    error = {"state": np.zeros(2), "calendar": np.zeros(2)}
    for s in range(held_out.n_scenarios):
        for t in range(0, held_out.n_steps - 7 * DAY, DAY):
            truth = (
                held_out.price_eur_mwh[s, t : t + 7 * DAY],
                held_out.inflow_m3s[s, t : t + 7 * DAY],
            )
            for name, forecast in (("state", state), ("calendar", calendar)):
                guess = forecast(s, t, t + 7 * DAY)
                error[name] += [((g - x) ** 2).mean() for g, x in zip(guess, truth, strict=True)]
    assert (error["state"] < error["calendar"]).all()
    # The planner asks once a simulated day, thousands of times: a call costs microseconds.
    started = time.perf_counter()
    for t in range(0, 2000, 2):
        state(0, t, t + 28 * DAY)
    assert (time.perf_counter() - started) / 1000 < 1e-3


def test_a_planner_on_it_is_a_policy_that_earns_less_than_one_that_knows(
    training: Problem, held_out: Problem, fitted: StateForecast
) -> None:
    from hydrorl.baselines import water_values
    from hydrorl.baselines.foresight import limited_foresight

    short = held_out.horizon(8 * 7 * DAY)
    values = water_values(training)
    knows = limited_foresight(short, 0, values, 7 * DAY, DAY)
    guesses = limited_foresight(short, 0, values, 7 * DAY, DAY, forecast=fitted.bind(short))
    assert 0.9 * knows.total_eur < guesses.total_eur < knows.total_eur
