"""vLLM V1's Prometheus metrics, with vLLM's exact names, types, labels and bucket edges,
registered in a per-server CollectorRegistry (never the global one).

Names and buckets follow vLLM 0.33 (vllm/v1/metrics/loggers.py, vllm/v1/metrics/buckets.py)
as listed in DESIGN.md. Every metric carries `model_name` (the served model name) and
`engine` ("0"); `vllm:request_success_total` also `finished_reason` (stop, length, abort,
error: a request answered HTTP 500, as vLLM's FinishReason.ERROR).
Latencies are observed in model seconds (wall seconds x --sim-time-scale).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_BUCKETS_S = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
FINISHED_REASONS = ("stop", "length", "abort", "error")
ENGINE = "0"


@dataclass(frozen=True)
class FinishedRequest:
    """What the metrics record about one finished request (model seconds)."""

    finished_reason: str
    e2e_s: float
    queue_s: float
    prefill_s: float | None  # None when aborted before the first token
    decode_s: float | None
    output_tokens: int


class FastHistogram(Collector):
    """A labelled-once histogram with cumulative bucket counts kept in a list: observe() is
    a bisect and two additions (prometheus_client's Histogram takes a lock per call, which
    dominates the engine loop at thousands of observations per step)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], labels: dict[str, str]
    ) -> None:
        self.name, self.documentation = name, documentation
        self.edges = tuple(float(b) for b in buckets)
        self.labels = labels
        self.counts = [0] * (len(self.edges) + 1)  # per bucket (not cumulative), +Inf last
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.edges, value)] += 1
        self.sum += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation,
                                       labels=list(self.labels))  # fmt: skip
        cumulative, buckets = 0, []
        for edge, count in zip((*self.edges, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if edge == float("inf") else repr(edge), cumulative))
        family.add_metric(list(self.labels.values()), buckets, self.sum)
        yield family

    def describe(self) -> Iterator[Metric]:
        return self.collect()


class VllmMetrics:
    """The vLLM V1 metric families for one engine, in their own registry."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model_name = model_name
        labels = ("model_name", "engine")
        reg = self.registry
        self._success = Counter(
            "vllm:request_success", "Count of successfully processed requests.",
            (*labels, "finished_reason"), registry=reg,
        )  # fmt: skip
        self._prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg
        )
        self._generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=reg
        )
        self._preemptions = Counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels,
            registry=reg,
        )  # fmt: skip
        self._spec_accepted = Counter(
            "vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", labels,
            registry=reg,
        )  # fmt: skip
        self._spec_draft = Counter(
            "vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", labels, registry=reg
        )
        self._running = Gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", labels,
            registry=reg, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels,
            registry=reg, multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._kv_usage = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels,
            registry=reg, multiprocess_mode="mostrecent",
        )  # fmt: skip

        label_values = {"model_name": model_name, "engine": ENGINE}

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> FastHistogram:
            h = FastHistogram(name, doc, buckets, label_values)
            reg.register(h)
            return h

        self._ttft = hist(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            TTFT_BUCKETS_S,
        )  # fmt: skip
        self._itl = hist(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS_S,
        )  # fmt: skip
        self._tpot = hist(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.", ITL_BUCKETS_S,
        )  # fmt: skip
        self._e2e = hist(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.", REQUEST_BUCKETS_S,
        )  # fmt: skip
        self._queue = hist(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.", REQUEST_BUCKETS_S,
        )  # fmt: skip
        self._prefill = hist(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.", REQUEST_BUCKETS_S,
        )  # fmt: skip
        self._decode = hist(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.", REQUEST_BUCKETS_S,
        )  # fmt: skip
        lv = (model_name, ENGINE)
        for reason in FINISHED_REASONS:  # vLLM creates every reason's series up front
            self._success.labels(*lv, reason)
        for metric in (
            self._prompt_tokens, self._generation_tokens, self._preemptions, self._spec_accepted,
            self._spec_draft, self._running, self._waiting, self._kv_usage,
        ):  # fmt: skip
            metric.labels(*lv)
        self._lv = lv

    def set_scheduler_state(self, running: int, waiting: int, kv_usage: float) -> None:
        self._running.labels(*self._lv).set(running)
        self._waiting.labels(*self._lv).set(waiting)
        self._kv_usage.labels(*self._lv).set(kv_usage)

    def record_step(
        self,
        generation_tokens: int,
        itl_s: tuple[float, ...],
        draft_tokens: int,
        accepted_tokens: int,
        preemptions: int,
    ) -> None:
        """Counters and the ITL histogram after one engine step."""
        lv = self._lv
        if generation_tokens:
            self._generation_tokens.labels(*lv).inc(generation_tokens)
        if draft_tokens:
            self._spec_draft.labels(*lv).inc(draft_tokens)
            self._spec_accepted.labels(*lv).inc(accepted_tokens)
        if preemptions:
            self._preemptions.labels(*lv).inc(preemptions)
        observe = self._itl.observe
        for value in itl_s:
            observe(value)

    def record_first_token(self, ttft_s: float, prompt_tokens: int) -> None:
        """TTFT and the prompt tokens of a request whose prefill just finished."""
        self._ttft.observe(ttft_s)
        self._prompt_tokens.labels(*self._lv).inc(prompt_tokens)

    def record_error(self) -> None:
        """A request that failed with an internal error (answered HTTP 500): counted with
        finished_reason="error"; it produced no token and no latency observation."""
        self._success.labels(*self._lv, "error").inc()

    def record_finished(self, done: FinishedRequest) -> None:
        """Per-request histograms and the success counter."""
        lv = self._lv
        self._success.labels(*lv, done.finished_reason).inc()
        self._e2e.observe(done.e2e_s)
        self._queue.observe(done.queue_s)
        if done.prefill_s is not None:
            self._prefill.observe(done.prefill_s)
        if done.decode_s is not None:
            self._decode.observe(done.decode_s)
            if done.output_tokens > 1:
                self._tpot.observe(done.decode_s / (done.output_tokens - 1))
