"""From a metrics snapshot to what decide() reads for one ModelDeployment. Pure.

`observation_for()` picks one ModelDeployment's series out of the shared snapshot and returns
its `Observation` (load, arrivals, token mix, prices) together with per-variant figures for the
status and the explanation (rate, arrivals, latency at the spec's SLO metric and percentile with
the bucket edges around it, replicas reporting, queue, KV cache, speculative acceptance, abort
and error rates, and the requests finished, failed and aborted since the replicas started,
which the rollout analysis reads).

The load is unavailable (requests_per_s=None, with `metrics_problem` in words) when:
- no Prometheus is configured (snapshot None): decide() runs on the spec's priors;
- the snapshot is older than stale_after_s (the poller is stuck or gone);
- the request-rate query failed (a failed query is "metrics unavailable", never "zero load");
- Prometheus has no vllm:request_success_total series for this ModelDeployment, e.g. a new
  one whose pods do not exist yet: decide() falls back to spec.traffic.expectedRequestsPerSecond.

Total load = sum over the ModelDeployment's variants (an old variant still draining counts);
a variant scraped too recently to have a rate is left out and named in `notes`. Arrivals =
sum over the same variants of completions + queue growth (a variant without a queue-growth
series counts its completions; None when no variant has one, e.g. an override or a recording
that lacks the query). Token mix: prompt and generated tokens per finished request, weighted
by requests over the variants. Latency over
the whole ModelDeployment comes from the variants' bucket rates summed per edge.
Prices: the live price for each of the spec's GPU types where the (fresh) snapshot has one,
else settings.price_fallback; decide() falls back to spec.gpus[].usdPerHour for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.types import Observation
from paretoscale.observe.histogram import Quantile, histogram_quantile
from paretoscale.observe.queries import LATENCY_METRIC_NAMES, LatencyMetric
from paretoscale.observe.snapshot import MetricsSnapshot, VariantMetrics

NO_PROMETHEUS = "no Prometheus configured: deciding on priors"
PriceBasis = Literal["live", "fallback", "spec"]


@dataclass(frozen=True)
class VariantObserved:
    """One variant's live figures, as status and explanations show them."""

    variant: str
    requests_per_s: float | None
    replicas_reporting: int | None
    latency: Quantile | None  # at the spec's SLO metric and percentile [s]
    latency_label: str  # e.g. "p95 e2e"
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    tokens_per_request: float | None = None
    spec_decode_acceptance: float | None = None
    arrivals_per_s: float | None = None  # completions + queue growth
    aborted_per_s: float | None = None
    prompt_tokens_per_request: float | None = None
    output_tokens_per_request: float | None = None
    errored_per_s: float | None = None  # finished_reason="error": answered HTTP 500
    # Requests finished since the replicas started, every reason; of those errors, aborts
    finished_total: float | None = None
    errors_total: float | None = None
    aborts_total: float | None = None

    @property
    def requests_per_replica_s(self) -> float | None:
        """Requests served (finished, aborted excluded) per reporting replica [req/s]; the
        input of a live capacity correction."""
        if self.requests_per_s is None or not self.replicas_reporting:
            return None
        served = max(0.0, self.requests_per_s - (self.aborted_per_s or 0.0))
        return served / self.replicas_reporting

    def latency_text(self) -> str:
        """E.g. "p95 e2e 1.73 s (interpolated between the 1.5 s and 2 s bucket edges)"."""
        q = self.latency
        if q is None:
            return f"{self.latency_label}: no observations in the window"
        if q.in_overflow_bucket:
            return (
                f"{self.latency_label} above {q.lower_edge:g} s, the highest bucket edge "
                f"(reported as {q.value:g} s)"
            )
        if q.lower_edge == q.upper_edge:
            return f"{self.latency_label} {q.value:.3g} s (the lowest bucket edge)"
        return (
            f"{self.latency_label} {q.value:.3g} s (interpolated between the "
            f"{q.lower_edge:g} s and {q.upper_edge:g} s bucket edges)"
        )


