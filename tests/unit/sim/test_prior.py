"""The performance-model prior (sim/prior.py) against the discrete-event simulator.

For every variant of every example ModelDeployment (listed by name, so a new example variant
shows up as missing), the prior's capacity at the SLO (decide's variant_capacity without the
declared profile, at the Azure conversation trace's mean mix) is compared with the capacity
the discrete-event simulator measures: vLLM V1's continuous batching step by step
(`simulate`), Poisson arrivals at a ladder of rates around the prior's figure, request
lengths drawn from the Azure conversation trace, the SLO percentile over the requests after
a warm-up (e2e, ttft: one latency per request; itl: every gap between emitting steps), and
the capacity where that percentile crosses the SLO (linear between the ladder's rates).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from paretoscale.api.accelerators import BUILTIN
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.api.vllm import vllm_argv
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.economics.work import TokenMix
from paretoscale.sim import ReplicaModel, parse_vllm_args, simulate
from paretoscale.sim.mixture import LengthClasses
from paretoscale.sim.prior import AZURE_CONV_CLASSES, rounded_mix, spread_classes, variant_prior
from paretoscale.sim.traces import load_azure_trace, sample_lengths

from .helpers import data_dir

ROOT = Path(__file__).resolve().parents[3]
TRACE = data_dir() / "traces" / "AzureLLMInferenceTrace_conv.csv"
LADDER = (0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)  # x the prior's capacity: 0.8-1.33 decides
REQUESTS = 2400
WARMUP = 0.2  # share of the earliest requests left out of the percentile
BOUND = 0.25

EXAMPLE_VARIANTS = (
    "assistant-llama-8b/bf16",
    "assistant-llama-8b/fp8",
    "assistant-llama-8b/w4a16-l40s",
    "assistant-llama-8b/bf16-eagle3",
    "llama-70b-speculative/bf16",
    "llama-70b-speculative/fp8",
    "llama-70b-speculative/bf16-draft",
    "llama-70b-speculative/bf16-ngram",
    "llama-70b-speculative/int8-w8a8",
    "model-cache-pvc/bf16",
    "model-cache-pvc/fp8",
    "qwen3-8b-quantization/bf16-h100",
    "qwen3-8b-quantization/fp8-h100",
    "qwen3-8b-quantization/w4a16-h100",
    "qwen3-8b-quantization/awq-h100",
    "qwen3-8b-quantization/bf16-a100",
    "qwen3-8b-quantization/gptq-int4-a100",
)


@cache
def examples() -> dict[str, tuple[ModelDeploymentSpec, VariantSpec]]:
    out = {}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for md in parse_manifests(path.read_text(), str(path)):
            for v in md.spec.variants:
                out[f"{path.stem}/{v.name}"] = (md.spec, v)
    return out


@cache
def trace() -> tuple[np.ndarray, np.ndarray]:
    _, prompt, output = load_azure_trace(TRACE)
    return prompt, output


def trace_mix() -> TokenMix:
    prompt, output = trace()
    return TokenMix(float(prompt.mean()), float(output.mean()))


def test_every_example_variant_is_listed() -> None:
    assert sorted(examples()) == sorted(EXAMPLE_VARIANTS)


def test_the_length_spread_is_the_azure_conversation_traces() -> None:
    prompt, output = trace()
    p, o = prompt.astype(float), output.astype(float)
    for metric, key in (("e2e", "output"), ("ttft", "prompt")):
        classes = LengthClasses.of(p, o, metric)
        ratios_p, ratios_o = AZURE_CONV_CLASSES[key]
        assert classes.prompt / p.mean() == pytest.approx(ratios_p, abs=0.001)
        assert classes.output / o.mean() == pytest.approx(ratios_o, abs=0.001)
    spread = spread_classes(1000.0, 200.0, "e2e")
    assert float((spread.prompt * spread.weight).sum()) == pytest.approx(1000.0, rel=0.002)
    assert float((spread.output * spread.weight).sum()) == pytest.approx(200.0, rel=0.002)


def prior_capacity(spec: ModelDeploymentSpec, v: VariantSpec) -> float:
    bare = v.model_copy(update={"profile": None, "profile_tokens": None})
    slo = spec.slo
    cap, basis = variant_capacity(
        bare, slo.seconds, None, None, slo.latency, trace_mix(), BUILTIN, slo.percentile
    )
    assert basis == "model"
    return cap


def measured_percentile(model: ReplicaModel, rate: float, metric: str, pct: float) -> float:
    """The SLO percentile over a discrete-event run at `rate` req/s (module docstring)."""
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.exponential(1.0 / rate, REQUESTS))
    prompt, output = sample_lengths(*trace(), REQUESTS, rng)
    reqs = [
        (float(t), int(p), int(o))
        for t, p, o in zip(times, prompt, output, strict=True)
        if model.fits(int(p), int(o))
    ]
    records = simulate(model, reqs, seed=3)[int(WARMUP * len(reqs)) :]
    if metric == "itl":
        values = np.concatenate([np.asarray(r.itl_s) for r in records])
    else:
        values = np.array([r.e2e_s if metric == "e2e" else r.ttft_s for r in records])
    return float(np.percentile(values, pct))


def measured_capacity(spec: ModelDeploymentSpec, v: VariantSpec, around: float) -> float | None:
    """Where the measured percentile crosses the SLO on the ladder around `around` req/s;
    None when it does not cross inside the ladder."""
    model = ReplicaModel.from_vllm_args(parse_vllm_args(vllm_argv(v, spec.model)), v.gpu.type)
    slo = spec.slo
    rates = [around * k for k in LADDER]
    lats = [measured_percentile(model, r, slo.latency, slo.percentile) for r in rates]
    for i in range(len(rates) - 1):
        (r0, r1), (l0, l1) = rates[i : i + 2], lats[i : i + 2]
        if l0 <= slo.seconds < l1:
            return r0 + (r1 - r0) * (slo.seconds - l0) / (l1 - l0)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLE_VARIANTS)
def test_the_prior_is_within_25_percent_of_the_simulated_capacity(name: str) -> None:
    spec, v = examples()[name]
    prior = prior_capacity(spec, v)
    assert prior > 0
    measured = measured_capacity(spec, v, prior)
    assert measured is not None, f"{name}: the measured crossing is outside {LADDER} x {prior}"
    assert abs(prior / measured - 1.0) <= BOUND, f"{name}: prior {prior:.3f}, DES {measured:.3f}"


def test_the_prior_is_none_where_the_model_cannot_apply() -> None:
    _, v = examples()["assistant-llama-8b/bf16"]
    h100 = BUILTIN.get("H100")
    unknown = v.model_copy(update={"vllm": v.vllm.model_copy(update={"model": "acme/house"})})
    assert variant_prior(unknown, h100, "e2e", 95, 1155, 211) is None  # no shape
    sized = unknown.model_copy(update={"parameters": 8_000_000_000})
    synthetic = variant_prior(sized, h100, "e2e", 95, 1155, 211)
    known = variant_prior(v, h100, "e2e", 95, 1155, 211)
    assert synthetic is not None and known is not None
    assert synthetic.uncertainty > known.uncertainty  # a shape from a parameter count
    bad = v.model_copy(
        update={"vllm": v.vllm.model_copy(update={"extra_args": ["--max-num-seqs", "none"]})}
    )
    assert variant_prior(bad, h100, "e2e", 95, 1155, 211) is None  # argv it cannot read
    huge = v.model_copy(update={"vllm": v.vllm.model_copy(update={"max_model_len": 10**7})})
    assert variant_prior(huge, h100, "e2e", 95, 1155, 211) is None  # vLLM would not start


def test_the_prior_holds_the_rounded_mix_and_rises_with_load() -> None:
    _, v = examples()["assistant-llama-8b/bf16"]
    prior = variant_prior(v, BUILTIN.get("H100"), "e2e", 95, 1160.0, 205.0)
    assert prior is not None
    assert (prior.prompt_tokens, prior.output_tokens) == rounded_mix(1160.0, 205.0)
    assert (
        abs(prior.prompt_tokens / 1160.0 - 1) < 0.03 and abs(prior.output_tokens / 205 - 1) < 0.03
    )
    assert list(prior.latencies_s) == sorted(prior.latencies_s)
    assert list(prior.rates_rps) == sorted(prior.rates_rps) and prior.rates_rps[-1] < prior.max_rps
    again = variant_prior(v, BUILTIN.get("H100"), "e2e", 95, 1158.0, 204.0)
    assert again is prior  # memoized on the rounded mix
