from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretoscale.economics.frontier import dominates, marginal_costs, pareto_mask

points = st.lists(
    st.tuples(st.integers(1, 20).map(float), st.integers(50, 90).map(lambda q: q / 100)),
    min_size=1,
    max_size=12,
)


@given(points)
def test_frontier_is_exactly_the_undominated_set(pts: list[tuple[float, float]]) -> None:
    costs = [c for c, _ in pts]
    quals = [q for _, q in pts]
    mask = pareto_mask(costs, quals)
    for i, on in enumerate(mask):
        dominated = any(dominates(costs[j], quals[j], costs[i], quals[i]) for j in range(len(pts)))
        assert on == (not dominated)
    assert any(mask)


@pytest.mark.parametrize(
    ("costs", "quals", "expected"),
    [
        ([1, 2, 3], [0.7, 0.8, 0.9], [True, True, True]),
        ([1, 2, 3], [0.9, 0.8, 0.7], [True, False, False]),
        ([1, 1], [0.8, 0.8], [True, True]),  # equal points: neither dominates
        ([1, 1], [0.8, 0.7], [True, False]),
        ([2, 1], [0.8, 0.8], [False, True]),
    ],
    ids=["rising", "falling", "duplicates", "same-cost", "same-quality"],
)
def test_pareto_mask_table(costs: list[float], quals: list[float], expected: list[bool]) -> None:
    assert pareto_mask(costs, quals) == expected


def test_marginal_cost_rises_with_diminishing_returns() -> None:
    steps = marginal_costs(["a", "b", "c", "d"], [0.1, 0.2, 0.6, 0.5], [0.70, 0.80, 0.85, 0.90])
    assert [(s.from_name, s.to_name) for s in steps] == [("a", "b"), ("b", "d")]
    assert steps[0].usd_per_1k_requests_per_point == pytest.approx(0.01)
    assert steps[1].usd_per_1k_requests_per_point == pytest.approx(0.03)
