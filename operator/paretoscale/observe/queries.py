"""The named PromQL templates the poller runs every tick, and the one place label values are escaped.

Every query is grouped `by (namespace, modeldeployment, variant)` (labels the operator puts on
its pods, which the scrape config turns into metric labels), so the number of queries per tick
is fixed: it does not grow with the number of ModelDeployments. Latency comes back as bucket
rates (`by (..., le)`), and the quantile for whatever percentile a ModelDeployment asks for is
computed in Python (observe/histogram.py), so one query serves every SLO.

Templates use `string.Template` placeholders, because PromQL is full of braces:

- `$window`: the rate() range, from settings.rate_window (a PromQL duration such as `2m`);
- `$selector`: label matchers without braces (empty, or `namespace=~"a|b"` when the operator
  watches some namespaces only), built by `selector_for()`, which escapes the values (PromQL
  accepts the trailing comma `{finished_reason="abort",}` leaves when it is empty).

Demand: vLLM counts finished requests (`vllm:request_success_total` by `finished_reason`:
stop, length, abort for clients that gave up, error for requests answered HTTP 500) but no
arrivals, so arrivals per variant = request_rate + queue_growth, the slope (`deriv`) of
running + waiting requests over the same window: a saturated replica finishes at its capacity
while its queue grows at the rest of the demand. `request_rate` and `request_totals` keep
`finished_reason` in their `by (...)`, so one query gives the load and the abort and error
rates (observe/snapshot.py splits them), and one the counts a rollout analysis needs.

Each template can be replaced by name from the settings' queries_file (YAML: name -> PromQL);
`load_templates()` refuses unknown names and unknown placeholders. An override must keep the
output labels the parser reads: `namespace`, `modeldeployment`, `variant` (and `le` for the
latency buckets, the `label_<key>` of each GPU node label key for the GPU price).

The GPU price joins OpenCost's per-node price to kube-state-metrics' `kube_node_labels` on
the node label keys of the GPU type mapping (api/accelerators.py; `gpu_price_query`, default
`nvidia.com/gpu.product`). kube-state-metrics exports node labels only when allowed:
`--metric-labels-allowlist=nodes=[nvidia.com/gpu.product,...]`; without it no live price
is found and the spec's prices apply.

vLLM 0.33 names only: never `vllm:gpu_cache_usage_perc` or `vllm:time_per_output_token_seconds`,
which are gone.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from paretoscale.errors import SpecError

GROUP_LABELS = ("namespace", "modeldeployment", "variant")
GPU_PRODUCT_LABEL = "label_nvidia_com_gpu_product"
_NOT_IN_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
PLACEHOLDERS = frozenset({"window", "selector"})
LatencyMetric = Literal["e2e", "ttft", "itl"]

_BY = "namespace, modeldeployment, variant"
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class QueryTemplate:
    """One named PromQL query: what it measures, and its text with `$window`/`$selector`."""

    name: str
    description: str
    promql: str

    def render(self, window: str, selector: str = "") -> str:
        """The PromQL to send. `window` must be a PromQL duration; `selector` from selector_for()."""
        return string.Template(self.promql).substitute(window=window, selector=selector)


def _rate(name: str, metric: str, description: str) -> QueryTemplate:
    return QueryTemplate(
        name, description, f"sum by ({_BY}) (rate({metric}{{$selector}}[$window]))"
    )


def _buckets(name: str, metric: str, description: str) -> QueryTemplate:
    return QueryTemplate(
        name, description, f"sum by ({_BY}, le) (rate({metric}{{$selector}}[$window]))"
    )


def node_label(key: str) -> str:
    """The label kube-state-metrics gives node label `key` on kube_node_labels:
    `nvidia.com/gpu.product` -> `label_nvidia_com_gpu_product`."""
    return "label_" + _NOT_IN_LABEL_NAME.sub("_", key)


def gpu_price_query(label_keys: Iterable[str]) -> QueryTemplate:
    """USD per GPU-hour by the GPU node labels `label_keys` (the GPU type mapping's keys)."""
    labels = ", ".join(node_label(k) for k in label_keys)
    return QueryTemplate(
        "gpu_price",
        "USD per GPU-hour by GPU node label: OpenCost's node_gpu_hourly_cost joined to "
        "kube-state-metrics' node labels of the GPU type mapping (default "
        "nvidia.com/gpu.product), averaged over nodes.",
        f"avg by ({labels}) (node_gpu_hourly_cost * on (node) "
        f"group_left ({labels}) kube_node_labels)",
    )


def _gauge(name: str, aggregation: str, metric: str, description: str) -> QueryTemplate:
    return QueryTemplate(name, description, f"{aggregation} by ({_BY}) ({metric}{{$selector}})")


DEFAULT_TEMPLATES: Mapping[str, QueryTemplate] = MappingProxyType(
    {
        t.name: t
        for t in (
            QueryTemplate(
                "request_rate",
                "Finished requests per second by finish reason (stop, length, abort: clients "
                "that gave up, error: answered HTTP 500); the load is their sum.",
                f"sum by ({_BY}, finished_reason) "
                "(rate(vllm:request_success_total{$selector}[$window]))",
            ),
            _buckets(
                "e2e_latency_buckets",
                "vllm:e2e_request_latency_seconds_bucket",
                "End-to-end request latency histogram, as bucket rates per second.",
            ),
            _buckets(
                "ttft_buckets",
                "vllm:time_to_first_token_seconds_bucket",
                "Time-to-first-token histogram, as bucket rates per second.",
            ),
            _buckets(
                "itl_buckets",
                "vllm:inter_token_latency_seconds_bucket",
                "Inter-token latency histogram, as bucket rates per second.",
            ),
            QueryTemplate(
                "request_totals",
                "Requests finished since each replica started, by finish reason (the counter "
                "itself): what a rollout target served during verification, and how many "
                "of those failed or were aborted.",
                f"sum by ({_BY}, finished_reason) (vllm:request_success_total{{$selector}})",
            ),
            QueryTemplate(
                "queue_growth",
                "Growth of running + waiting requests per second (deriv over the rate window); "
                "arrivals = request_rate + queue_growth, since vLLM counts no arrivals.",
                f"sum by ({_BY}) (deriv(vllm:num_requests_running{{$selector}}[$window]) "
                f"+ deriv(vllm:num_requests_waiting{{$selector}}[$window]))",
            ),
            _rate(
                "prompt_tokens_rate",
                "vllm:prompt_tokens_total",
                "Prompt tokens per second (divided by the request rate: prompt tokens/request).",
            ),
            _rate(
                "generation_tokens_rate",
                "vllm:generation_tokens_total",
                "Generated tokens per second (divided by the request rate: output tokens/request).",
            ),
            _gauge(
                "requests_running", "sum", "vllm:num_requests_running", "Requests being served."
            ),
            _gauge("requests_waiting", "sum", "vllm:num_requests_waiting", "Requests queued."),
            _gauge(
                "kv_cache_usage",
                "avg",
                "vllm:kv_cache_usage_perc",
                "KV-cache usage, a fraction 0-1, averaged over replicas.",
            ),
            _rate(
                "spec_decode_accepted_rate",
                "vllm:spec_decode_num_accepted_tokens_total",
                "Accepted speculative tokens per second.",
            ),
            _rate(
                "spec_decode_draft_rate",
                "vllm:spec_decode_num_draft_tokens_total",
                "Proposed (draft) speculative tokens per second; accepted/draft = acceptance.",
            ),
            _gauge(
                "replicas_reporting",
                "count",
                "vllm:num_requests_running",
                "vLLM engines (replicas) Prometheus scrapes, per variant.",
            ),
            gpu_price_query(("nvidia.com/gpu.product",)),
        )
    }
)

# Which latency histogram each SLO metric (spec.slo.latency) reads.
LATENCY_QUERIES: Mapping[LatencyMetric, str] = MappingProxyType(
    {"e2e": "e2e_latency_buckets", "ttft": "ttft_buckets", "itl": "itl_buckets"}
)
# The vLLM metric behind each SLO metric, for explanations.
LATENCY_METRIC_NAMES: Mapping[LatencyMetric, str] = MappingProxyType(
    {
        "e2e": "vllm:e2e_request_latency_seconds",
        "ttft": "vllm:time_to_first_token_seconds",
        "itl": "vllm:inter_token_latency_seconds",
    }
)
RATE_QUERY = "request_rate"
TOTALS_QUERY = "request_totals"
FINISHED_REASON_LABEL = "finished_reason"
QUEUE_GROWTH_QUERY = "queue_growth"
PRICE_QUERY = "gpu_price"


def promql_string(value: str) -> str:
    """`value` as a double-quoted PromQL string literal (backslash, quote, newline escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_literal(value: str) -> str:
    """`value` as an RE2 pattern matching exactly that text."""
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def selector_for(labels: Mapping[str, Iterable[str]]) -> str:
    """Label matchers (without braces) restricting each label to the given values.

    `{"namespace": ["llm", "a.b"]}` -> `namespace=~"llm|a\\\\.b"`. Labels with no values are not
    restricted. This is the only place label values enter PromQL.
    """
    parts = []
    for label, values in sorted(labels.items()):
        vals = sorted(set(values))
        if not vals:
            continue
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label):
            raise ValueError(f"invalid Prometheus label name {label!r}")
        pattern = "|".join(regex_literal(v) for v in vals)
        parts.append(f"{label}=~{promql_string(pattern)}")
    return ",".join(parts)


def check_window(window: str) -> str:
    """The rate window if it is a PromQL duration (`2m`, `90s`, `1m30s`); else SpecError."""
    if not _DURATION.fullmatch(window):
        raise SpecError(
            "rate_window", [f"{window!r} is not a PromQL duration; use e.g. 2m, 90s or 1m30s"]
        )
    return window


def check_template(template: QueryTemplate, source: str) -> None:
    """Refuse a template whose placeholders are not $window/$selector, or that is empty."""
    t = string.Template(template.promql)
    if not template.promql.strip():
        raise SpecError(source, [f"{template.name}: the query is empty"])
    if not t.is_valid():
        raise SpecError(
            source,
            [f"{template.name}: invalid '$' in the query; write $$ for a literal dollar sign"],
        )
    unknown = sorted(set(t.get_identifiers()) - PLACEHOLDERS)
    if unknown:
        raise SpecError(
            source,
            [
                f"{template.name}: unknown placeholder ${', $'.join(unknown)}; "
                f"the placeholders are $window and $selector"
            ],
        )


def apply_overrides(
    overrides: Mapping[Any, Any], source: str = "queries_file"
) -> Mapping[str, QueryTemplate]:
    """The default templates with some replaced by name; unknown names are refused."""
    valid = ", ".join(DEFAULT_TEMPLATES)
    unknown = sorted(str(k) for k in overrides if k not in DEFAULT_TEMPLATES)
    if unknown:
        raise SpecError(
            source, [f"unknown query name {', '.join(map(repr, unknown))}; valid names: {valid}"]
        )
    out = dict(DEFAULT_TEMPLATES)
    for name, promql in overrides.items():
        if not isinstance(promql, str):
            raise SpecError(
                source, [f"{name}: expected a PromQL string, got {type(promql).__name__}"]
            )
        template = QueryTemplate(name, DEFAULT_TEMPLATES[name].description, promql.strip())
        check_template(template, source)
        out[name] = template
    return MappingProxyType(out)


def load_templates(queries_file: str | None) -> Mapping[str, QueryTemplate]:
    """The templates to run: the defaults, overridden by the YAML file when one is given."""
    if queries_file is None:
        return DEFAULT_TEMPLATES
    try:
        text = Path(queries_file).read_text()
    except OSError as e:
        raise SpecError(queries_file, [f"cannot read the queries file: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(queries_file, [f"not valid YAML: {e}"]) from None
    if data is None:
        return DEFAULT_TEMPLATES
    if not isinstance(data, Mapping):
        raise SpecError(
            queries_file,
            [f"expected a mapping of query name -> PromQL, got {type(data).__name__}"],
        )
    return apply_overrides(data, queries_file)
