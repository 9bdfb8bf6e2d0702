"""From the poller's snapshot to what one reconcile needs about one ModelDeployment (pure).

Wraps observe.observation_for: the Observation the tick reads, with per variant the signals
of its replicas (`VariantSignals`: completions per reporting replica, requests in the rate
window, latency at the SLO with its bucket, queue, KV cache, requests finished, failed and
aborted since its replicas started) for the saturation guard, the live correction and the
rollout analysis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from paretoscale.api.status import ModelDeploymentStatus, ObservedStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.config import OperatorSettings
from paretoscale.controller.memory import tick_memory
from paretoscale.decide.types import LatencyReading, Observation, VariantSignals
from paretoscale.observe.observation import ObservedModel, VariantObserved, observation_for
from paretoscale.observe.snapshot import Histogram
from paretoscale.tick.memory import Mode, TickMemory, TickOptions

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(promql_duration: str) -> float:
    """'2m' -> 120.0, '1m30s' -> 90.0 (PromQL durations)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", promql_duration)
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


@dataclass(frozen=True)
class MdObservation:
    observation: Observation
    model: ObservedModel | None = None

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
            price_basis=dict(m.price_basis) if m and m.price_basis else None,
            gpus_available=dict(o.gpus_available) or None,
        )


def share_within(hist: Histogram | None, le: float) -> tuple[float, float] | None:
    """(share of observations <= le, observations per s) of a cumulative histogram whose
    edges include le (within 1e-9 relative); None otherwise or without observations."""
    if hist is None or hist.observations_per_s <= 0:
        return None
    for edge, rate in zip(hist.upper_bounds_s, hist.rates_per_s, strict=True):
        if abs(edge - le) <= 1e-9 * le:
            return min(1.0, rate / hist.observations_per_s), hist.observations_per_s
    return None


def signals(
    f: VariantObserved, window_s: float, hist: Histogram | None = None, slo_s: float = 0.0
) -> VariantSignals:
    """One variant's figures as the tick reads them; `hist` is its histogram at the SLO metric
    (for the share of requests within an SLO that is a bucket edge)."""
    q = f.latency
    share = share_within(hist, slo_s) if slo_s > 0 else None
    return VariantSignals(
        requests_per_s=f.requests_per_s,
        requests_per_replica_s=f.requests_per_replica_s,
        requests_in_window=f.requests_per_s * window_s if f.requests_per_s is not None else None,
        latency=LatencyReading(
            q.value,
            q.lower_edge,
            q.upper_edge,
            share[0] if share else None,
            share[1] * window_s if share else None,
        )
        if q is not None
        else None,
        waiting=f.waiting,
        running=f.running,
        kv_cache_usage=f.kv_cache_usage,
        finished_total=f.finished_total,
        errors_total=f.errors_total,
        aborts_total=f.aborts_total,
    )


def observe_md(
    snapshot: Any,
    settings: OperatorSettings,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec,
    now: float,
    corrections: Mapping[str, float],
    gpus: Mapping[str, int] | None = None,
) -> MdObservation:
    """`gpus`: GPUs per type the cluster shows (controller/inventory.py); None: not listed."""
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
    if gpus is not None:
        obs = replace(obs, gpus_available=dict(gpus))
    window_s = duration_s(settings.rate_window)
    mine = (
        snapshot.for_modeldeployment(namespace, name)
        if settings.prometheus_url and model.variants
        else {}
    )
    obs = replace(
        obs,
        rate_window_s=window_s,
        variants={
            v: signals(
                f,
                window_s,
                mine[v].latency.get(spec.slo.latency) if v in mine else None,
                spec.slo.seconds,
            )
            for v, f in model.variants.items()
        },
    )
    return MdObservation(obs, model)


def operator_inputs(
    snapshot: Any,
    settings: OperatorSettings,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec,
    now: float,
    status: ModelDeploymentStatus,
    fresh: TickMemory | None = None,
    gpus: Mapping[str, int] | None = None,
) -> tuple[MdObservation, TickMemory]:
    """What the tick reads in the operator: the observation from the poller's snapshot and
    the memory from the last status (saturation and forecast from `fresh`, this process's
    newest, when there is one). controller/reconcile.py calls this, then tick()."""
    seen = observe_md(
        snapshot, settings, namespace, name, spec, now, status.capacity_corrections, gpus
    )
    return seen, tick_memory(status, fresh)


def tick_options(settings: OperatorSettings, mode: Mode) -> TickOptions:
    """How the operator runs the tick: every piece on, in the ModelDeployment's mode, at the
    poller's interval."""
    return TickOptions(mode=mode, tick_seconds=settings.tick_seconds)
