from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretoscale.economics.capacity import (
    capacity_at_slo_rps,
    corrected_capacity_factor,
    latency_at_rate_s,
    replicas_for_rate,
)

RATES = [2.0, 8.0, 14.0]
LATS = [3.1, 5.5, 9.8]  # the bf16 profile


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        (3.0, 0.0),  # first point already misses: infeasible
        (3.1, 2.0),
        (5.5, 8.0),
        (8.0, 8.0 + 2.5 / 4.3 * 6.0),  # inside the second segment
        (9.8, 14.0),
        (50.0, 14.0),  # beyond the last point: not extrapolated
    ],
    ids=["below-first", "at-first", "at-middle", "interpolated", "at-last", "no-extrapolation"],
)
def test_capacity_at_slo(slo: float, expected: float) -> None:
    assert capacity_at_slo_rps(RATES, LATS, slo) == pytest.approx(expected)


def test_non_monotone_profile_uses_envelope() -> None:
    # A dip in measured latency does not create extra capacity.
    assert capacity_at_slo_rps([1, 2, 3], [2.0, 1.5, 4.0], 1.8) == 0.0
    assert capacity_at_slo_rps([1, 2, 3], [2.0, 1.5, 4.0], 3.0) == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("rate", "cap", "util", "lo", "hi", "expected"),
    [
        (0, 10, 0.8, 1, 16, 1),
        (0, 10, 0.8, 0, 16, 0),
        (8, 10, 0.8, 1, 16, 1),
        (8.01, 10, 0.8, 1, 16, 2),
        (100, 10, 0.8, 1, 12, None),
        (100, 10, 0.8, 1, 13, 13),
        (1, 0, 0.8, 1, 16, None),
        (0, 0, 0.8, 1, 16, None),
        (0.1, 10, 0.8, 3, 16, 3),
    ],
    ids=[
        "idle",
        "idle-scale-to-zero",
        "exact",
        "just-over",
        "over-max",
        "at-max",
        "no-capacity",
        "no-capacity-idle",
        "min",
    ],
)
def test_replicas_for_rate(
    rate: float, cap: float, util: float, lo: int, hi: int, expected: int | None
) -> None:
    assert replicas_for_rate(rate, cap, util, lo, hi) == expected


@given(
    rate=st.floats(0.01, 1e4),
    cap=st.floats(0.01, 1e3),
    util=st.floats(0.05, 1.0),
    lo=st.integers(0, 5),
)
def test_replicas_cover_the_rate(rate: float, cap: float, util: float, lo: int) -> None:
    n = replicas_for_rate(rate, cap, util, lo, 10**9)
    assert n is not None
    assert n * cap * util >= rate * (1 - 1e-9)
    assert n == lo or (n - 1) * cap * util < rate * (1 + 1e-9)


def test_live_correction_factor() -> None:
    # A replica at 4 req/s shows 5.5 s, which the profile predicts at 8 req/s: half as fast.
    assert corrected_capacity_factor(RATES, LATS, 4.0, 5.5) == pytest.approx(0.5)
    assert corrected_capacity_factor(RATES, LATS, 4.0, 100.0) is None  # outside the profile
    assert corrected_capacity_factor(RATES, LATS, 0.0, 5.5) is None
    assert latency_at_rate_s(RATES, LATS, 20.0) is None
    assert latency_at_rate_s(RATES, LATS, 5.0) == pytest.approx(4.3)
    assert not math.isnan(latency_at_rate_s(RATES, LATS, 1.0) or math.nan)
