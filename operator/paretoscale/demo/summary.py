"""The demo's figures (pure): what the live run cost and how well it served, against the
best-quality variant run all day, and the lines that say so.

Day time: a wall second of the demo stands for `compression` seconds of the day, so
- GPU-hours = sum over samples of GPUs x (wall seconds until the next sample) x compression
  / 3600 (each sample's fleet holds until the next one);
- GPU cost [USD] = the same sum with GPUs x price, i.e. the sample's usd_per_hour;
- SLO attainment counts requests as the replay does (docs/replay.md): in each interval
  between samples, a share F(SLO) of the requests finished within the SLO's bound, and
  min(1, F / (percentile / 100)) of them count as within the SLO (a fleet meeting its p95
  bound serves all its requests within the objective); F is read from vLLM's cumulative
  e2e histogram by linear interpolation inside the bucket that holds the bound, as
  histogram_quantile does. Requests the load generator could not get served count as misses.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paretoscale.demo.sample import Sample


@dataclass(frozen=True)
class Figures:
    """How one way of serving the day did."""

    label: str
    gpu_cost_usd: float
    gpu_hours: float
    slo_attainment: float | None  # 0..1; None when nothing was measured
    mean_quality: float | None  # request-weighted offline quality served
    switches: int


def interval_day_hours(samples: Sequence[Sample], compression: float) -> list[float]:
    """Day-hours each sample's fleet stands for: wall seconds until the next sample x
    compression / 3600; the last sample closes the run and stands for none."""
    out = []
    for a, b in itertools.pairwise(samples):
        out.append(max(0.0, b.wall_s - a.wall_s) * compression / 3600.0)
    return [*out, 0.0] if samples else []


def gpu_hours(samples: Sequence[Sample], compression: float) -> float:
    return sum(
        s.gpus * h for s, h in zip(samples, interval_day_hours(samples, compression), strict=True)
    )


def gpu_cost_usd(samples: Sequence[Sample], compression: float) -> float:
    return sum(
        s.usd_per_hour * h
        for s, h in zip(samples, interval_day_hours(samples, compression), strict=True)
    )


def cost_per_hour_mean(samples: Sequence[Sample], compression: float) -> float:
    """Time-weighted mean cost rate [USD/h] over the samples."""
    hours = sum(interval_day_hours(samples, compression))
    return gpu_cost_usd(samples, compression) / hours if hours > 0 else 0.0


def count_within(buckets: Mapping[float, float], bound_s: float) -> tuple[float, float, float]:
    """(requests within bound_s, lower edge, upper edge) from a cumulative histogram
    {upper edge: count}: the count at the lower edge plus the bucket's count times the share
    of the bucket below the bound (linear inside the bucket, as histogram_quantile); the
    first bucket's lower edge is 0. (0, 0, inf) for an empty histogram."""
    edges = sorted(e for e in buckets if not math.isinf(e))
    if not buckets:
        return 0.0, 0.0, math.inf
    if bound_s in buckets:
        return float(buckets[bound_s]), bound_s, bound_s
    i = bisect.bisect_left(edges, bound_s)
    lower = edges[i - 1] if i > 0 else 0.0
    upper = edges[i] if i < len(edges) else math.inf
    below = float(buckets[lower]) if i > 0 else 0.0
    if math.isinf(upper):
        return below, lower, upper
    share = (bound_s - lower) / (upper - lower)
    return below + (float(buckets[upper]) - below) * share, lower, upper


def total(buckets: Mapping[float, float]) -> float:
    """All requests of a cumulative histogram (its +Inf bucket, else its largest)."""
    if not buckets:
        return 0.0
    if math.inf in buckets:
        return float(buckets[math.inf])
    return float(max(buckets.values()))


def delta(now: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    """Requests per bucket between two cumulative histograms (never negative: a bucket that
    fell, e.g. a simulator that restarted, counts as nothing new)."""
    return {le: max(0.0, float(c) - float(before.get(le, 0.0))) for le, c in now.items()}


def slo_counts(samples: Sequence[Sample], slo_s: float, percentile: float) -> tuple[float, float]:
    """(requests counted within the SLO, requests served) between the first sample and the
    last, per the module docstring: the first histogram is the baseline (what came before
    the day is not counted). Samples without a histogram (Prometheus unavailable) are
    skipped: their requests land in the next interval that has one."""
    within = served = 0.0
    before: Mapping[float, float] | None = None
    for s in samples:
        if not s.e2e_buckets:
            continue
        if before is None:
            before = s.e2e_buckets
            continue
        d = delta(s.e2e_buckets, before)
        n = total(d)
        if n > 0:
            share = count_within(d, slo_s)[0] / n
            within += n * min(1.0, share / (percentile / 100.0))
            served += n
        before = s.e2e_buckets
    return within, served


def day_histogram(samples: Sequence[Sample]) -> dict[float, float]:
    """The e2e histogram of the requests between the first sample and the last (what came
    before the day, e.g. a warm-up, left out); {} without two histograms."""
    with_hist = [s.e2e_buckets for s in samples if s.e2e_buckets]
    return delta(with_hist[-1], with_hist[0]) if len(with_hist) >= 2 else {}


def slo_attainment(
    samples: Sequence[Sample], slo_s: float, percentile: float, failed: float = 0.0
) -> float | None:
    """Share of requests within the SLO, counting `failed` requests (never served) as
    misses; None before any request."""
    within, served = slo_counts(samples, slo_s, percentile)
    n = served + failed
    return within / n if n > 0 else None


def switches(samples: Sequence[Sample]) -> int:
    """Moves of the Service from one variant to another."""
    actives = [s.active for s in samples if s.active]
    return sum(1 for a, b in itertools.pairwise(actives) if a != b)


def mean_quality(
    requests_by_variant: Mapping[str, float], quality: Mapping[str, float]
) -> float | None:
    """Request-weighted quality of the variants that served; None before any request."""
    n = sum(v for k, v in requests_by_variant.items() if k in quality)
    if n <= 0:
        return None
    return sum(quality[k] * v for k, v in requests_by_variant.items() if k in quality) / n


def live_figures(
    label: str,
    samples: Sequence[Sample],
    compression: float,
    slo_s: float,
    percentile: float,
    failed: float,
    requests_by_variant: Mapping[str, float],
    quality: Mapping[str, float],
) -> Figures:
    return Figures(
        label=label,
        gpu_cost_usd=gpu_cost_usd(samples, compression),
        gpu_hours=gpu_hours(samples, compression),
        slo_attainment=slo_attainment(samples, slo_s, percentile, failed),
        mean_quality=mean_quality(requests_by_variant, quality),
        switches=switches(samples),
    )


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}%}"