@dataclass(frozen=True)
class ObservedModel:
    """decide()'s Observation for one ModelDeployment, plus what the status shows."""

    observation: Observation
    variants: Mapping[str, VariantObserved] = field(default_factory=dict)
    price_basis: Mapping[str, PriceBasis] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # partial problems that did not make the load unavailable
    # Over all variants: latency at the SLO from the summed histograms, queue, KV cache
    # (mean over replicas), speculative acceptance (accepted / proposed tokens).
    latency: Quantile | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    spec_decode_acceptance: float | None = None

    @property
    def live(self) -> bool:
        return self.observation.requests_per_s is not None


def observation_for(
    snapshot: MetricsSnapshot | None,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec,
    now: float,
    stale_after_s: float,
    price_fallback: Mapping[str, float],
    capacity_factors: Mapping[str, float] | None = None,
) -> ObservedModel:
    """The Observation decide() reads for ModelDeployment `namespace/name` at `now` [s].

    See the module docstring for when the load is unavailable and where prices come from.
    """
    factors = MappingProxyType(dict(capacity_factors or {}))
    spec_types = [g.type for g in spec.gpus]

    fresh = snapshot is not None and now - snapshot.at <= stale_after_s
    live_prices = snapshot.gpu_prices_usd_per_hour if snapshot is not None and fresh else {}
    prices: dict[str, float] = {}
    basis: dict[str, PriceBasis] = {}
    for t in spec_types:
        if t in live_prices:
            prices[t], basis[t] = live_prices[t], "live"
        elif t in price_fallback:
            prices[t], basis[t] = price_fallback[t], "fallback"
        else:
            basis[t] = "spec"
    price_basis = MappingProxyType(basis)

    def unavailable(problem: str, notes: tuple[str, ...] = ()) -> ObservedModel:
        return ObservedModel(
            observation=Observation(
                at=now,
                requests_per_s=None,
                usd_per_gpu_hour=MappingProxyType(prices),
                capacity_factors=factors,
                metrics_problem=problem,
            ),
            price_basis=price_basis,
            notes=notes,
        )

    if snapshot is None:
        return unavailable(NO_PROMETHEUS)
    if not fresh:
        age_s = now - snapshot.at
        last = f" (last poll: {snapshot.problem})" if snapshot.problem else ""
        return unavailable(
            f"metrics snapshot is {age_s:.0f} s old, older than {stale_after_s:g} s{last}"
        )
    if snapshot.rate_failed:
        return unavailable(snapshot.problem or f"{snapshot.source}: request-rate query failed")

    mine = snapshot.for_modeldeployment(namespace, name)
    metric, q = spec.slo.latency, spec.slo.percentile / 100.0
    label = f"p{spec.slo.percentile:g} {metric}"
    figures = {v: _figures(v, m, metric, q, label) for v, m in sorted(mine.items())}
    notes = _notes(snapshot, figures, metric)

    counted = {v: m for v, m in mine.items() if m.requests_per_s is not None}
    if counted:
        total_rps = sum(m.requests_per_s for m in counted.values() if m.requests_per_s is not None)
        prompt, output = _mix(counted)
        observation = Observation(
            at=now,
            requests_per_s=total_rps,
            tokens_per_request=_tokens_per_request(counted),
            usd_per_gpu_hour=MappingProxyType(prices),
            capacity_factors=factors,
            metrics_problem=None,
            arrivals_per_s=_arrivals(counted),
            aborted_per_s=_sum(m.aborted_per_s for m in counted.values()),
            prompt_tokens_per_request=prompt,
            output_tokens_per_request=output,
        )
    else:
        observation = unavailable(
            f"no vllm:request_success_total series for {namespace}/{name} in "
            f"{snapshot.source} (no pods scraped yet?)"
        ).observation
    variants = list(mine.values())
    return ObservedModel(
        observation=observation,
        variants=MappingProxyType(figures),
        price_basis=price_basis,
        notes=notes,
        latency=_merged_quantile(variants, metric, q),
        running=_sum(m.running for m in variants),
        waiting=_sum(m.waiting for m in variants),
        kv_cache_usage=_mean_over_replicas(variants),
        spec_decode_acceptance=_ratio(
            _sum(m.spec_decode_accepted_per_s for m in variants),
            _sum(m.spec_decode_draft_per_s for m in variants),
        ),
    )


