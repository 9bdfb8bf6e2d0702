"""What quality is worth: value per hour, ROI of an upgrade, distillation payback, calibration.

Quality points are hundredths of the offline score (0.812 -> 81.2 points). Only a share of an
offline gain shows online (the calibration factor, seed default 0.30), estimated
conservatively as the 25th percentile of online/offline gains over past A/B tests, clamped
to (0, 1] with a warning (a negative online delta would make quality worth less than none).
The seed's worked examples are reproduced exactly by these functions (tests/unit/economics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CALIBRATION = 0.30
# A calibration outside (0, 1] is clamped into [MIN_CALIBRATION, 1]: at 0 or below, quality
# would be worth nothing or less (the objective flips to the worst variant); above 1, an
# offline gain would show online more than fully.
MIN_CALIBRATION = 0.01


def calibration_factor(ab_tests: Sequence[tuple[float, float]]) -> float:
    """25th percentile of online_delta / offline_delta over tests with offline_delta > 0,
    clamped to [MIN_CALIBRATION, 1] (calibration_from_ab_tests says when it was).

    (offline_delta, online_delta) pairs; DEFAULT_CALIBRATION (0.30) when there are none.
    """
    return calibration_from_ab_tests(ab_tests)[0]


def calibration_from_ab_tests(
    ab_tests: Sequence[tuple[float, float]],
) -> tuple[float, str | None]:
    """The calibration factor of calibration_factor(), and a warning in words when the 25th
    percentile fell outside (0, 1] and was clamped (None otherwise)."""
    ratios = [on / off for off, on in ab_tests if off > 0 and math.isfinite(on / off)]
    if not ratios:
        return DEFAULT_CALIBRATION, None
    raw = float(np.percentile(ratios, 25))
    if MIN_CALIBRATION <= raw <= 1.0:
        return raw, None
    clamped = min(1.0, max(MIN_CALIBRATION, raw))
    return clamped, (
        f"calibration from abTests is {raw:.3g} (25th percentile of online/offline), outside "
        f"(0, 1]: using {clamped:g}"
    )


def value_per_hour_usd(
    requests_per_s: float, usd_per_1k_per_point: float, quality: float, calibration: float
) -> float:
    """value [USD/h] = rate [req/s] x 3.6 [1k req/h per req/s] x USD per 1k per point
    x quality points (quality x 100) x calibration."""
    return requests_per_s * 3.6 * usd_per_1k_per_point * quality * 100.0 * calibration


def offline_to_online_lift(offline_delta: float, calibration: float = DEFAULT_CALIBRATION) -> float:
    """Expected online lift = offline gain x calibration factor (seed)."""
    return offline_delta * calibration


@dataclass(frozen=True)
class UpgradeRoi:
    offline_accuracy_delta: float
    expected_online_lift_pct: float
    daily_revenue_uplift_usd: float
    daily_cost_increase_usd: float
    monthly_net_impact_usd: float
    recommendation: str  # "upgrade" | "keep current"
    break_even_daily_requests: float


def accuracy_improvement_roi(
    current_accuracy: float,
    current_cost_per_request_usd: float,
    new_accuracy: float,
    new_cost_per_request_usd: float,
    daily_request_volume: float,
    revenue_per_ctr_point_usd_per_month: float,
    calibration: float = DEFAULT_CALIBRATION,
) -> UpgradeRoi:
    """ROI of upgrading to a more accurate model (the seed's accuracy_improvement_roi).

    lift = delta x calibration; daily uplift = lift x 100 x revenue per point per month / 30;
    daily cost increase = (new - current cost per request) x daily requests;
    monthly net = (daily uplift - daily cost increase) x 30; upgrade when monthly net > 0;
    break-even daily requests = daily uplift / cost increase per request.
    """
    delta = new_accuracy - current_accuracy
    lift = offline_to_online_lift(delta, calibration)
    daily_uplift = lift * 100 * revenue_per_ctr_point_usd_per_month / 30
    per_request_increase = new_cost_per_request_usd - current_cost_per_request_usd
    daily_cost = per_request_increase * daily_request_volume
    monthly_net = (daily_uplift - daily_cost) * 30
    return UpgradeRoi(
        offline_accuracy_delta=delta,
        expected_online_lift_pct=lift * 100,
        daily_revenue_uplift_usd=daily_uplift,
        daily_cost_increase_usd=daily_cost,
        monthly_net_impact_usd=monthly_net,
        recommendation="upgrade" if monthly_net > 0 else "keep current",
        break_even_daily_requests=(
            daily_uplift / per_request_increase if per_request_increase > 0 else float("inf")
        ),
    )


@dataclass(frozen=True)
class DistillationEconomics:
    inference_cost_reduction: float
    quality_gap_without_distillation: float
    quality_gap_with_distillation: float
    quality_recovered: float
    daily_savings_usd: float
    monthly_savings_usd: float
    payback_days: float
    one_year_net_savings_usd: float


def distillation_economics(
    teacher_accuracy: float,
    student_accuracy_from_scratch: float,
    student_accuracy_distilled: float,
    daily_requests: float,
    teacher_cost_per_request_usd: float,
    student_cost_per_request_usd: float,
    training_cost_usd: float,
) -> DistillationEconomics:
    """The seed's distillation_economics: savings and payback of a one-time model change.

    daily savings = (teacher - student cost per request) x daily requests;
    payback [days] = one-time cost / daily savings (inf when nothing is saved);
    1-year net = daily savings x 365 - one-time cost.
    """
    gap_scratch = teacher_accuracy - student_accuracy_from_scratch
    gap_distilled = teacher_accuracy - student_accuracy_distilled
    daily_savings = (teacher_cost_per_request_usd - student_cost_per_request_usd) * daily_requests
    return DistillationEconomics(
        inference_cost_reduction=1 - student_cost_per_request_usd / teacher_cost_per_request_usd,
        quality_gap_without_distillation=gap_scratch,
        quality_gap_with_distillation=gap_distilled,
        quality_recovered=gap_scratch - gap_distilled,
        daily_savings_usd=daily_savings,
        monthly_savings_usd=daily_savings * 30,
        payback_days=payback_days(training_cost_usd, daily_savings),
        one_year_net_savings_usd=daily_savings * 365 - training_cost_usd,
    )


def payback_days(one_time_cost_usd: float, daily_gain_usd: float) -> float:
    """Days until a one-time cost is earned back: cost / daily gain; inf when nothing is gained."""
    if daily_gain_usd <= 0:
        return float("inf")
    return one_time_cost_usd / daily_gain_usd
