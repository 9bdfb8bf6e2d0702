"""The economics seed's worked examples, reproduced with its exact inputs and figures."""

from __future__ import annotations

import pytest

from paretoscale.economics.cost import flop_proxy_cost_per_request_usd
from paretoscale.economics.frontier import pareto_mask
from paretoscale.economics.value import (
    accuracy_improvement_roi,
    calibration_factor,
    distillation_economics,
)

# name, parameters, FLOPs per inference, offline accuracy (the seed's rec-* family)
REC_MODELS = [
    ("rec-tiny", 50_000_000, 4e9, 0.72),
    ("rec-small", 150_000_000, 12e9, 0.79),
    ("rec-medium", 500_000_000, 40e9, 0.83),
    ("rec-large", 1_500_000_000, 120e9, 0.855),
    ("rec-xlarge", 7_000_000_000, 560e9, 0.870),
]


@pytest.mark.parametrize(
    ("name", "flops", "expected_usd"),
    [
        # flops / (312e12 * 0.8) s * 3.06 $/h / 3600 * 1.30
        ("rec-tiny", 4e9, 1.7708333e-8),
        ("rec-small", 12e9, 5.3125e-8),
        ("rec-medium", 40e9, 1.7708333e-7),
        ("rec-large", 120e9, 5.3125e-7),
        ("rec-xlarge", 560e9, 2.4791667e-6),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_rec_cost_per_request(name: str, flops: float, expected_usd: float) -> None:
    assert flop_proxy_cost_per_request_usd(flops) == pytest.approx(expected_usd, rel=1e-6)


def test_rec_frontier_keeps_all_five() -> None:
    # Cost rises with accuracy across the family, so none is dominated.
    costs = [flop_proxy_cost_per_request_usd(m[2]) for m in REC_MODELS]
    assert pareto_mask(costs, [m[3] for m in REC_MODELS]) == [True] * 5


def test_rec_frontier_drops_a_dominated_point() -> None:
    costs = [flop_proxy_cost_per_request_usd(m[2]) for m in REC_MODELS] + [1e-6]
    quals = [m[3] for m in REC_MODELS] + [0.80]  # costlier than rec-large, worse than rec-medium
    assert pareto_mask(costs, quals) == [True] * 5 + [False]


def test_medium_to_large_roi() -> None:
    medium, large = REC_MODELS[2], REC_MODELS[3]
    roi = accuracy_improvement_roi(
        current_accuracy=medium[3],
        current_cost_per_request_usd=flop_proxy_cost_per_request_usd(medium[2]),
        new_accuracy=large[3],
        new_cost_per_request_usd=flop_proxy_cost_per_request_usd(large[2]),
        daily_request_volume=50_000_000,
        revenue_per_ctr_point_usd_per_month=10_000,
        calibration=0.30,
    )
    assert roi.offline_accuracy_delta == pytest.approx(0.025)
    assert roi.expected_online_lift_pct == pytest.approx(0.75)
    assert roi.daily_revenue_uplift_usd == pytest.approx(250.0)
    assert roi.daily_revenue_uplift_usd * 30 == pytest.approx(7_500.0)  # monthly uplift
    assert roi.daily_cost_increase_usd == pytest.approx(17.708333, rel=1e-6)
    assert roi.monthly_net_impact_usd == pytest.approx(6_968.75, rel=1e-6)
    assert roi.recommendation == "upgrade"
    assert roi.break_even_daily_requests == pytest.approx(250 / 3.5416667e-7, rel=1e-6)


def test_distillation_example() -> None:
    r = distillation_economics(
        teacher_accuracy=0.87,
        student_accuracy_from_scratch=0.80,
        student_accuracy_distilled=0.845,
        daily_requests=10_000_000,
        teacher_cost_per_request_usd=0.0005,
        student_cost_per_request_usd=0.00009,
        training_cost_usd=8_000,
    )
    assert f"{r.inference_cost_reduction:.0%}" == "82%"
    assert r.quality_gap_without_distillation == pytest.approx(0.07)
    assert r.quality_gap_with_distillation == pytest.approx(0.025)
    assert r.daily_savings_usd == pytest.approx(4_100.0)
    assert r.monthly_savings_usd == pytest.approx(123_000.0)
    assert f"{r.payback_days:.0f}" == "2"
    assert r.payback_days == pytest.approx(1.9512195, rel=1e-6)
    assert r.one_year_net_savings_usd == pytest.approx(1_488_500.0)


@pytest.mark.parametrize(
    ("tests", "expected"),
    [
        ([], 0.30),
        ([(0.02, 0.006)], 0.30),
        ([(0.02, 0.006), (0.04, 0.004), (0.01, 0.005), (0.03, 0.012)], 0.25),
        ([(0.0, 0.01), (0.02, 0.004)], 0.20),  # offline 0 is skipped
    ],
    ids=["default", "issue-example", "four-tests-p25", "skips-zero-offline"],
)
def test_calibration_factor(tests: list[tuple[float, float]], expected: float) -> None:
    assert calibration_factor(tests) == pytest.approx(expected)
