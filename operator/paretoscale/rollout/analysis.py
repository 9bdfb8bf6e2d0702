"""Verdicts on a target variant during verification, from what Prometheus saw (pure).

Like Argo Rollouts' analysis: measurements in, Successful / Failed / Inconclusive out, never an
exception. Too little traffic or no metrics is Inconclusive: the rollout then relies on
readiness alone ("where metrics allow", DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Unavailable: Prometheus is configured but cannot be read; a rollout in Verifying waits.
Outcome = Literal["Successful", "Failed", "Inconclusive", "Unavailable"]

MIN_REQUESTS = 20  # fewer requests in the window say nothing about a p95
MAX_ERROR_RATIO = 0.05
BASELINE_TOLERANCE = 0.10  # a target this much slower than what serves now is worse


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


def analyze(
    variant: str,
    latency_s: float | None,
    slo_s: float,
    slo_name: str,
    requests_in_window: float | None,
    error_ratio: float | None,
    baseline_latency_s: float | None = None,
) -> Verdict:
    """Failed when more than 5% of the target's requests fail, or its latency at the SLO
    percentile exceeds the SLO and is worse than what serves now (baseline, +10%).

    Relative, not absolute: when no variant can meet the SLO (the decision says so), a target
    that is no worse than the current variant is not rolled back. Without a baseline (a first
    rollout) a miss is Inconclusive: there is nothing better to go back to. Inconclusive also
    without enough traffic."""
    if error_ratio is not None and error_ratio > MAX_ERROR_RATIO:
        return Verdict(
            "Failed",
            f"{variant}: {error_ratio:.1%} of requests failed (limit {MAX_ERROR_RATIO:.0%})",
        )
    if latency_s is None or requests_in_window is None or requests_in_window < MIN_REQUESTS:
        return Verdict("Inconclusive", f"{variant}: not enough traffic to measure {slo_name} yet")
    if latency_s > slo_s:
        if (
            baseline_latency_s is not None
            and baseline_latency_s > slo_s
            and latency_s <= baseline_latency_s * (1 + BASELINE_TOLERANCE)
        ):
            return Verdict(
                "Successful",
                f"{variant}: {slo_name} {latency_s:.3g}s exceeds the SLO {slo_s:g}s but is "
                f"no worse than what serves now ({baseline_latency_s:.3g}s)",
            )
        return Verdict(
            "Failed", f"{variant}: {slo_name} {latency_s:.3g}s exceeds the SLO {slo_s:g}s"
        )
    return Verdict(
        "Successful", f"{variant}: {slo_name} {latency_s:.3g}s within the SLO {slo_s:g}s"
    )
