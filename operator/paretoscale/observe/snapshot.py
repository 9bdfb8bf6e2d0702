"""One tick of Prometheus results as immutable data, and the pure parser that builds it.

`build_snapshot()` turns the raw instant vectors of the named queries (Prometheus's JSON
`result` lists, or a `QueryFailure` for a query that failed) into a `MetricsSnapshot`: figures
per (namespace, modeldeployment, variant) and USD per GPU-hour per GPU type. It does no I/O,
so it is tested on recorded JSON.

Rules:
- A value that is NaN, infinite, negative or missing becomes None, never zero; only the queue
  growth (a slope) may be negative.
- A histogram with any such bucket is dropped (None), as is one without a +Inf bucket.
- A failed request-rate query fails the whole snapshot (`rate_failed`); the failure of another
  query empties only its fields. Every failure is written in `problem`, in words.
- request_rate and request_totals come by finished_reason: the figure is the sum over
  reasons, and "abort" and "error" give the aborted and failed requests (`_by_reason`).
- Series that lack the grouping labels, and GPU node labels no GPU type of the mapping
  (api/accelerators.py) carries, are skipped and reported in `notes`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.observe.histogram import Quantile, histogram_quantile
from paretoscale.observe.queries import (
    FINISHED_REASON_LABEL,
    GROUP_LABELS,
    LATENCY_QUERIES,
    PRICE_QUERY,
    QUEUE_GROWTH_QUERY,
    RATE_QUERY,
    TOTALS_QUERY,
    LatencyMetric,
    node_label,
)

Series = Mapping[str, Any]  # one element of a Prometheus instant vector: {"metric", "value"}
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class QueryFailure:
    """A query that did not answer: the message says what failed, in words."""

    message: str


@dataclass(frozen=True, order=True)
class VariantKey:
    """The labels that identify one variant's pods: namespace/modeldeployment/variant."""

    namespace: str
    modeldeployment: str
    variant: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.modeldeployment}/{self.variant}"


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram as bucket rates: `rates_per_s[i]` observations/s with value <= `upper_bounds_s[i]`."""

    upper_bounds_s: tuple[float, ...]  # ascending; the last is +Inf
    rates_per_s: tuple[float, ...]

    def quantile(self, q: float) -> Quantile | None:
        """The q-quantile (0-1) as Prometheus's histogram_quantile computes it; None if no data."""
        return histogram_quantile(q, self.upper_bounds_s, self.rates_per_s)

    @property
    def observations_per_s(self) -> float:
        return self.rates_per_s[-1] if self.rates_per_s else 0.0


@dataclass(frozen=True)
class VariantMetrics:
    """What Prometheus says about one variant. None = not measured, never zero."""

    requests_per_s: float | None = None  # finished, every finish reason
    latency: Mapping[LatencyMetric, Histogram] = field(default_factory=lambda: _EMPTY)
    aborted_per_s: float | None = None  # finished_reason="abort", part of requests_per_s
    errored_per_s: float | None = None  # finished_reason="error" (HTTP 500), part of it too
    # vllm:request_success_total itself, summed over replicas: requests finished since they
    # started, every reason, and of those errors and aborts (request_totals)
    finished_total: float | None = None
    errors_total: float | None = None
    aborts_total: float | None = None
    queue_growth_per_s: float | None = None  # d/dt (running + waiting); negative: draining
    prompt_tokens_per_s: float | None = None
    generation_tokens_per_s: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # fraction 0-1, mean over replicas
    spec_decode_accepted_per_s: float | None = None
    spec_decode_draft_per_s: float | None = None
    replicas_reporting: int | None = None

    @property
    def arrivals_per_s(self) -> float | None:
        """Requests arriving per second: finished + queue growth (vLLM counts no arrivals);
        None without both, never below zero."""
        if self.requests_per_s is None or self.queue_growth_per_s is None:
            return None
        return max(self.requests_per_s + self.queue_growth_per_s, 0.0)

    @property
    def served_per_s(self) -> float | None:
        """Finished requests other than aborted ones [req/s]: the ones the token counters
        count (a request aborted while it waited, e.g. on a client timeout, added no token);
        the replay's PromView divides the same way."""
        if self.requests_per_s is None:
            return None
        return max(0.0, self.requests_per_s - (self.aborted_per_s or 0.0))

    @property
    def prompt_tokens_per_request(self) -> float | None:
        return _per_request(self.prompt_tokens_per_s, self.served_per_s)

    @property
    def generation_tokens_per_request(self) -> float | None:
        return _per_request(self.generation_tokens_per_s, self.served_per_s)

    @property
    def tokens_per_request(self) -> float | None:
        """Prompt + generated tokens per served request; None without both or without requests."""
        p, g = self.prompt_tokens_per_request, self.generation_tokens_per_request
        return None if p is None or g is None else p + g

    @property
    def spec_decode_acceptance(self) -> float | None:
        """Accepted / proposed speculative tokens (0-1); None without speculative decoding."""
        return _per_request(self.spec_decode_accepted_per_s, self.spec_decode_draft_per_s)


