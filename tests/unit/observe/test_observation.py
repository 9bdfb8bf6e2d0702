"""observation_for(): load, prices and per-variant figures for one ModelDeployment, and the
words for every way the load can be unavailable (never zero)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState
from paretoscale.observe.histogram import Quantile
from paretoscale.observe.observation import NO_PROMETHEUS, VariantObserved, observation_for
from paretoscale.observe.snapshot import (
    MetricsSnapshot,
    QueryFailure,
    build_snapshot,
    failed_snapshot,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"
RECORDED = Path(__file__).parent / "data" / "recorded_tick.json"
SOURCE = "Prometheus at http://prometheus:9090"
AT = 10_000.0


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


@pytest.fixture(scope="module")
def recorded() -> MetricsSnapshot:
    data = json.loads(RECORDED.read_text())
    return build_snapshot(data["at"], data["results"], 13, SOURCE)


def snapshot(results: dict[str, Any], at: float = AT) -> MetricsSnapshot:
    return build_snapshot(at, results, len(results), SOURCE)


def rate(variant: str, value: str, namespace: str = "llm", md: str = "assistant") -> dict[str, Any]:
    labels = {"namespace": namespace, "modeldeployment": md, "variant": variant}
    return {"metric": labels, "value": [AT, value]}


def by_reason(variant: str, value: str, reason: str) -> dict[str, Any]:
    series = rate(variant, value)
    return {**series, "metric": {**series["metric"], "finished_reason": reason}}


def test_recorded_tick(recorded: MetricsSnapshot, spec: ModelDeploymentSpec) -> None:
    seen = observation_for(
        recorded,
        "llm",
        "assistant",
        spec,
        now=recorded.at + 5,
        stale_after_s=120,
        price_fallback={"L40S": 1.2, "A100": 1.0},
    )
    obs = seen.observation
    assert seen.live
    assert obs.at == recorded.at + 5
    assert obs.requests_per_s == pytest.approx(8.5, rel=0.01)  # 6 + 2 + 0.5 over the variants
    assert obs.metrics_problem is None
    assert obs.tokens_per_request == pytest.approx(1200, rel=0.01)
    # Live where Prometheus has a price, else the fallback; only the spec's GPU types.
    assert obs.usd_per_gpu_hour == {"H100": pytest.approx(6.88), "L40S": 1.2}
    assert seen.price_basis == {"H100": "live", "L40S": "fallback"}
    assert set(seen.variants) == {"bf16", "bf16-eagle3", "w4a16-l40s"}
    bf16 = seen.variants["bf16"]
    assert bf16.latency_label == "p95 e2e"
    assert bf16.latency is not None and bf16.latency.value == pytest.approx(4.0)
    assert (bf16.latency.lower_edge, bf16.latency.upper_edge) == (2.5, 5.0)
    assert (
        bf16.latency_text() == "p95 e2e 4 s (interpolated between the 2.5 s and 5 s bucket edges)"
    )
    assert bf16.requests_per_replica_s == pytest.approx(3.0, rel=0.01)
    assert seen.variants["bf16-eagle3"].spec_decode_acceptance == pytest.approx(0.7, rel=0.01)
    assert seen.notes == ()
    # Over the whole ModelDeployment (4 pods, 3 running and 1 waiting each).
    assert (seen.running, seen.waiting) == (12.0, 4.0)
    assert seen.kv_cache_usage == pytest.approx(0.42)
    assert seen.spec_decode_acceptance == pytest.approx(0.7, rel=0.01)
    assert seen.latency is not None and seen.latency.value == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("latency", "percentile", "text"),
    [
        ("ttft", 50, "p50 ttft 0.0467 s (interpolated between the 0.04 s and 0.06 s bucket edges)"),
        ("itl", 99, "p99 itl 0.07 s (interpolated between the 0.05 s and 0.075 s bucket edges)"),
        ("e2e", 99.9, "p99.9 e2e above 7680 s, the highest bucket edge (reported as 7680 s)"),
    ],
    ids=["ttft-p50", "itl-p99", "e2e-p99.9-overflow"],
)
def test_latency_at_the_spec_slo(
    recorded: MetricsSnapshot, spec: ModelDeploymentSpec, latency: str, percentile: float, text: str
) -> None:
    slo = spec.slo.model_copy(update={"latency": latency, "percentile": percentile})
    other = spec.model_copy(update={"slo": slo})
    seen = observation_for(recorded, "llm", "assistant", other, recorded.at, 120, {})
    assert seen.variants["bf16"].latency_text() == text


def test_no_prometheus(spec: ModelDeploymentSpec) -> None:
    seen = observation_for(None, "llm", "assistant", spec, AT, 120, {"H100": 2.0})
    assert not seen.live
    assert seen.observation.requests_per_s is None
    assert (
        seen.observation.metrics_problem
        == NO_PROMETHEUS
        == "no Prometheus configured: deciding on priors"
    )
    assert seen.observation.usd_per_gpu_hour == {"H100": 2.0}
    assert seen.price_basis == {"H100": "fallback", "L40S": "spec"}


def test_stale_snapshot(recorded: MetricsSnapshot, spec: ModelDeploymentSpec) -> None:
    seen = observation_for(recorded, "llm", "assistant", spec, recorded.at + 300, 120, {})
    assert seen.observation.requests_per_s is None
    assert seen.observation.metrics_problem == "metrics snapshot is 300 s old, older than 120 s"
    assert seen.observation.usd_per_gpu_hour == {}  # a stale snapshot's prices are not live
    assert seen.price_basis == {"H100": "spec", "L40S": "spec"}
    # Just inside the limit it is fresh.
    assert observation_for(recorded, "llm", "assistant", spec, recorded.at + 120, 120, {}).live


def test_stale_failed_snapshot_says_both(spec: ModelDeploymentSpec) -> None:
    down = failed_snapshot(AT, f"{SOURCE}: connection refused", 1, SOURCE)
    seen = observation_for(down, "llm", "assistant", spec, AT + 600, 120, {})
    assert seen.observation.metrics_problem == (
        f"metrics snapshot is 600 s old, older than 120 s (last poll: {SOURCE}: connection refused)"
    )


def test_failed_query_is_unavailable_not_zero(spec: ModelDeploymentSpec) -> None:
    down = failed_snapshot(AT, f"{SOURCE}: connection refused", 1, SOURCE)
    seen = observation_for(down, "llm", "assistant", spec, AT, 120, {"L40S": 1.2})
    assert seen.observation.requests_per_s is None
    assert seen.observation.metrics_problem == f"{SOURCE}: connection refused"
    assert seen.observation.usd_per_gpu_hour == {"L40S": 1.2}
    # decide() keeps what runs instead of scaling to the minimum.
    decision = decide(
        spec, seen.observation, CurrentState(active="fp8", replicas=3, variant_since=0.0)
    )
    assert (decision.action, decision.variant, decision.replicas) == ("hold", "fp8", 3)
    assert f"metrics unavailable ({SOURCE}: connection refused)" in decision.reasons[0]


def test_rate_query_error_answer(spec: ModelDeploymentSpec) -> None:
    snap = snapshot(
        {
            "request_rate": QueryFailure(f"{SOURCE} answered with an error: HTTP Status Code 400"),
            "gpu_price": [],
        }
    )
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    assert seen.observation.requests_per_s is None
    assert (
        seen.observation.metrics_problem
        == f"request_rate: {SOURCE} answered with an error: HTTP Status Code 400"
    )


def test_no_series_for_a_new_modeldeployment(spec: ModelDeploymentSpec) -> None:
    snap = snapshot({"request_rate": [rate("bf16", "3", md="other")]})
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    assert seen.observation.requests_per_s is None
    assert seen.observation.metrics_problem == (
        f"no vllm:request_success_total series for llm/assistant in {SOURCE} (no pods scraped yet?)"
    )
    # decide() falls back to the spec's expected rate (priors), not to zero.
    md = spec.model_copy(
        update={"traffic": spec.traffic.model_copy(update={"expected_requests_per_second": 12.0})}
    )
    decision = decide(md, seen.observation, CurrentState())
    assert decision.rate_basis == "priors" and decision.requests_per_s == 12.0


def test_same_name_in_another_namespace_is_not_mixed_in(spec: ModelDeploymentSpec) -> None:
    snap = snapshot({"request_rate": [rate("bf16", "3"), rate("bf16", "100", namespace="staging")]})
    assert (
        observation_for(snap, "llm", "assistant", spec, AT, 120, {}).observation.requests_per_s
        == 3.0
    )


def test_zero_load_is_live_zero(spec: ModelDeploymentSpec) -> None:
    snap = snapshot({"request_rate": [rate("bf16", "0")]})
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    assert seen.live and seen.observation.requests_per_s == 0.0
    assert seen.observation.tokens_per_request is None


def test_variant_without_a_rate_yet_is_not_counted(spec: ModelDeploymentSpec) -> None:
    # fp8 was just scaled up for a rollout: scraped once, so no rate() yet, but gauges exist.
    labels = {"namespace": "llm", "modeldeployment": "assistant", "variant": "fp8"}
    snap = snapshot(
        {
            "request_rate": [rate("bf16", "5")],
            "requests_running": [{"metric": labels, "value": [AT, "0"]}],
        }
    )
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    assert seen.observation.requests_per_s == 5.0
    assert seen.variants["fp8"].requests_per_s is None
    assert "variant fp8: no request rate yet (not counted in the load)" in seen.notes


def test_partial_failure_keeps_the_load_and_notes_it(spec: ModelDeploymentSpec) -> None:
    snap = snapshot(
        {"request_rate": [rate("bf16", "5")], "e2e_latency_buckets": QueryFailure("timeout")}
    )
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    assert seen.observation.requests_per_s == 5.0
    assert seen.observation.metrics_problem is None
    assert seen.variants["bf16"].latency is None
    assert seen.notes == (
        f"{SOURCE}: e2e_latency_buckets: timeout",
        "variant bf16: no vllm:e2e_request_latency_seconds observations",
    )


def test_tokens_per_request_is_request_weighted(spec: ModelDeploymentSpec) -> None:
    def s(variant: str, value: float) -> dict[str, Any]:
        return rate(variant, repr(value))

    snap = snapshot(
        {
            "request_rate": [s("bf16", 9.0), s("fp8", 1.0)],
            "prompt_tokens_rate": [s("bf16", 9.0 * 1000), s("fp8", 1.0 * 3000)],
            "generation_tokens_rate": [s("bf16", 9.0 * 100), s("fp8", 1.0 * 500)],
        }
    )
    obs = observation_for(snap, "llm", "assistant", spec, AT, 120, {}).observation
    assert obs.tokens_per_request == pytest.approx((9 * 1100 + 1 * 3500) / 10)


def test_capacity_factors_pass_through(
    recorded: MetricsSnapshot, spec: ModelDeploymentSpec
) -> None:
    obs = observation_for(
        recorded, "llm", "assistant", spec, recorded.at, 120, {}, {"bf16": 0.9}
    ).observation
    assert obs.capacity_factors == {"bf16": 0.9}


def test_latency_text_without_observations() -> None:
    v = VariantObserved("bf16", 0.0, 1, None, "p95 e2e")
    assert v.latency_text() == "p95 e2e: no observations in the window"
    assert VariantObserved("x", 2.0, 0, None, "p95 e2e").requests_per_replica_s is None
    lowest = VariantObserved("x", 2.0, 1, Quantile(-1.0, -1.0, -1.0, 3.0), "p95 e2e")
    assert lowest.latency_text() == "p95 e2e -1 s (the lowest bucket edge)"
    assert not math.isinf(lowest.latency.upper_edge)  # type: ignore[union-attr]


def test_latency_over_all_variants_sums_the_buckets(spec: ModelDeploymentSpec) -> None:
    def hist(variant: str, rates: dict[str, str]) -> list[dict[str, Any]]:
        labels = {"namespace": "llm", "modeldeployment": "assistant", "variant": variant}
        return [{"metric": {**labels, "le": le}, "value": [AT, v]} for le, v in rates.items()]

    # bf16: 10 req/s all within 1 s; fp8: 10 req/s all in (1 s, 2 s].
    snap = snapshot(
        {
            "request_rate": [rate("bf16", "10"), rate("fp8", "10")],
            "e2e_latency_buckets": hist("bf16", {"1.0": "10", "2.0": "10", "+Inf": "10"})
            + hist("fp8", {"1.0": "0", "2.0": "10", "+Inf": "10"}),
        }
    )
    slo = spec.slo.model_copy(update={"percentile": 75})
    seen = observation_for(
        snap, "llm", "assistant", spec.model_copy(update={"slo": slo}), AT, 120, {}
    )
    assert seen.variants["bf16"].latency.value == pytest.approx(0.75)  # type: ignore[union-attr]
    assert seen.variants["fp8"].latency.value == pytest.approx(1.75)  # type: ignore[union-attr]
    assert seen.latency is not None and seen.latency.value == pytest.approx(1.5)
    assert seen.running is None and seen.kv_cache_usage is None  # not reported: None, not 0


def test_token_mix_is_request_weighted(spec: ModelDeploymentSpec) -> None:
    def s(variant: str, value: float) -> dict[str, Any]:
        return rate(variant, repr(value))

    snap = snapshot(
        {
            "request_rate": [s("bf16", 9.0), s("fp8", 1.0)],
            "prompt_tokens_rate": [s("bf16", 9.0 * 1000), s("fp8", 1.0 * 3000)],
            "generation_tokens_rate": [s("bf16", 9.0 * 100), s("fp8", 1.0 * 500)],
        }
    )
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    obs = seen.observation
    assert obs.prompt_tokens_per_request == pytest.approx((9 * 1000 + 3000) / 10)
    assert obs.output_tokens_per_request == pytest.approx((9 * 100 + 500) / 10)
    assert seen.variants["fp8"].prompt_tokens_per_request == pytest.approx(3000.0)
    assert seen.variants["fp8"].output_tokens_per_request == pytest.approx(500.0)


def test_arrivals_are_completions_plus_queue_growth(spec: ModelDeploymentSpec) -> None:
    """A saturated bf16 finishes 4 req/s while running + waiting grows by 2.5/s: 6.5 arrive.
    fp8 drains its queue (growth -0.5/s); a variant without a growth series counts its
    completions; aborted requests are part of the completions and reported."""
    snap = snapshot(
        {
            "request_rate": [
                by_reason("bf16", "3.5", "length"),
                by_reason("bf16", "0.5", "abort"),
                rate("fp8", "3"),
                rate("int4", "1"),
            ],
            "queue_growth": [rate("bf16", "2.5"), rate("fp8", "-0.5")],
        }
    )
    seen = observation_for(snap, "llm", "assistant", spec, AT, 120, {})
    obs = seen.observation
    assert obs.requests_per_s == 8.0
    assert obs.arrivals_per_s == pytest.approx(6.5 + 2.5 + 1.0)
    assert obs.demand_per_s == pytest.approx(10.0)
    assert obs.aborted_per_s == 0.5
    assert seen.variants["bf16"].arrivals_per_s == pytest.approx(6.5)
    assert seen.variants["fp8"].arrivals_per_s == pytest.approx(2.5)
    assert seen.variants["int4"].arrivals_per_s is None


def test_arrivals_never_below_zero(spec: ModelDeploymentSpec) -> None:
    snap = snapshot({"request_rate": [rate("bf16", "1")], "queue_growth": [rate("bf16", "-3")]})
    obs = observation_for(snap, "llm", "assistant", spec, AT, 120, {}).observation
    assert obs.arrivals_per_s == 0.0 and obs.demand_per_s == 0.0


def test_recorded_tick_without_the_arrival_queries_falls_back_to_completions(
    recorded: MetricsSnapshot, spec: ModelDeploymentSpec
) -> None:
    """data/recorded_tick.json predates queue_growth and request_totals: absent answers leave
    arrivals unknown (None, not zero), and demand is the completions."""
    obs = observation_for(recorded, "llm", "assistant", spec, recorded.at, 120, {}).observation
    assert obs.requests_per_s is not None and obs.requests_per_s > 0
    assert obs.arrivals_per_s is None and obs.aborted_per_s is None
    assert obs.demand_per_s == obs.requests_per_s
    mix = obs.token_mix
    assert mix is not None and obs.tokens_per_request == pytest.approx(mix.total_tokens)
