"""The FLOP proxy respects the SLO: a variant estimated without a profile is refused when the
least latency one request can see on an idle replica exceeds the SLO (issue #11: it was
"feasible" at a 0.05 s SLO)."""

from __future__ import annotations

import pytest

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import evaluate, flop_proxy_floor_s, variant_capacity
from paretoscale.economics.capacity import flop_proxy_latency_floor_s

H100_FLOPS, H100_HBM = 989e12, 3.35e12


def test_the_floor_adds_prefill_and_one_weight_read_per_token() -> None:
    # 8B at BF16 on one H100: prefill 2 x 8e9 x 1000 / (989e12 x 0.7); a token reads 16 GB
    prefill = 2 * 8e9 * 1000 / (H100_FLOPS * 0.7)
    token = 8e9 * 2 / H100_HBM
    e2e = flop_proxy_latency_floor_s(8_000_000_000, 2.0, 1000, 200, H100_FLOPS, H100_HBM, 1)
    assert e2e == pytest.approx(prefill + 200 * token)
    ttft = flop_proxy_latency_floor_s(
        8_000_000_000, 2.0, 1000, 200, H100_FLOPS, H100_HBM, 1, "ttft"
    )
    itl = flop_proxy_latency_floor_s(8_000_000_000, 2.0, 1000, 200, H100_FLOPS, H100_HBM, 1, "itl")
    assert (ttft, itl) == (pytest.approx(prefill), pytest.approx(token))
    # four GPUs (tensor parallel) move the bytes and the FLOPs four times as fast
    four = flop_proxy_latency_floor_s(8_000_000_000, 2.0, 1000, 200, H100_FLOPS, H100_HBM, 4)
    assert four == pytest.approx(e2e / 4)


def spec(slo_s: float) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "value": {"perQualityPoint": "0.40"},
            "slo": {"latency": "e2e", "percentile": 95, "seconds": slo_s},
            "traffic": {"minReplicas": 1, "maxReplicas": 8},
            "gpus": [{"type": "H100", "usdPerHour": "6.88", "available": 8}],
            "variants": [
                {
                    "name": "bf16",
                    "quality": 0.81,
                    "gpu": {"type": "H100"},
                    # an argv the simulator cannot read: no performance-model prior
                    "vllm": {
                        "model": "meta-llama/Llama-3.1-8B-Instruct",
                        "extraArgs": ["--max-num-batched-tokens", "lots"],
                    },
                    "parameters": 8_030_000_000,
                }
            ],
        }
    )


def test_a_0_05s_slo_is_infeasible_for_the_flop_proxy() -> None:
    tight = spec(0.05)
    v = tight.variants[0]
    assert flop_proxy_floor_s(v, None) > 0.05
    assert variant_capacity(v, 0.05, None, 1.5) == (0.0, "estimate")  # a correction cannot save it
    (row,) = evaluate(tight, 1.0, {}, {})
    assert not row.feasible and "at any load" in row.reason and "FLOP proxy" in row.reason


def test_a_reachable_slo_keeps_the_flop_proxy_estimate() -> None:
    loose = spec(10.0)
    v = loose.variants[0]
    assert flop_proxy_floor_s(v, None) < 10.0
    cap, basis = variant_capacity(v, 10.0, None, None)
    assert cap > 0 and basis == "estimate"
    (row,) = evaluate(loose, 1.0, {}, {})
    assert row.feasible