def _per_request(numerator: float | None, requests_per_s: float | None) -> float | None:
    if numerator is None or requests_per_s is None or requests_per_s <= 0:
        return None
    return numerator / requests_per_s


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything one poll learned, at one instant `at` [s since epoch]. Immutable.

    `problem` is None when every query answered; otherwise it says which failed and why.
    `failed_queries` names them; when it includes the request-rate query, the snapshot holds
    no load figure at all (`rate_failed`), which readers must treat as "metrics unavailable".
    """

    at: float
    problem: str | None
    variants: Mapping[VariantKey, VariantMetrics]
    gpu_prices_usd_per_hour: Mapping[str, float]
    queries_run: int
    failed_queries: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    source: str = "Prometheus"  # e.g. "Prometheus at http://prometheus:9090", for messages

    @property
    def rate_failed(self) -> bool:
        return RATE_QUERY in self.failed_queries

    @property
    def price_failed(self) -> bool:
        return PRICE_QUERY in self.failed_queries

    def for_modeldeployment(self, namespace: str, name: str) -> dict[str, VariantMetrics]:
        """This ModelDeployment's variants (by variant name) that have any series."""
        return dict(self._by_modeldeployment.get((namespace, name), {}))

    @cached_property
    def _by_modeldeployment(self) -> dict[tuple[str, str], dict[str, VariantMetrics]]:
        """The variants grouped once per snapshot, so each object's lookup costs the same
        whatever the size of the fleet."""
        out: dict[tuple[str, str], dict[str, VariantMetrics]] = {}
        for k, v in self.variants.items():
            out.setdefault((k.namespace, k.modeldeployment), {})[k.variant] = v
        return out


def failed_snapshot(at: float, problem: str, queries_run: int, source: str) -> MetricsSnapshot:
    """A snapshot that knows nothing but why: every query counts as failed."""
    return MetricsSnapshot(
        at=at,
        problem=problem,
        variants=_EMPTY,
        gpu_prices_usd_per_hour=_EMPTY,
        queries_run=queries_run,
        failed_queries=(RATE_QUERY,),
        source=source,
    )


def sample_value(series: Series, signed: bool = False) -> float | None:
    """The float of a series' `value` pair ([ts, "1.5"]); None if missing, NaN, inf or
    (unless `signed`) negative."""
    pair = series.get("value")
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    try:
        x = float(pair[1])
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x) or (x < 0 and not signed):
        return None
    return x


# Query name -> VariantMetrics fields (all reasons, abort, error) for the queries by
# finished_reason.
_REASON_FIELDS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        RATE_QUERY: ("requests_per_s", "aborted_per_s", "errored_per_s"),
        TOTALS_QUERY: ("finished_total", "aborts_total", "errors_total"),
    }
)
# Query name -> VariantMetrics field, for the plain per-variant figures.
_SCALAR_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        QUEUE_GROWTH_QUERY: "queue_growth_per_s",
        "prompt_tokens_rate": "prompt_tokens_per_s",
        "generation_tokens_rate": "generation_tokens_per_s",
        "requests_running": "running",
        "requests_waiting": "waiting",
        "kv_cache_usage": "kv_cache_usage",
        "spec_decode_accepted_rate": "spec_decode_accepted_per_s",
        "spec_decode_draft_rate": "spec_decode_draft_per_s",
        "replicas_reporting": "replicas_reporting",
    }
)


