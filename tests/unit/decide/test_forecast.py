"""The short-horizon rate forecast: Holt's trend on a ramp, the rate itself where it scores
better, the same hour of earlier days once a day is known, an error margin that grows with
misses, and a memory of bounded size."""

from __future__ import annotations

import math
import random

import pytest

from paretoscale.decide.forecast import (
    DAY_S,
    SLOT_S,
    SLOTS_PER_DAY,
    ForecastMemory,
    observe,
    path,
    predict,
    trend_chosen,
    upper,
)

TICK = 30.0


def run(rate_at: object, seconds: float, horizon: float, start: float = 0.0) -> ForecastMemory:
    m = ForecastMemory()
    t = start
    while t < start + seconds:
        m = observe(m, t, rate_at(t), horizon)  # type: ignore[operator]
        t += TICK
    return m


def test_nothing_before_the_first_observation() -> None:
    assert predict(ForecastMemory(), 600) is None and upper(ForecastMemory(), 600) is None
    m = observe(ForecastMemory(), 0.0, None, 600)
    assert m == ForecastMemory()  # metrics unavailable: nothing learned


def test_holt_follows_a_ramp_ahead() -> None:
    def ramp(t: float) -> float:
        return 1.0 + t / 600.0  # +1 req/s every 10 minutes

    m = run(ramp, 3 * 3600, 630)
    assert m.at is not None
    expected = ramp(m.at + 630)
    got = predict(m, 630)
    assert got is not None and got == pytest.approx(expected, rel=0.03)
    assert got > ramp(m.at)  # ahead of the current rate


def test_a_load_that_jumps_and_stays_is_forecast_by_the_rate_itself() -> None:
    """A load that moves to a new level every 15 minutes (2-8 req/s) and stays there: the
    trend extrapolates each jump over the horizon and trails it, and scores worse than the
    rate read now, so the forecast in use is the rate. On the smooth ramp above the trend
    scores better and is the one used."""
    rng = random.Random(7)
    levels = [rng.uniform(2.0, 8.0) for _ in range(30)]
    m = run(lambda t: levels[int(t // 900)] * rng.uniform(0.97, 1.03), 6 * 3600, 600)
    assert m.error_rate is not None and m.error_trend is not None
    assert m.error_rate < m.error_trend and not trend_chosen(m)
    assert predict(m, 600) == pytest.approx(m.rate) and m.rate != m.level
    ramp = run(lambda t: 1.0 + t / 600.0, 3 * 3600, 630)
    assert trend_chosen(ramp)


def test_flat_load_forecasts_itself_and_scores_near_zero_error() -> None:
    m = run(lambda t: 5.0, 3600, 300)
    assert predict(m, 300) == pytest.approx(5.0)
    assert m.mape is not None and m.mape < 1e-9
    assert m.margin == 1.0  # never below the forecast


def test_the_same_hour_of_yesterday_shapes_the_forecast() -> None:
    def day(t: float) -> float:  # a morning ramp: 2 req/s at night, 10 by 10:00
        h = (t % DAY_S) / 3600
        return 2.0 if h < 8 else 10.0 if h >= 10 else 2.0 + 4.0 * (h - 8)

    m = run(day, DAY_S + 8 * 3600, 600)  # one day and the night before the second ramp
    assert m.at is not None and (m.at % DAY_S) / 3600 == pytest.approx(8, abs=0.01)
    got = predict(m, 1800)
    # Holt on a flat night says 2; the profile knows the ramp comes
    assert got is not None and got > 3.0
    assert sum(x is not None for x in m.profile) == SLOTS_PER_DAY


def test_the_margin_grows_when_the_load_outruns_the_forecast() -> None:
    def steps(t: float) -> float:  # a jump every 20 minutes: forecasts keep falling short
        return 1.0 + 2.0 * math.floor(t / 1200)

    m = run(steps, 4 * 3600, 600)
    assert m.margin > 1.05  # one step up per forecast that fell short
    p, u = predict(m, 600), upper(m, 600)
    assert p is not None and u is not None and u == pytest.approx(p * m.margin)
    assert m.errors > 0 and m.mape is not None and m.mape > 0.05


def test_memory_size_is_bounded() -> None:
    m = run(lambda t: 3.0 + math.sin(t / 5000), 3 * DAY_S, 600)
    assert len(m.profile) == SLOTS_PER_DAY
    assert m.due_at is not None and m.due_at <= (m.at or 0) + 600


def test_the_path_over_the_next_hours_follows_yesterday_and_needs_a_day() -> None:
    def day(t: float) -> float:  # 2 req/s at night, 10 from 10:00
        h = (t % DAY_S) / 3600
        return 2.0 if h < 8 else 10.0 if h >= 10 else 2.0 + 4.0 * (h - 8)

    assert path(run(day, 6 * 3600, 600), 4 * 3600) == ()  # no day known: no path
    m = run(day, DAY_S + 7 * 3600, 600)  # at 07:00 of day two
    ahead = path(m, 4 * 3600)
    assert len(ahead) == math.ceil(4 * 3600 / SLOT_S)
    assert ahead[0] == pytest.approx(2.0, rel=0.1)  # 07:30: still night
    assert ahead[-1] == pytest.approx(10.0, rel=0.1)  # 11:00: the day's level
    assert list(ahead) == sorted(ahead)
