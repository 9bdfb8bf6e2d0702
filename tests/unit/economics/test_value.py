from __future__ import annotations

import math

import pytest

from paretoscale.economics.cost import cost_per_1k_requests_usd, hourly_cost_usd
from paretoscale.economics.value import payback_days, value_per_hour_usd


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