def _key(series: Series) -> VariantKey | None:
    labels = series.get("metric")
    if not isinstance(labels, Mapping):
        return None
    values = [labels.get(label) for label in GROUP_LABELS]
    if not all(isinstance(v, str) and v for v in values):
        return None
    return VariantKey(*values)  # type: ignore[arg-type]


def build_snapshot(
    at: float,
    results: Mapping[str, Sequence[Series] | QueryFailure],
    queries_run: int,
    source: str = "Prometheus",
    gpus: GpuTypes = BUILTIN,
) -> MetricsSnapshot:
    """Parse one tick's query results into a snapshot. Pure.

    `gpus`: the GPU type mapping whose node labels name the GPU type of each price series.

    `results` maps query name (observe/queries.py) to its instant vector or its failure.
    Query names that are absent count as not run: their fields stay None.
    """
    failed = tuple(n for n, r in results.items() if isinstance(r, QueryFailure))
    problems = [f"{n}: {r.message}" for n, r in results.items() if isinstance(r, QueryFailure)]
    notes: list[str] = []
    fields: dict[VariantKey, dict[str, Any]] = {}

    def note_unlabelled(name: str, count: int, extra: str = "") -> None:
        if count:
            notes.append(
                f"{name}: {count} series without labels {', '.join(GROUP_LABELS)}{extra} "
                "ignored; an overriding query must keep them in its `by (...)`"
            )

    for name, attr in _SCALAR_FIELDS.items():
        result = results.get(name)
        if result is None or isinstance(result, QueryFailure):
            continue
        unlabelled = 0
        for series in result:
            key = _key(series)
            if key is None:
                unlabelled += 1
                continue
            signed = name == QUEUE_GROWTH_QUERY
            x = sample_value(series, signed)
            if x is None:
                kind = "a number" if signed else "a number >= 0"
                notes.append(f"{name} for {key}: value {_raw(series)} is not {kind}; ignored")
            entry = fields.setdefault(key, {})
            if attr == "replicas_reporting":
                entry[attr] = None if x is None else round(x)
            else:
                entry[attr] = x
        note_unlabelled(name, unlabelled)

    for name, attrs in _REASON_FIELDS.items():
        result = results.get(name)
        if result is None or isinstance(result, QueryFailure):
            continue
        for key, figures in _by_reason(name, result, notes).items():
            fields.setdefault(key, {}).update(zip(attrs, figures, strict=True))

    for metric, name in LATENCY_QUERIES.items():
        result = results.get(name)
        if result is None or isinstance(result, QueryFailure):
            continue
        for key, hist_or_note in _histograms(name, result, notes).items():
            latency = fields.setdefault(key, {}).setdefault("latency", {})
            if hist_or_note is not None:
                latency[metric] = hist_or_note

    variants = {
        key: VariantMetrics(
            **{
                **entry,
                "latency": MappingProxyType(dict(entry.get("latency", {}))),
            }
        )
        for key, entry in sorted(fields.items())
    }
    prices = _prices(results.get(PRICE_QUERY), notes, gpus)
    return MetricsSnapshot(
        at=at,
        problem="; ".join(problems) or None,
        variants=MappingProxyType(variants),
        gpu_prices_usd_per_hour=MappingProxyType(prices),
        queries_run=queries_run,
        failed_queries=failed,
        notes=tuple(notes),
        source=source,
    )


