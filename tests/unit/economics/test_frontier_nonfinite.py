"""The frontier refuses what has no place on it: NaN or infinite costs and qualities."""

from __future__ import annotations

import math

import pytest

from paretoscale.economics.frontier import marginal_costs, pareto_mask

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("costs", "quals"),
    [
        ([1.0, NAN, 3.0], [0.7, 0.8, 0.9]),  # looped forever before: NaN != NaN
        ([NAN], [0.5]),
        ([1.0, 2.0], [0.7, NAN]),
        ([1.0, INF], [0.7, 0.8]),
        ([1.0, 2.0], [-INF, 0.8]),
    ],
    ids=["nan-cost", "only-nan", "nan-quality", "inf-cost", "inf-quality"],
)
def test_non_finite_points_raise(costs: list[float], quals: list[float]) -> None:
    with pytest.raises(ValueError, match="must be finite numbers"):
        pareto_mask(costs, quals)
    with pytest.raises(ValueError, match="must be finite numbers"):
        marginal_costs([str(i) for i in range(len(costs))], costs, quals)


def test_unequal_lengths_raise() -> None:
    with pytest.raises(ValueError, match="2 costs but 1 qualities"):
        pareto_mask([1.0, 2.0], [0.5])


def test_empty_is_empty() -> None:
    assert pareto_mask([], []) == []
