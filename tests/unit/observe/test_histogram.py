"""histogram_quantile: hand-computed cases, Prometheus's special cases, and Prometheus itself.

The last test compares with answers the real Prometheus gave on the same bucket rates
(recorded by tests/e2e/test_observe.py into data/recorded_tick.json).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretoscale.observe.histogram import histogram_quantile
from paretoscale.observe.snapshot import build_snapshot

INF = math.inf
# vLLM 0.33 e2e_request_latency_seconds edges (DESIGN.md).
E2E = (
    0.3,
    0.5,
    0.8,
    1,
    1.5,
    2,
    2.5,
    5,
    10,
    15,
    20,
    30,
    40,
    50,
    60,
    120,
    240,
    480,
    960,
    1920,
    7680,
    INF,
)
RECORDED = Path(__file__).parent / "data" / "recorded_tick.json"


def e2e_counts(points: dict[float, float], total: float) -> list[float]:
    """Cumulative counts on the E2E edges from a few (edge -> count) points; `total` at +Inf."""
    out, c = [], 0.0
    for e in E2E[:-1]:
        c = points.get(e, c)
        out.append(c)
    return [*out, total]


# 100 requests/s: 40 <= 1 s, 70 <= 1.5 s, 90 <= 2 s, 95 <= 2.5 s, 99 <= 5 s, all <= 7680 s.
COUNTS = e2e_counts({0.5: 10, 0.8: 20, 1: 40, 1.5: 70, 2: 90, 2.5: 95, 5: 99, 7680: 100}, 100)


@pytest.mark.parametrize(
    ("q", "value", "edges"),
    [
        (0.05, 0.3 + 0.2 * (5 - 0) / 10, (0.3, 0.5)),  # rank 5 in (0.3, 0.5]: 0 below, 10 inside
        (0.40, 1.0, (0.8, 1.0)),  # rank exactly at a bucket's count: its upper edge
        (0.50, 1.0 + 0.5 * (50 - 40) / 30, (1.0, 1.5)),
        (0.95, 2.5, (2.0, 2.5)),
        (0.97, 2.5 + 2.5 * (97 - 95) / 4, (2.5, 5.0)),  # an SLO percentile between two edges
        (0.999, 1920 + (7680 - 1920) * (99.9 - 99) / 1, (1920, 7680)),
        (1.0, 1920 + (7680 - 1920) * 1.0, (1920, 7680)),
    ],
    ids=[
        "p5-first-filled",
        "p40-at-edge",
        "p50",
        "p95-at-edge",
        "p97-interpolated",
        "p99.9-wide",
        "p100",
    ],
)
def test_hand_computed(q: float, value: float, edges: tuple[float, float]) -> None:
    got = histogram_quantile(q, E2E, COUNTS)
    assert got is not None
    assert got.value == pytest.approx(value)
    assert (got.lower_edge, got.upper_edge) == pytest.approx(edges)
    assert got.observations_per_s == 100


def test_first_bucket_interpolates_from_zero() -> None:
    got = histogram_quantile(0.5, (1.0, 2.0, INF), (10, 10, 10))
    assert got is not None and got.value == pytest.approx(0.5)
    assert (got.lower_edge, got.upper_edge) == (0.0, 1.0)


def test_overflow_bucket_returns_highest_finite_edge() -> None:
    # 10 of 100 observations above 5 s: p95 is somewhere above 5 s; Prometheus says 5.
    got = histogram_quantile(0.95, (1.0, 5.0, INF), (50, 90, 100))
    assert got is not None
    assert got.value == 5.0
    assert got.lower_edge == 5.0 and math.isinf(got.upper_edge)
    assert got.in_overflow_bucket


def test_first_bucket_at_or_below_zero_returns_its_edge() -> None:
    got = histogram_quantile(0.1, (-1.0, 0.0, 1.0, INF), (5, 8, 10, 10))
    assert got is not None and got.value == -1.0


@pytest.mark.parametrize(
    ("edges", "counts"),
    [
        ((0.3, 0.5, 1.0), (1, 2, 3)),  # no +Inf bucket
        ((INF,), (3,)),  # one bucket only
        ((0.3, 0.5, INF), (0, 0, 0)),  # no observations in the window
        ((), ()),
    ],
    ids=["no-inf", "single-bucket", "no-observations", "empty"],
)
def test_no_answer_where_prometheus_returns_nan(
    edges: tuple[float, ...], counts: tuple[float, ...]
) -> None:
    assert histogram_quantile(0.95, edges, counts) is None


def test_q_zero_with_empty_first_bucket_is_nan_like_prometheus() -> None:
    assert histogram_quantile(0.0, (1.0, 2.0, INF), (0, 5, 5)) is None
    got = histogram_quantile(0.0, (1.0, 2.0, INF), (1, 5, 5))
    assert got is not None and got.value == 0.0


def test_q_nan_and_out_of_range() -> None:
    assert histogram_quantile(math.nan, (1.0, INF), (1, 2)) is None
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        histogram_quantile(95, (1.0, INF), (1, 2))
    with pytest.raises(ValueError, match="2 bucket edges but 1 counts"):
        histogram_quantile(0.5, (1.0, INF), (1,))


def test_order_duplicates_and_non_monotonic_counts() -> None:
    # Unsorted input, a duplicated le (two series merged: counts add), a dip (forced up).
    got = histogram_quantile(0.5, (INF, 2.0, 1.0, 1.0), (10, 4, 3, 3))
    assert got is not None
    # Buckets: le=1 -> 6, le=2 -> 4 forced to 6, +Inf -> 10; rank 5 in the first bucket.
    assert got.value == pytest.approx(5 / 6)
    assert histogram_quantile(0.5, (1.0, 2.0, INF), (6, 6, 10)) == got


def test_float_noise_between_buckets_is_ignored() -> None:
    # le=2 is 5e-12 above le=1 (relative 1e-12: float noise from summing rates). Prometheus
    # treats it as equal, so a rank just above 5 lands in (2, 3], not inside the noise bucket.
    q = 0.5000000000002
    noisy = histogram_quantile(q, (1.0, 2.0, 3.0, INF), (5.0, 5.0 + 5e-12, 8.0, 10.0))
    assert noisy is not None
    assert noisy.value == pytest.approx(2.0, abs=1e-9)
    assert (noisy.lower_edge, noisy.upper_edge) == (2.0, 3.0)
    # A real (larger) difference is kept.
    real = histogram_quantile(0.51, (1.0, 2.0, 3.0, INF), (5.0, 5.2, 8.0, 10.0))
    assert real is not None and real.value == pytest.approx(1.5)


@st.composite
def histograms(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(1, 12))
    edges = sorted(draw(st.lists(st.floats(0.001, 1e4), min_size=n, max_size=n, unique=True)))
    increments = draw(st.lists(st.floats(0, 100), min_size=n + 1, max_size=n + 1))
    counts, c = [], 0.0
    for inc in increments:
        c += inc
        counts.append(c)
    return [*edges, INF], counts


@given(histograms(), st.floats(0, 1), st.floats(0, 1))
def test_properties(h: tuple[list[float], list[float]], q1: float, q2: float) -> None:
    edges, counts = h
    a, b = (
        histogram_quantile(min(q1, q2), edges, counts),
        histogram_quantile(max(q1, q2), edges, counts),
    )
    if counts[-1] == 0:
        assert a is None and b is None
        return
    for got in (a, b):
        if got is not None:
            # Within the bucket that bounds it, and never above the highest finite edge.
            assert got.lower_edge <= got.value <= got.upper_edge
            assert got.value <= edges[-2]
    if a is not None and b is not None:
        assert a.value <= b.value + 1e-9 * max(1.0, abs(b.value))  # monotone in q


def test_matches_real_prometheus_on_recorded_rates() -> None:
    recorded = json.loads(RECORDED.read_text())
    snap = build_snapshot(recorded["at"], recorded["results"], len(recorded["results"]))
    bf16 = snap.for_modeldeployment("llm", "assistant")["bf16"]
    checked = 0
    for metric, answers in recorded["histogram_quantile_bf16"].items():
        hist = bf16.latency[metric]
        for q_text, theirs_text in answers.items():
            theirs = float(theirs_text)
            ours = hist.quantile(float(q_text))
            if math.isnan(theirs):
                assert ours is None, (metric, q_text)
            else:
                assert ours is not None, (metric, q_text)
                assert ours.value == pytest.approx(theirs, rel=1e-12, abs=1e-15), (metric, q_text)
            checked += 1
    assert checked >= 20