def _quality(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def comparison_table(rows: Sequence[Figures]) -> list[str]:
    """A fixed-width table, one row per way of serving the day."""
    head = ("", "GPU COST", "GPU-HOURS", "SLO ATTAIN", "QUALITY", "SWITCHES")
    body = [
        (
            r.label,
            f"${r.gpu_cost_usd:,.2f}",
            f"{r.gpu_hours:,.1f}",
            _pct(r.slo_attainment),
            _quality(r.mean_quality),
            str(r.switches),
        )
        for r in rows
    ]
    table = [head, *body]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return [
        "  ".join(
            [row[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        ).rstrip()
        for row in table
    ]


def verdict(live: Figures, baseline: Figures) -> str:
    """One sentence: how much less (or more) the live run spent, at what quality and SLO."""
    if baseline.gpu_cost_usd <= 0:
        return "The baseline cost nothing; no comparison."
    saved = baseline.gpu_cost_usd - live.gpu_cost_usd
    share = saved / baseline.gpu_cost_usd
    how = "less" if saved >= 0 else "more"
    text = (
        f"paretoscale spent {abs(share):.1%} {how} than the best-quality variant all day "
        f"(${abs(saved):,.2f} {'saved' if saved >= 0 else 'extra'} per day)"
    )
    if live.mean_quality is not None and baseline.mean_quality is not None:
        points = (baseline.mean_quality - live.mean_quality) * 100
        text += f", serving {abs(points):.2f} quality points {'less' if points >= 0 else 'more'}"
    if live.slo_attainment is not None and baseline.slo_attainment is not None:
        text += f", at {live.slo_attainment:.2%} SLO attainment vs {baseline.slo_attainment:.2%}"
    return text + "."


@dataclass(frozen=True)
class LoadTotals:
    """What the load generator reports at the end (client side)."""

    sent: int
    ok: int
    errors: int
    error_kinds: Mapping[str, int]
    e2e_p50_s: float
    e2e_p99_s: float


def report_lines(
    title: str,
    live: Figures,
    baseline: Figures,
    baseline_variant: str,
    requests_by_variant: Mapping[str, float],
    load: LoadTotals | None,
    day_buckets: Mapping[float, float],
    slo_s: float,
    compression: float,
) -> list[str]:
    """The summary printed at the end."""
    lines = [f"Summary: {title}", *comparison_table([live, baseline]), verdict(live, baseline)]
    served = sum(requests_by_variant.values())
    if served > 0:
        shares = ", ".join(
            f"{v} {n / served:.0%}"
            for v, n in sorted(requests_by_variant.items(), key=lambda kv: -kv[1])
            if n > 0
        )
        lines.append(f"Requests served by variant: {shares}.")
    if load is not None:
        kinds = f" ({', '.join(f'{k} {n}' for k, n in sorted(load.error_kinds.items()))})"
        lines.append(
            f"Load generator (warm-up included): {load.sent:,} sent, {load.ok:,} served, "
            f"{load.errors:,} failed"
            f"{kinds if load.errors else ''}; client e2e p50 {load.e2e_p50_s:.2f} s, "
            f"p99 {load.e2e_p99_s:.2f} s."
        )
    n = total(day_buckets)
    if n > 0:
        within, lo, hi = count_within(day_buckets, slo_s)
        lines.append(
            f"Within {slo_s:g} s end to end: {within / n:.2%} of {n:,.0f} served requests "
            f"(vLLM's histogram, interpolated between its {lo:g} s and {hi:g} s buckets)."
        )
    lines += [
        f"Baseline: `paretoscale replay --policy static:best+hpa` on the same day, peak, token "
        f"lengths and prices: {baseline_variant} (the highest quality) scaled by the HPA on its "
        "declared capacity, 30 s ticks in real day time.",
        f"Day time: each wall second stood for {compression:.0f} s of the day; the live cost is "
        "the GPUs that existed x their price, integrated over the samples. Rollouts and "
        f"scale-downs take wall seconds, so they last {compression:.0f}x longer in day time "
        "than they would in a real day.",
    ]
    return lines
