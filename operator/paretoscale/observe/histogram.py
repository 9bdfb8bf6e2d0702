"""Quantiles of a classic Prometheus histogram, computed exactly as PromQL's histogram_quantile.

The poller fetches bucket rates (`sum by (..., le) (rate(x_bucket[w]))`) once per tick; each
ModelDeployment then reads its own percentile here, so the number of queries does not depend
on how many percentiles are asked for. The algorithm is Prometheus's `bucketQuantile`
(promql/quantile.go), step by step:

1. sort buckets by upper bound `le`; the highest must be +Inf, else there is no answer;
2. merge buckets with the same `le`; treat relative differences <= 1e-12 between neighbours as
   equal (float noise); force cumulative counts to be monotonic (the running maximum);
3. need at least two buckets and a non-zero count in the +Inf bucket (`observations`);
4. rank = q * observations; b = the first bucket whose cumulative count >= rank;
5. if b is the +Inf bucket, the answer is the highest finite edge (le of the bucket below);
   if b is the first bucket and its le <= 0, the answer is that le;
6. else interpolate linearly inside bucket b, which spans (le[b-1], le[b]] (0 for b = 0):

       quantile = start + (end - start) * (rank - count[b-1]) / (count[b] - count[b-1])

Units follow the histogram: seconds for vLLM's latency histograms. Besides the value, the
result names the two bucket edges that bound it, because an SLO that falls between two edges
is an interpolation, and the explanation should say so.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

PRECISION_TOLERANCE = 1e-12  # Prometheus's correctPrecisionErrors tolerance


@dataclass(frozen=True)
class Quantile:
    """A histogram quantile [s for latency] and the bucket edges around it."""

    value: float
    lower_edge: float  # bucket start (0 for the first bucket)
    upper_edge: float  # bucket end; +Inf when the answer fell into the +Inf bucket
    observations_per_s: float  # count of the +Inf bucket (a rate when fed bucket rates)

    @property
    def in_overflow_bucket(self) -> bool:
        """True when the quantile is above the highest finite edge (value = that edge)."""
        return math.isinf(self.upper_edge)


def histogram_quantile(
    q: float, upper_bounds: Sequence[float], counts: Sequence[float]
) -> Quantile | None:
    """The q-quantile (0 <= q <= 1) of cumulative bucket `counts` at `upper_bounds` (`le`).

    None where Prometheus returns NaN: no +Inf bucket, fewer than two buckets, no
    observations, q NaN, or q = 0 with an empty first bucket (0/0). q outside [0, 1] is refused (Prometheus would return -Inf/+Inf,
    which no SLO can use).
    """
    if len(upper_bounds) != len(counts):
        raise ValueError(f"{len(upper_bounds)} bucket edges but {len(counts)} counts")
    if math.isnan(q):
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    if not upper_bounds:
        return None
    buckets = sorted(zip(upper_bounds, counts, strict=True), key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return None

    les, cum = _coalesce(buckets)
    _correct_precision_errors(cum, PRECISION_TOLERANCE)
    _ensure_monotonic(cum)

    if len(les) < 2:
        return None
    observations = cum[-1]
    if observations == 0 or math.isnan(observations):
        return None
    rank = q * observations
    # sort.Search over all but the +Inf bucket: first i with cum[i] >= rank, else len-1.
    b = bisect.bisect_left(cum, rank, 0, len(cum) - 1)

    if b == len(les) - 1:
        return Quantile(les[-2], les[-2], les[-1], observations)
    if b == 0 and les[0] <= 0:
        return Quantile(les[0], les[0], les[0], observations)
    start = 0.0
    end = les[b]
    count = cum[b]
    if b > 0:
        start = les[b - 1]
        count -= cum[b - 1]
        rank -= cum[b - 1]
    if count == 0:  # q = 0 and an empty first bucket: 0/0, NaN in Prometheus
        return None
    return Quantile(start + (end - start) * (rank / count), start, end, observations)


def _coalesce(buckets: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    les: list[float] = []
    cum: list[float] = []
    for le, count in buckets:
        if les and le == les[-1]:
            cum[-1] += count
        else:
            les.append(le)
            cum.append(count)
    return les, cum


def _correct_precision_errors(cum: list[float], tolerance: float) -> None:
    prev = cum[0]
    for i in range(1, len(cum)):
        curr = cum[i]
        delta = abs(curr - prev)
        if delta == 0:
            continue
        eps = delta / curr if curr != 0 else math.inf
        if eps <= tolerance:
            cum[i] = prev
        else:
            prev = curr


def _ensure_monotonic(cum: list[float]) -> None:
    top = cum[0]
    for i in range(1, len(cum)):
        if cum[i] > top:
            top = cum[i]
        elif cum[i] < top:
            cum[i] = top
