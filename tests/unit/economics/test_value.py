from __future__ import annotations

import math

import pytest

from paretoscale.economics.cost import cost_per_1k_requests_usd, hourly_cost_usd
from paretoscale.economics.value import (
    DEFAULT_CALIBRATION,
    MIN_CALIBRATION,
    calibration_factor,
    calibration_from_ab_tests,
    payback_days,
    value_per_hour_usd,
)


def test_value_per_hour_formula() -> None:
    # 10 req/s = 36k req/h; 81.2 points x $0.40 per 1k per point x 0.30 = $9.744 per 1k
    assert value_per_hour_usd(10, 0.40, 0.812, 0.30) == pytest.approx(36 * 9.744)


def test_costs() -> None:
    assert hourly_cost_usd(3, 2, 6.88) == pytest.approx(41.28)
    assert cost_per_1k_requests_usd(6.88, 10) == pytest.approx(6.88 / 36)
    assert cost_per_1k_requests_usd(6.88, 0) is None


def test_payback() -> None:
    assert payback_days(8000, 4100) == pytest.approx(1.9512, rel=1e-4)
    assert math.isinf(payback_days(8000, 0))


@pytest.mark.parametrize(
    ("tests", "expected", "clamped"),
    [
        ([(0.02, 0.006)], 0.3, False),
        ([(0.02, -0.01), (0.02, -0.004)], MIN_CALIBRATION, True),  # negative online deltas
        ([(0.01, 0.03), (0.01, 0.05)], 1.0, True),  # online gains above offline
        ([(0.0, 0.01)], DEFAULT_CALIBRATION, False),  # no test with an offline gain
    ],
)
def test_calibration_from_ab_tests_is_clamped_with_a_warning(
    tests: list[tuple[float, float]], expected: float, clamped: bool
) -> None:
    value, warning = calibration_from_ab_tests(tests)
    assert value == pytest.approx(expected) and 0 < value <= 1
    assert calibration_factor(tests) == value
    assert (warning is not None) == clamped
    if warning:
        assert "outside (0, 1]" in warning
