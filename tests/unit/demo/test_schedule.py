"""The compressed day: which day of the series, its scaling, the wall/day clock, the rate
and the price at each moment, and the timings fitted to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paretoscale.api.manifest import parse_manifests
from paretoscale.demo.schedule import (
    DAY_S,
    NOON_S,
    STARTUP_DELAY_ENV,
    PricePlan,
    clock,
    day_of_series,
    demo_manifest,
    timings_for,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


def series(days: int = 2) -> tuple[list[float], list[float]]:
    """Ten-minute windows; day d's window i has rate 100 d + i (so day 1 peaks at 243)."""
    starts = [600.0 * k for k in range(144 * days)]
    rates = [100.0 * (k // 144) + (k % 144) for k in range(144 * days)]
    return starts, rates


def test_a_day_is_144_windows_scaled_to_the_peak_and_compressed() -> None:
    day = day_of_series(*series(), day=1, peak_rps=24.3, day_wall_s=300)
    assert len(day.rates_rps) == 144 and day.window_start_s[0] == 0.0
    assert day.peak_rps == pytest.approx(24.3)
    assert day.rates_rps[0] == pytest.approx(100 * 24.3 / 243)  # day 1 starts at rate 100
    assert day.compression == pytest.approx(288.0)  # a 5-minute day: x288
    assert day.window_s == 600.0


@pytest.mark.parametrize(
    ("wall_s", "day_s", "window", "hhmm"),
    [
        (0.0, 0.0, 0, "00:00"),
        (2.0, 576.0, 0, "00:09"),  # 2 wall s = 9.6 day-minutes, still the first window
        (2.1, 604.8, 1, "00:10"),
        (150.0, NOON_S, 72, "12:00"),
        (299.9, 86371.2, 143, "23:59"),
    ],
    ids=["start", "end-of-first-window", "second-window", "noon", "last-window"],
)
def test_wall_seconds_map_to_day_time_and_windows(
    wall_s: float, day_s: float, window: int, hhmm: str
) -> None:
    day = day_of_series(*series(), day=0, peak_rps=143, day_wall_s=300)  # rate = window index
    assert day.day_s(wall_s) == pytest.approx(day_s)
    assert day.rate_at(wall_s) == pytest.approx(window)
    assert clock(day.day_s(wall_s)) == hhmm
    assert day.wall_s(day.day_s(wall_s)) == pytest.approx(wall_s)


def test_outside_the_day_nothing_is_offered_and_the_clock_stops() -> None:
    day = day_of_series(*series(), day=0, peak_rps=10, day_wall_s=60)
    assert day.rate_at(-1) == 0.0 and day.rate_at(60) == 0.0
    assert day.day_s(61) == DAY_S and clock(DAY_S) == "24:00"


def test_expected_requests_are_rate_times_window_in_wall_time() -> None:
    starts, _ = series(1)
    day = day_of_series(starts, [5.0] * 144, day=0, peak_rps=10, day_wall_s=120)
    assert day.expected_requests() == pytest.approx(10 * 120)  # flat at the peak all day


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"day": 2}, "day 2 is not in the series: it holds 2 whole day"),
        ({"day": -1}, "day -1 is not in the series"),
        ({"peak_rps": 0}, "the peak must be > 0"),
        ({"day_wall_s": 0}, "the day must last > 0 s"),
    ],
    ids=["past-the-end", "negative", "no-peak", "no-time"],
)
def test_bad_days_say_what_to_change(kwargs: dict[str, float], message: str) -> None:
    args = {"day": 0, "peak_rps": 25.0, "day_wall_s": 300.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        day_of_series(*series(), **args)  # type: ignore[arg-type]


def test_other_window_lengths_are_refused() -> None:
    starts = [300.0 * k for k in range(144)]
    with pytest.raises(ValueError, match="ten-minute windows"):
        day_of_series(starts, [1.0] * 144, day=0, peak_rps=1, day_wall_s=60)


def test_the_h100_price_is_cut_at_noon_and_the_others_hold() -> None:
    plan = PricePlan({"L40S": 1.86}, "H100", 12.29, 6.88)
    assert plan.changes
    assert plan.at(0) == {"L40S": 1.86, "H100": 12.29}
    assert plan.at(NOON_S - 1)["H100"] == 12.29
    assert plan.at(NOON_S) == {"L40S": 1.86, "H100": 6.88}
    assert not PricePlan({}, "H100", 6.88, 6.88).changes


@pytest.mark.parametrize(
    ("day_wall_s", "dwell", "stabilization", "window"),
    [(300, 60, 30, "1m"), (60, 12, 6, "20s"), (600, 120, 60, "2m"), (180, 36, 18, "36s")],
    ids=["5-min", "1-min", "10-min", "3-min"],
)
def test_timings_last_as_long_in_day_time_whatever_the_compression(
    day_wall_s: float, dwell: int, stabilization: int, window: str
) -> None:
    t = timings_for(day_wall_s)
    assert (t.min_dwell_s, t.scale_down_stabilization_s, t.rate_window) == (
        dwell,
        stabilization,
        window,
    )
    assert t.verify_s == 5 and t.drain_grace_s == 5 and t.ready_timeout_s == 120


def test_the_example_gets_the_days_timings_and_stays_valid() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    before = yaml.safe_dump(doc)
    t = timings_for(300)
    out = demo_manifest(doc, "demo", t, expected_rps=10.6, startup_delay_s=3)
    assert yaml.safe_dump(doc) == before  # the input is not changed
    spec = parse_manifests(yaml.safe_dump(out), "demo")[0]
    assert spec.metadata.namespace == "demo"
    r, traffic = spec.spec.rollout, spec.spec.traffic
    assert (r.min_dwell_seconds, r.verify_seconds, r.drain_grace_seconds) == (60, 5, 5)
    assert r.ready_timeout_seconds == 120 and r.switch_margin == 0.05  # kept from the example
    assert traffic.scale_down_stabilization_seconds == 30
    assert traffic.expected_requests_per_second == 10.6 and traffic.max_replicas == 16
    assert {v.startup_seconds for v in spec.spec.variants} == {t.startup_s}
    assert spec.spec.template.env == [{"name": STARTUP_DELAY_ENV, "value": "3"}]
    again = demo_manifest(out, "demo", t, 10.6, 2)  # replaces its own env entry
    assert again["spec"]["template"]["env"] == [{"name": STARTUP_DELAY_ENV, "value": "2"}]
