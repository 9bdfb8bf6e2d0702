"""Verdicts on a target variant during verification, from what Prometheus saw (pure).

Like Argo Rollouts' analysis: measurements in, Successful / Failed / Inconclusive /
Unavailable out, never an exception. Fail-closed: only Successful lets the Service move to
the target (rollout/machine.py); a measurement that is missing never passes.

- Unavailable: a reading the verdict needs is missing (no metrics at all, no request
  counters for the target, no latency reading at the SLO metric and percentile);
- Inconclusive: the target served fewer than MIN_REQUESTS requests so far (its
  vllm:request_success_total since its replicas started, i.e. during verification);
- Failed: more than MAX_ERROR_RATIO of its requests failed (finished_reason="error", what
  vLLM answers with HTTP 500; counted against at least MIN_REQUESTS, so two errors in the
  first requests already fail); or more than MAX_ABORT_RATIO were aborted and more than the
  serving variant's share (+10%); or its latency exceeds the SLO while the serving variant
  (the baseline) meets it or is more than BASELINE_TOLERANCE faster;
- Successful otherwise. Relative, not absolute: when no variant can meet the SLO, a target
  no worse than what serves now (within the tolerance) passes. A target that meets the SLO
  passes even when it is slower than the baseline: a cheaper variant within the SLO is what
  the decision asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["Successful", "Failed", "Inconclusive", "Unavailable"]

MIN_REQUESTS = 20  # fewer requests say nothing about a p95 or an error ratio
MAX_ERROR_RATIO = 0.05
MAX_ABORT_RATIO = 0.05
BASELINE_TOLERANCE = 0.10  # a target this much worse than what serves now is worse


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str
    # What kept an Inconclusive or Unavailable verdict from passing, in a few words ("no
    # metrics", "not enough traffic", "latency missing"): the reason of a timed-out rollout.
    why: str = ""


@dataclass(frozen=True)
class Reading:
    """What Prometheus shows of one variant: latency at the SLO metric and percentile [s]
    over the rate window, and the requests its replicas finished since they started (every
    reason; of those errors and aborts). None = not read, never zero."""

    latency_s: float | None = None
    finished: float | None = None
    errors: float | None = None
    aborts: float | None = None

    def abort_ratio(self) -> float | None:
        if self.aborts is None or not self.finished:
            return None
        return self.aborts / self.finished


def analyze(
    variant: str, target: Reading, slo_s: float, slo_name: str, baseline: Reading | None = None
) -> Verdict:
    """The verdict on `variant` from its reading and the serving variant's (`baseline`,
    None on a first rollout). See the module docstring for the rules, in their order."""
    n = target.finished
    if n is None or target.errors is None or target.aborts is None:
        return Verdict(
            "Unavailable",
            f"{variant}: no request counts (vllm:request_success_total)",
            "no metrics",
        )
    if target.errors / max(n, MIN_REQUESTS) > MAX_ERROR_RATIO:
        return Verdict(
            "Failed",
            f"{variant}: {target.errors:.0f} of {n:.0f} requests failed "
            f"(limit {MAX_ERROR_RATIO:.0%} of at least {MIN_REQUESTS})",
        )
    if n < MIN_REQUESTS:
        return Verdict(
            "Inconclusive",
            f"{variant}: not enough traffic ({n:.0f} of {MIN_REQUESTS} requests served)",
            "not enough traffic",
        )
    aborted = target.aborts / n
    base_aborted = baseline.abort_ratio() if baseline else None
    if aborted > MAX_ABORT_RATIO and (
        base_aborted is None or aborted > base_aborted * (1 + BASELINE_TOLERANCE)
    ):
        return Verdict(
            "Failed", f"{variant}: {aborted:.1%} of requests aborted (limit {MAX_ABORT_RATIO:.0%})"
        )
    latency = target.latency_s
    if latency is None:
        return Verdict(
            "Unavailable", f"{variant}: latency missing (no {slo_name} reading)", "latency missing"
        )
    if latency <= slo_s:
        return Verdict(
            "Successful",
            f"{variant}: {slo_name} {latency:.3g}s within the SLO {slo_s:g}s, "
            f"{target.errors:.0f} of {n:.0f} requests failed",
        )
    base = baseline.latency_s if baseline else None
    if base is not None and base > slo_s and latency <= base * (1 + BASELINE_TOLERANCE):
        return Verdict(
            "Successful",
            f"{variant}: {slo_name} {latency:.3g}s exceeds the SLO {slo_s:g}s but is "
            f"no worse than what serves now ({base:.3g}s)",
        )
    return Verdict("Failed", f"{variant}: {slo_name} {latency:.3g}s exceeds the SLO {slo_s:g}s")
