"""Hypothesis strategies: random but valid ModelDeployment specs."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from paretoscale.api.types import ModelDeploymentSpec

GPU_TYPES = ["H100", "L40S", "A100"]


@st.composite
def profiles(draw: st.DrawFn) -> list[dict[str, float]]:
    n = draw(st.integers(1, 4))
    rates = sorted(draw(st.lists(st.integers(1, 40), min_size=n, max_size=n, unique=True)))
    lat = draw(st.floats(0.5, 4.0))
    out = []
    for r in rates:
        lat += draw(st.floats(0.0, 4.0))
        out.append({"requestsPerSecond": float(r), "latencySeconds": round(lat, 3)})
    return out


@st.composite
def specs(draw: st.DrawFn, per_quality_point: float | None = None) -> ModelDeploymentSpec:
    n = draw(st.integers(1, 8))
    variants: list[dict[str, Any]] = []
    for i in range(n):
        variants.append(
            {
                "name": f"v{i}",
                "quality": draw(st.integers(60, 90)) / 100,
                "gpu": {"type": draw(st.sampled_from(GPU_TYPES)), "count": draw(st.integers(1, 2))},
                "vllm": {"model": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16"},
                "profile": draw(profiles()),
            }
        )
    pqp = per_quality_point if per_quality_point is not None else draw(st.floats(0.0, 2.0))
    return ModelDeploymentSpec.model_validate(
        {
            "model": "m",
            "value": {"perQualityPoint": f"{pqp:.4f}", "calibrationFactor": 0.3},
            "slo": {"latency": "e2e", "percentile": 95, "seconds": draw(st.floats(2.0, 12.0))},
            "traffic": {"minReplicas": 1, "maxReplicas": 64, "targetUtilization": 0.8},
            "gpus": [
                {"type": t, "usdPerHour": f"{draw(st.floats(0.5, 12.0)):.2f}", "available": 512}
                for t in GPU_TYPES
            ],
            "variants": variants,
        }
    )