def _by_reason(
    name: str, result: Sequence[Series], notes: list[str]
) -> dict[VariantKey, tuple[float | None, float | None, float | None]]:
    """Per variant (all reasons summed, abort, error) from series by finished_reason.

    The sum is None when a series' value is not a number >= 0. Where series carry
    finished_reason, a reason without a series counts 0 (vLLM creates every reason's series
    up front; a version without that reason never counts it); without the label (an override
    that sums over reasons) abort and error are unknown (None)."""
    values: dict[VariantKey, list[float | None]] = {}
    reasons: dict[VariantKey, dict[str, float | None]] = {}
    labelled: set[VariantKey] = set()
    unlabelled = 0
    for series in result:
        key = _key(series)
        if key is None:
            unlabelled += 1
            continue
        x = sample_value(series)
        if x is None:
            notes.append(f"{name} for {key}: value {_raw(series)} is not a number >= 0; ignored")
        values.setdefault(key, []).append(x)
        reason = series["metric"].get(FINISHED_REASON_LABEL)
        if isinstance(reason, str):
            labelled.add(key)
            mine = reasons.setdefault(key, {})
            mine[reason] = _plus(mine.get(reason, 0.0), x)
    if unlabelled:
        notes.append(
            f"{name}: {unlabelled} series without labels {', '.join(GROUP_LABELS)} ignored; "
            "an overriding query must keep them in its `by (...)`"
        )
    out: dict[VariantKey, tuple[float | None, float | None, float | None]] = {}
    for key, xs in values.items():
        total = None if any(x is None for x in xs) else sum(x for x in xs if x is not None)
        if key not in labelled:
            out[key] = (total, None, None)
            continue
        mine = reasons[key]
        out[key] = (total, mine.get("abort", 0.0), mine.get("error", 0.0))
    return out


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _raw(series: Series) -> str:
    pair = series.get("value")
    if isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
        return repr(pair[1])
    return "missing"


def _histograms(
    name: str, result: Sequence[Series], notes: list[str]
) -> dict[VariantKey, Histogram | None]:
    buckets: dict[VariantKey, list[tuple[float, float | None]]] = {}
    unlabelled = 0
    for series in result:
        key = _key(series)
        labels = series.get("metric")
        le_text = labels.get("le") if isinstance(labels, Mapping) else None
        if key is None or not isinstance(le_text, str):
            unlabelled += 1
            continue
        try:
            le = float(le_text)
        except ValueError:
            unlabelled += 1
            continue
        buckets.setdefault(key, []).append((le, sample_value(series)))
    if unlabelled:
        notes.append(
            f"{name}: {unlabelled} series without labels {', '.join(GROUP_LABELS)} and a "
            "numeric le ignored; an overriding query must keep them in its `by (...)`"
        )
    out: dict[VariantKey, Histogram | None] = {}
    for key, pairs in buckets.items():
        pairs.sort(key=lambda p: p[0])
        if any(rate is None for _, rate in pairs) or any(math.isnan(le) for le, _ in pairs):
            notes.append(f"{name} for {key}: a bucket is not a number >= 0; histogram ignored")
            out[key] = None
            continue
        if not math.isinf(pairs[-1][0]):
            notes.append(f'{name} for {key}: no le="+Inf" bucket; histogram ignored')
            out[key] = None
            continue
        out[key] = Histogram(
            tuple(le for le, _ in pairs), tuple(rate for _, rate in pairs if rate is not None)
        )
    return out


def _prices(
    result: Sequence[Series] | QueryFailure | None, notes: list[str], gpus: GpuTypes
) -> dict[str, float]:
    if result is None or isinstance(result, QueryFailure):
        return {}
    sums: dict[str, list[float]] = {}
    for series in result:
        metric = series.get("metric")
        labels = metric if isinstance(metric, Mapping) else {}
        shown = {
            k: labels[node_label(k)]
            for k in gpus.label_keys
            if isinstance(labels.get(node_label(k)), str) and labels[node_label(k)]
        }
        if not shown:
            wanted = ", ".join(node_label(k) for k in gpus.label_keys)
            notes.append(f"{PRICE_QUERY}: a series without any of {wanted} ignored")
            continue
        gpu_type = gpus.type_of(shown)
        if gpu_type is None:
            notes.append(
                f"{PRICE_QUERY}: GPU node label {shown} is no GPU type of the mapping; "
                "price ignored"
            )
            continue
        x = sample_value(series)
        if x is None:
            notes.append(f"{PRICE_QUERY} for {gpu_type}: value {_raw(series)} ignored")
            continue
        sums.setdefault(gpu_type, []).append(x)
    # One product label per type in the table, so each list has one value; a mean keeps an
    # override that returns several series per product honest.
    return {t: sum(v) / len(v) for t, v in sorted(sums.items())}