def _figures(
    variant: str, m: VariantMetrics, metric: LatencyMetric, q: float, label: str
) -> VariantObserved:
    hist = m.latency.get(metric)
    return VariantObserved(
        variant=variant,
        requests_per_s=m.requests_per_s,
        replicas_reporting=m.replicas_reporting,
        latency=hist.quantile(q) if hist is not None else None,
        latency_label=label,
        running=m.running,
        waiting=m.waiting,
        kv_cache_usage=m.kv_cache_usage,
        tokens_per_request=m.tokens_per_request,
        spec_decode_acceptance=m.spec_decode_acceptance,
        arrivals_per_s=m.arrivals_per_s,
        aborted_per_s=m.aborted_per_s,
        prompt_tokens_per_request=m.prompt_tokens_per_request,
        output_tokens_per_request=m.generation_tokens_per_request,
        errored_per_s=m.errored_per_s,
        finished_total=m.finished_total,
        errors_total=m.errors_total,
        aborts_total=m.aborts_total,
    )


def _sum(values: Iterable[float | None]) -> float | None:
    """Sum of the known values; None when none is known (not zero)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _mean_over_replicas(variants: Sequence[VariantMetrics]) -> float | None:
    """KV-cache usage averaged over replicas (each variant's mean weighted by its replicas)."""
    pairs = [
        (m.kv_cache_usage, m.replicas_reporting or 1)
        for m in variants
        if m.kv_cache_usage is not None
    ]
    weight = sum(w for _, w in pairs)
    return sum(u * w for u, w in pairs) / weight if weight else None


def _merged_quantile(
    variants: Sequence[VariantMetrics], metric: LatencyMetric, q: float
) -> Quantile | None:
    """The q-quantile of all variants' requests together: bucket rates summed per edge
    (histogram_quantile merges equal edges), as `sum by (le)` would in PromQL."""
    edges: list[float] = []
    rates: list[float] = []
    for m in variants:
        hist = m.latency.get(metric)
        if hist is not None:
            edges += hist.upper_bounds_s
            rates += hist.rates_per_s
    return histogram_quantile(q, edges, rates) if edges else None


def _tokens_per_request(variants: Mapping[str, VariantMetrics]) -> float | None:
    """Served-request-weighted mean of prompt + generated tokens per request."""
    prompt, output = _mix(variants)
    return prompt + output if prompt is not None and output is not None else None


def _arrivals(variants: Mapping[str, VariantMetrics]) -> float | None:
    """Sum of arrivals (completions + queue growth) over the variants; a variant without a
    queue-growth series counts its completions; None when no variant has one."""
    if all(m.queue_growth_per_s is None for m in variants.values()):
        return None
    total = 0.0
    for m in variants.values():
        arrivals = m.arrivals_per_s
        total += arrivals if arrivals is not None else (m.requests_per_s or 0.0)
    return total


def _mix(variants: Mapping[str, VariantMetrics]) -> tuple[float | None, float | None]:
    """Served-request-weighted prompt and generated tokens per request over the variants that
    report both; (None, None) without any."""
    prompt = output = requests = 0.0
    for m in variants.values():
        p, g, r = m.prompt_tokens_per_s, m.generation_tokens_per_s, m.served_per_s
        if p is None or g is None or r is None:
            continue
        prompt, output, requests = prompt + p, output + g, requests + r
    if requests <= 0:
        return None, None
    return prompt / requests, output / requests


def _notes(
    snapshot: MetricsSnapshot, figures: Mapping[str, VariantObserved], metric: LatencyMetric
) -> tuple[str, ...]:
    out = []
    if snapshot.problem:
        out.append(f"{snapshot.source}: {snapshot.problem}")
    for v, f in figures.items():
        if f.requests_per_s is None:
            out.append(f"variant {v}: no request rate yet (not counted in the load)")
        if f.latency is None and f.requests_per_s:
            out.append(f"variant {v}: no {LATENCY_METRIC_NAMES[metric]} observations")
    return tuple(out)
