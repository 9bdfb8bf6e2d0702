"""From the poller's snapshot to what one reconcile needs about one ModelDeployment (pure).

Wraps observe.observation_for: the Observation decide() reads, plus per-variant figures for
the live correction (load per ready replica, latency at the SLO) and for rollout analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.api.status import ObservedStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.config import OperatorSettings
from paretoscale.decide.types import Observation


@dataclass(frozen=True)
class MdObservation:
    observation: Observation
    per_replica: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    latency_s: Mapping[str, float] = field(default_factory=dict)
    requests_in_window: Mapping[str, float] = field(default_factory=dict)
    tokens_per_request: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    spec_decode_acceptance: float | None = None
    latency_total_s: float | None = None

    def status(self, at: str) -> ObservedStatus:
        o = self.observation
        return ObservedStatus(
            requests_per_second=round(o.requests_per_s, 3)
            if o.requests_per_s is not None
            else None,
            latency_seconds=round(self.latency_total_s, 3)
            if self.latency_total_s is not None
            else None,
            tokens_per_request=round(self.tokens_per_request, 1)
            if self.tokens_per_request
            else None,
            running_requests=self.running,
            waiting_requests=self.waiting,
            kv_cache_usage=round(self.kv_cache_usage, 3)
            if self.kv_cache_usage is not None
            else None,
            spec_decode_acceptance=self.spec_decode_acceptance,
            basis="live" if o.requests_per_s is not None else "priors",
            at=at if o.requests_per_s is not None else None,
        )


def observe_md(
    snapshot: Any,
    settings: OperatorSettings,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec,
    now: float,
    corrections: Mapping[str, float],
) -> MdObservation:
    if settings.prometheus_url is None:
        problem = "no Prometheus configured: deciding on priors"
    elif snapshot is None:
        problem = "no metrics snapshot yet"
    else:
        problem = "metrics not wired"
    return MdObservation(
        Observation(
            at=now,
            requests_per_s=None,
            usd_per_gpu_hour=dict(settings.price_fallback),
            capacity_factors=dict(corrections),
            metrics_problem=problem,
        )
    )
