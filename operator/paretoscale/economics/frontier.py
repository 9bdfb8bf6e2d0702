"""The accuracy-cost Pareto frontier and the marginal cost of quality along it.

A point dominates another when it costs no more and scores no less, and is strictly better in
one of the two. The frontier is the set of points no other point dominates (the seed's
build_pareto_frontier, made exact for ties: equal points are both kept).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


def dominates(cost_a: float, quality_a: float, cost_b: float, quality_b: float) -> bool:
    """a dominates b: cost_a <= cost_b and quality_a >= quality_b, one of them strict."""
    return (
        cost_a <= cost_b and quality_a >= quality_b and (cost_a < cost_b or quality_a > quality_b)
    )


def pareto_mask(costs: Sequence[float], qualities: Sequence[float]) -> list[bool]:
    """For each point, whether it is on the frontier (no other point dominates it).

    Sort by cost, then quality descending; a point is on the frontier when its quality beats the
    best quality of every strictly cheaper point and it is the best quality at its own cost.
    O(n log n). Raises ValueError for a NaN or infinite cost or quality (a NaN compares
    unequal to itself, so it has no place on the frontier) or sequences of unequal length.
    """
    if len(costs) != len(qualities):
        raise ValueError(f"{len(costs)} costs but {len(qualities)} qualities")
    for i, (c, q) in enumerate(zip(costs, qualities, strict=True)):
        if not (math.isfinite(c) and math.isfinite(q)):
            raise ValueError(f"point {i}: cost {c} and quality {q} must be finite numbers")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -qualities[i]))
    mask = [False] * len(costs)
    best_cheaper = float("-inf")  # best quality among points strictly cheaper
    i = 0
    while i < len(order):
        j = i
        cost = costs[order[i]]
        while j < len(order) and costs[order[j]] == cost:
            j += 1
        top = qualities[order[i]]  # best quality at this cost (sorted descending)
        for k in range(i, j):
            q = qualities[order[k]]
            mask[order[k]] = q == top and q > best_cheaper
        best_cheaper = max(best_cheaper, top)
        i = j
    return mask


@dataclass(frozen=True)
class MarginalStep:
    """Going from one frontier point to the next more expensive one."""

    from_name: str
    to_name: str
    quality_points: float  # gain in points (0.01 of score)
    usd_per_1k_requests_per_point: float


def marginal_costs(
    names: Sequence[str], costs_per_1k: Sequence[float], qualities: Sequence[float]
) -> list[MarginalStep]:
    """Marginal cost of each quality point along the frontier [USD per 1k requests per point].

    For consecutive frontier points a -> b (by cost): (cost_b - cost_a) / ((q_b - q_a) x 100).
    Rising values along the frontier are the seed's diminishing returns.
    """
    mask = pareto_mask(costs_per_1k, qualities)
    idx = sorted(
        (i for i, on in enumerate(mask) if on), key=lambda i: (costs_per_1k[i], qualities[i])
    )
    steps: list[MarginalStep] = []
    for a, b in itertools.pairwise(idx):
        points = (qualities[b] - qualities[a]) * 100.0
        if points <= 0:
            continue
        steps.append(
            MarginalStep(names[a], names[b], points, (costs_per_1k[b] - costs_per_1k[a]) / points)
        )
    return steps
