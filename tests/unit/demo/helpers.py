"""Samples for the demo's pure parts, with figures a reader can check by hand."""

from __future__ import annotations

from collections.abc import Mapping

from paretoscale.demo.sample import Sample

INF = float("inf")


def sample(
    wall_s: float,
    *,
    fp8: int = 1,
    l40s: int = 0,
    h100_usd: float = 12.29,
    buckets: Mapping[float, float] | None = None,
    active: str | None = "fp8",
    phase: str = "Stable",
    target: str | None = None,
    observed: float | None = 8.0,
    compression: float = 288.0,
) -> Sample:
    """`fp8` H100 pods and `l40s` L40S pods (one GPU each) at the given H100 price."""
    replicas = {k: n for k, n in (("fp8", fp8), ("w4a16-l40s", l40s)) if n}
    return Sample(
        wall_s=wall_s,
        day_s=wall_s * compression,
        offered_rps=10.0,
        observed_rps=observed,
        phase=phase,
        active=active,
        target=target,
        replicas=replicas,
        ready=dict(replicas),
        gpus=fp8 + l40s,
        usd_per_hour=fp8 * h100_usd + l40s * 1.86,
        prices={"H100": h100_usd, "L40S": 1.86},
        decision="fp8 x 1 (stay)",
        reason="staying on fp8: fp8 has run 10s of its minimum dwell 60s; fp8: 1 x H100",
        e2e_buckets=dict(buckets or {}),
    )


def hist(at_5: float, at_10: float, total: float) -> dict[float, float]:
    """A cumulative e2e histogram with edges 2.5, 5, 10 s: nothing at or below 2.5 s."""
    return {2.5: 0.0, 5.0: at_5, 10.0: at_10, INF: total}
