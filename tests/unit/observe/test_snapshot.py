"""Parsing query answers into a MetricsSnapshot: recorded Prometheus JSON and the edge cases.

data/recorded_tick.json holds one tick of answers from a real Prometheus 2.42 scraping fake
vLLM pods (rewrite it with `PARETOSCALE_RECORD_OBSERVE=1 pytest tests/e2e/test_observe.py`):
llm/assistant/bf16 (2 pods, 3 req/s each), w4a16-l40s (2 req/s), bf16-eagle3 (0.5 req/s,
speculative decoding, acceptance 0.7), 1,000 prompt + 200 output tokens per request, and an
H100 price of $6.88/GPU-hour.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from paretoscale.api.accelerators import gpu_types
from paretoscale.observe.snapshot import (
    MetricsSnapshot,
    QueryFailure,
    VariantKey,
    build_snapshot,
    sample_value,
)

RECORDED = Path(__file__).parent / "data" / "recorded_tick.json"
KEY = {"namespace": "llm", "modeldeployment": "assistant", "variant": "bf16"}


def series(value: Any, **labels: str) -> dict[str, Any]:
    return {"metric": {**KEY, **labels}, "value": [1000.0, value]}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def snap(recorded: dict[str, Any]) -> MetricsSnapshot:
    return build_snapshot(recorded["at"], recorded["results"], 13, "Prometheus at http://p:9090")


def test_recorded_tick(snap: MetricsSnapshot) -> None:
    assert snap.problem is None and snap.failed_queries == () and snap.notes == ()
    assert snap.queries_run == 13
    assert sorted(snap.variants) == [
        VariantKey("llm", "assistant", v) for v in ("bf16", "bf16-eagle3", "w4a16-l40s")
    ]
    mine = snap.for_modeldeployment("llm", "assistant")
    bf16, eagle, l40s = mine["bf16"], mine["bf16-eagle3"], mine["w4a16-l40s"]
    assert bf16.requests_per_s == pytest.approx(6.0, rel=0.01)
    assert l40s.requests_per_s == pytest.approx(2.0, rel=0.01)
    assert eagle.requests_per_s == pytest.approx(0.5, rel=0.01)
    assert bf16.replicas_reporting == 2 and l40s.replicas_reporting == 1
    assert (bf16.running, bf16.waiting) == (6.0, 2.0)
    assert bf16.kv_cache_usage == pytest.approx(0.42)
    assert bf16.prompt_tokens_per_request == pytest.approx(1000, rel=0.01)
    assert bf16.generation_tokens_per_request == pytest.approx(200, rel=0.01)
    assert bf16.tokens_per_request == pytest.approx(1200, rel=0.01)
    assert bf16.spec_decode_acceptance is None
    assert eagle.spec_decode_acceptance == pytest.approx(0.7, rel=0.01)
    assert snap.gpu_prices_usd_per_hour == {"H100": pytest.approx(6.88)}
    assert snap.for_modeldeployment("llm", "nope") == {}


def test_recorded_histograms(snap: MetricsSnapshot) -> None:
    bf16 = snap.for_modeldeployment("llm", "assistant")["bf16"]
    assert set(bf16.latency) == {"e2e", "ttft", "itl"}
    e2e = bf16.latency["e2e"]
    # vLLM 0.33 e2e edges (DESIGN.md), ascending, then +Inf.
    assert e2e.upper_bounds_s[:8] == (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0)
    assert e2e.upper_bounds_s[-2:] == (7680.0, math.inf)
    assert len(e2e.upper_bounds_s) == len(e2e.rates_per_s) == 22
    assert e2e.observations_per_s == pytest.approx(6.0, rel=0.01)
    p95 = e2e.quantile(0.95)
    assert p95 is not None
    # 92% of requests <= 2.5 s and 97% <= 5 s: p95 is 3/5 of the way through (2.5, 5].
    assert p95.value == pytest.approx(2.5 + 2.5 * 3 / 5)
    assert (p95.lower_edge, p95.upper_edge) == (2.5, 5.0)
    assert len(bf16.latency["ttft"].upper_bounds_s) == 23
    assert len(bf16.latency["itl"].upper_bounds_s) == 20


def test_snapshot_is_immutable(snap: MetricsSnapshot) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.problem = "x"  # type: ignore[misc]
    bf16 = snap.variants[VariantKey("llm", "assistant", "bf16")]
    with pytest.raises(TypeError):
        snap.variants[VariantKey("a", "b", "c")] = bf16  # type: ignore[index]
    with pytest.raises(TypeError):
        bf16.latency["e2e"] = bf16.latency["ttft"]  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.gpu_prices_usd_per_hour["H100"] = 0.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5", 1.5),
        ("0", 0.0),
        ("NaN", None),
        ("+Inf", None),
        ("-Inf", None),
        ("-0.5", None),
        ("abc", None),
        (None, None),
    ],
    ids=["number", "zero", "nan", "inf", "minus-inf", "negative", "junk", "null"],
)
def test_sample_value(value: Any, expected: float | None) -> None:
    assert sample_value({"value": [1.0, value]}) == expected


@pytest.mark.parametrize("bad", [{}, {"value": None}, {"value": [1.0]}, {"value": "1"}])
def test_sample_value_missing(bad: dict[str, Any]) -> None:
    assert sample_value(bad) is None


def test_nan_negative_and_missing_become_none_never_zero() -> None:
    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [series("NaN")],
            "requests_running": [series("-1")],
            "kv_cache_usage": [series("0.5", variant="other")],
            "prompt_tokens_rate": [series("+Inf")],
        },
        4,
    )
    bf16 = snap.variants[VariantKey("llm", "assistant", "bf16")]
    assert bf16.requests_per_s is None
    assert bf16.running is None
    assert bf16.kv_cache_usage is None  # never reported for this variant
    assert bf16.prompt_tokens_per_s is None
    assert bf16.tokens_per_request is None
    assert bf16.replicas_reporting is None
    assert snap.variants[VariantKey("llm", "assistant", "other")].kv_cache_usage == 0.5
    assert snap.problem is None  # odd values are notes, not failures
    assert any("request_rate for llm/assistant/bf16: value 'NaN'" in n for n in snap.notes)


def test_zero_load_is_kept_as_zero() -> None:
    snap = build_snapshot(
        1000.0, {"request_rate": [series("0")], "prompt_tokens_rate": [series("0")]}, 2
    )
    bf16 = snap.variants[VariantKey("llm", "assistant", "bf16")]
    assert bf16.requests_per_s == 0.0
    assert bf16.prompt_tokens_per_request is None  # 0/0 tokens per request: unknown


def test_series_without_group_labels_are_noted() -> None:
    snap = build_snapshot(
        1000.0,
        {"request_rate": [{"metric": {"namespace": "llm"}, "value": [1, "3"]}, series("2")]},
        1,
    )
    assert list(snap.variants) == [VariantKey("llm", "assistant", "bf16")]
    assert snap.notes == (
        "request_rate: 1 series without labels namespace, modeldeployment, variant ignored; "
        "an overriding query must keep them in its `by (...)`",
    )


def test_failed_secondary_query_empties_its_fields_and_is_named() -> None:
    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [series("4")],
            "kv_cache_usage": QueryFailure(
                "Prometheus at http://p answered with an error: HTTP Status Code 400"
            ),
            "e2e_latency_buckets": QueryFailure("no answer within the timeout"),
        },
        3,
    )
    assert not snap.rate_failed
    assert snap.failed_queries == ("kv_cache_usage", "e2e_latency_buckets")
    assert snap.problem == (
        "kv_cache_usage: Prometheus at http://p answered with an error: HTTP Status Code 400; "
        "e2e_latency_buckets: no answer within the timeout"
    )
    bf16 = snap.variants[VariantKey("llm", "assistant", "bf16")]
    assert bf16.requests_per_s == 4.0
    assert bf16.kv_cache_usage is None
    assert bf16.latency == {}


def test_failed_rate_query_fails_the_snapshot() -> None:
    snap = build_snapshot(
        1000.0, {"request_rate": QueryFailure("boom"), "requests_running": [series("2")]}, 2
    )
    assert snap.rate_failed
    assert snap.problem == "request_rate: boom"


def buckets(values: dict[str, str]) -> list[dict[str, Any]]:
    return [series(v, le=le) for le, v in values.items()]


def test_histogram_parsing() -> None:
    snap = build_snapshot(
        1000.0,
        {
            # Unordered, as Prometheus returns them.
            "ttft_buckets": buckets({"+Inf": "10", "0.1": "4", "0.02": "1", "1.0": "9"}),
            "itl_buckets": buckets({"0.01": "1", "0.025": "NaN", "+Inf": "2"}),
            "e2e_latency_buckets": buckets({"0.3": "1", "0.5": "2"}),
        },
        3,
    )
    latency = snap.variants[VariantKey("llm", "assistant", "bf16")].latency
    assert latency["ttft"].upper_bounds_s == (0.02, 0.1, 1.0, math.inf)
    assert latency["ttft"].rates_per_s == (1.0, 4.0, 9.0, 10.0)
    assert "itl" not in latency and "e2e" not in latency
    assert (
        "itl_buckets for llm/assistant/bf16: a bucket is not a number >= 0; histogram ignored"
        in snap.notes
    )
    assert (
        'e2e_latency_buckets for llm/assistant/bf16: no le="+Inf" bucket; histogram ignored'
        in snap.notes
    )


def test_prices_by_gpu_type() -> None:
    def price(product: str, value: str) -> dict[str, Any]:
        return {"metric": {"label_nvidia_com_gpu_product": product}, "value": [1, value]}

    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [],
            "gpu_price": [
                price("NVIDIA-H100-80GB-HBM3", "6.88"),
                price("NVIDIA-L40S", "NaN"),
                price("NVIDIA-B300", "9.99"),
                {"metric": {}, "value": [1, "1"]},
            ],
        },
        2,
    )
    assert snap.gpu_prices_usd_per_hour == {"H100": 6.88}
    assert snap.notes == (
        "gpu_price for L40S: value 'NaN' ignored",
        "gpu_price: GPU node label {'nvidia.com/gpu.product': 'NVIDIA-B300'} is no GPU type "
        "of the mapping; price ignored",
        "gpu_price: a series without any of label_amd_com_gpu_product_name, "
        "label_nvidia_com_gpu_product ignored",
    )


def test_prices_join_on_the_label_keys_of_the_mapping() -> None:
    """GKE-labelled nodes price the built-in types; a declared type prices by its own label."""
    acme = {
        "labelKey": "acme.com/accelerator",
        "labelValue": "x1",
        "resource": "acme.com/gpu",
        "memoryGiB": 96,
        "memoryBandwidthTBps": 2.4,
        "bf16Tflops": 400,
        "precisions": ["bf16"],
    }
    gpus = gpu_types({"gpuTypes": {"acme-x1": acme}}, "types.yaml", "gke")
    gke = "label_cloud_google_com_gke_accelerator"
    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [],
            "gpu_price": [
                {"metric": {gke: "nvidia-h100-80gb"}, "value": [1, "3.10"]},
                {"metric": {"label_acme_com_accelerator": "x1"}, "value": [1, "1.25"]},
                {"metric": {"label_nvidia_com_gpu_product": "NVIDIA-L40S"}, "value": [1, "1.9"]},
            ],
        },
        2,
        gpus=gpus,
    )
    assert snap.gpu_prices_usd_per_hour == {"H100": 3.10, "acme-x1": 1.25, "L40S": 1.9}
    assert snap.notes == ()


def test_failed_price_query() -> None:
    snap = build_snapshot(1000.0, {"request_rate": [], "gpu_price": QueryFailure("x")}, 2)
    assert snap.price_failed and not snap.rate_failed
    assert snap.gpu_prices_usd_per_hour == {}


def test_queue_growth_may_be_negative_other_figures_may_not() -> None:
    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [series("2")],
            "queue_growth": [series("-0.75")],
            "request_totals": [series("-1", finished_reason="abort")],
        },
        3,
    )
    m = snap.variants[VariantKey("llm", "assistant", "bf16")]
    assert m.queue_growth_per_s == -0.75
    assert m.arrivals_per_s == pytest.approx(1.25)
    assert m.aborts_total is None and m.finished_total is None
    assert any("request_totals" in n and "not a number >= 0" in n for n in snap.notes)


def test_figures_by_finished_reason() -> None:
    """request_rate and request_totals come by finished_reason: the load is the sum, abort
    and error are split out, a reason without a series counts 0 (vLLM creates every
    reason's series up front), and without the label abort and error are unknown."""
    by_reason = [
        series("3", finished_reason="stop"),
        series("1", finished_reason="length"),
        series("0.5", finished_reason="abort"),
    ]
    totals = [series("90", finished_reason="length"), series("10", finished_reason="error")]
    other = {"variant": "fp8"}
    snap = build_snapshot(
        1000.0,
        {
            "request_rate": [*by_reason, series("2", **other)],
            "request_totals": [*totals, series("7", **other)],
        },
        2,
    )
    m = snap.variants[VariantKey("llm", "assistant", "bf16")]
    assert (m.requests_per_s, m.aborted_per_s, m.errored_per_s) == (4.5, 0.5, 0.0)
    assert (m.finished_total, m.aborts_total, m.errors_total) == (100.0, 0.0, 10.0)
    assert m.served_per_s == 4.0
    f = snap.variants[VariantKey("llm", "assistant", "fp8")]
    assert (f.requests_per_s, f.aborted_per_s, f.errored_per_s) == (2.0, None, None)
    assert (f.finished_total, f.aborts_total, f.errors_total) == (7.0, None, None)
