"""From the poller's snapshot to what one reconcile needs about one ModelDeployment (pure).

Wraps observe.observation_for: the Observation decide() reads, plus per-variant figures for
the live correction (load per reporting replica, latency at the SLO) and for rollout analysis
(the target's latency and its requests in the rate window).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paretoscale.api.status import ObservedStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.config import OperatorSettings
from paretoscale.decide.types import Observation
from paretoscale.observe.observation import ObservedModel, observation_for

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(promql_duration: str) -> float:
    """'2m' -> 120.0, '1m30s' -> 90.0 (PromQL durations)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", promql_duration)
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


@dataclass(frozen=True)
class MdObservation:
    observation: Observation
    model: ObservedModel | None = None
    per_replica: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    latency_s: Mapping[str, float] = field(default_factory=dict)
    requests_in_window: Mapping[str, float] = field(default_factory=dict)

    def status(self, at: str) -> ObservedStatus:
        o, m = self.observation, self.model
        live = o.requests_per_s is not None and o.metrics_expected
        return ObservedStatus(
            requests_per_second=round(o.requests_per_s, 3)
            if o.requests_per_s is not None
            else None,
            latency_seconds=round(m.latency.value, 3) if m and m.latency else None,
            tokens_per_request=round(o.tokens_per_request, 1) if o.tokens_per_request else None,
            running_requests=m.running if m else None,
            waiting_requests=m.waiting if m else None,
            kv_cache_usage=round(m.kv_cache_usage, 3)
            if m and m.kv_cache_usage is not None
            else None,
            spec_decode_acceptance=m.spec_decode_acceptance if m else None,
            basis="live" if live else "priors",
            at=at if live else None,
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
    model = observation_for(
        snapshot if settings.prometheus_url else None,
        namespace,
        name,
        spec,
        now,
        settings.stale_after_seconds,
        settings.price_fallback,
        corrections,
    )
    obs = model.observation
    if settings.prometheus_url is None:
        obs = replace(obs, metrics_expected=False)
    window_s = duration_s(settings.rate_window)
    per_replica, latency, requests = {}, {}, {}
    for variant, f in model.variants.items():
        if f.latency is not None:
            latency[variant] = f.latency.value
            # Learn capacity only at a steady state: with requests waiting, latency is the
            # backlog of an earlier overload (e.g. just before a scale-up), not this load's.
            steady = f.waiting is not None and f.waiting < 1
            if f.requests_per_replica_s is not None and not f.latency.in_overflow_bucket and steady:
                per_replica[variant] = (f.requests_per_replica_s, f.latency.value)
        if f.requests_per_s is not None:
            requests[variant] = f.requests_per_s * window_s
    return MdObservation(obs, model, per_replica, latency, requests)
