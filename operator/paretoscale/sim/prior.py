"""A variant's profile predicted by the simulator's performance model: the operator's prior.

A variant without a measured profile still has a `vllm serve` command line (api/vllm.py) and
a GPU type. The same model `paretoscale sim` runs (vllm_args -> perfmodel.ReplicaModel ->
steady.steady_state) predicts one replica from them: `variant_prior` returns its profile,
rate per replica -> latency at the SLO percentile, at a token mix, and how far to trust it.

- Shape: the model's family by name (shapes.py: Llama-3.x, Qwen3, ...), else the "<N>b" in
  its name, else `parameters` (a Llama-like shape of that size); none of these: no prior.
- GPU: the figures of the cluster's GPU type mapping (api/accelerators.py), so a GPU type
  the cluster declares gets a prior too.
- Quantization, KV-cache dtype, tensor parallelism, scheduler limits and speculative
  decoding: from the argv, as the simulator reads them.
- Request lengths: only the mix's means are known, so lengths are assumed to spread as the
  Azure LLM inference trace 2023 (conversation) does around its means (AZURE_CONV_CLASSES:
  twelve equal-weight classes, each a multiple of the mean prompt and output), and the
  percentile is read over that mixture (mixture.py).
- Points: rates x = rate / max_rps on a grid dense near the limit (PRIOR_X), so the SLO
  crossing is interpolated between close points.
- Uncertainty: a relative error, not a confidence interval: UNCERTAINTY is the worst gap of
  the prior's capacity at the SLO to the discrete-event simulator's over the example
  variants (tests/unit/sim/test_prior.py), widened by SYNTHETIC_SHAPE when the shape is
  synthesised from a parameter count and by SPECULATIVE when an acceptance rate is assumed.
  The simulator's own gap to real vLLM (tests/unit/sim/test_calibration.py) is not in it.

None when the model cannot apply: no shape, argv the simulator cannot parse, a GPU type whose
figures it cannot use, or a replica vLLM would refuse to start (does not fit, unsupported
precision). Memoized on hashable inputs (argv, GPU figures, metric, percentile, the mix
rounded to PRIOR_MIX_STEP in ln), so a tick reads a cached curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from paretoscale.api.gpus import GpuSpec
from paretoscale.api.types import VariantSpec
from paretoscale.api.vllm import vllm_argv
from paretoscale.sim.mixture import LengthClasses, class_quantiles, mixture_quantile
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.shapes import shape_for_model
from paretoscale.sim.steady import Metric, steady_state
from paretoscale.sim.vllm_args import VllmArgsError, parse_vllm_args

# Load fractions of the prior's points: 1 - exp(-u), u uniform, dense near the limit.
PRIOR_X = tuple(float(-math.expm1(-u)) for u in np.linspace(0.01, -math.log1p(-0.995), 40))
PRIOR_MIX_STEP = 0.05  # the mix is rounded to exp(k x step) tokens (5%) before the model runs
# Worst |prior / DES - 1| over the example variants at the Azure conversation mix: 0.21
# without speculative decoding (GPTQ INT4 on an A100, optimistic), 0.23 with it (n-gram on
# 4 H100s at an ITL SLO, pessimistic: the ITL percentile takes every prompt at the mean length).
UNCERTAINTY = 0.21
SPECULATIVE = 0.02
SYNTHETIC_SHAPE = 0.15

# The Azure conversation trace (data/traces/AzureLLMInferenceTrace_conv.csv, 19,366 requests,
# 1155/211 tokens) cut into 12 equal-weight classes: each class's mean prompt and output
# tokens over the trace's means. By output length (e2e), then by prompt length (ttft).
AZURE_CONV_CLASSES = {
    "output": (
        (2.015, 1.554, 1.016, 0.685, 0.704, 0.841, 0.837, 0.606, 0.931, 0.936, 0.933, 0.944),
        (0.164, 0.286, 0.371, 0.425, 0.471, 0.549, 0.696, 0.952, 1.822, 1.893, 1.977, 2.395),
    ),
    "prompt": (
        (0.125, 0.235, 0.336, 0.348, 0.45, 0.85, 0.902, 0.939, 0.988, 1.138, 2.055, 3.637),
        (0.697, 0.499, 0.421, 0.499, 0.53, 1.723, 1.941, 1.969, 1.89, 1.061, 0.443, 0.327),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Prior:
    """One replica's predicted profile at mix prompt_tokens/output_tokens: latency at the
    SLO percentile [s] at each rate [req/s], ascending."""

    rates_rps: tuple[float, ...]
    latencies_s: tuple[float, ...]
    prompt_tokens: float
    output_tokens: float
    max_rps: float  # the replica's throughput limit at this mix
    uncertainty: float  # relative (0.15 = +-15%), see the module docstring


def spread_classes(prompt: float, output: float, metric: Metric) -> LengthClasses:
    """Lengths spread as the Azure conversation trace around the means `prompt`/`output`
    (by output length for e2e, prompt length for ttft; one class for itl and tpot)."""
    if metric in ("itl", "tpot"):
        return LengthClasses.single(prompt, output)
    p, o = AZURE_CONV_CLASSES["prompt" if metric == "ttft" else "output"]
    n = len(p)
    return LengthClasses(
        np.array(p) * prompt, np.maximum(np.array(o) * output, 1.0), np.full(n, 1.0 / n)
    )


def rounded_mix(prompt: float, output: float) -> tuple[float, float]:
    """The mix on the memo grid: each mean rounded to exp(k x PRIOR_MIX_STEP) tokens."""

    def r(x: float) -> float:
        return round(math.exp(round(math.log(max(x, 1.0)) / PRIOR_MIX_STEP) * PRIOR_MIX_STEP), 3)

    return r(prompt), r(output)


def variant_prior(
    variant: VariantSpec,
    gpu: GpuSpec,
    metric: Metric,
    percentile: float,
    prompt_tokens: float,
    output_tokens: float,
) -> Prior | None:
    """The prior of `variant` on GPUs with figures `gpu`, at the SLO `metric` and
    `percentile` and (about) the mix prompt_tokens/output_tokens: the mix is rounded
    (rounded_mix) and the Prior says which mix it holds. None where the model cannot apply."""
    sized, params_b = _size(variant)
    if not sized:
        return None
    argv = tuple(vllm_argv(variant, variant.vllm.model))
    prompt, output = rounded_mix(prompt_tokens, output_tokens)
    return _prior(argv, gpu, params_b, metric, float(percentile), prompt, output)


def _size(variant: VariantSpec) -> tuple[bool, float | None]:
    """(whether the model has a shape, billions of parameters to synthesise it from): the
    family or "<N>b" of the name first (None), else `parameters`."""
    try:
        shape_for_model(variant.vllm.model)
    except ValueError:
        if variant.parameters is None:
            return False, None
        return True, variant.parameters / 1e9
    return True, None


@lru_cache(maxsize=4096)
def _prior(
    argv: tuple[str, ...],
    gpu: GpuSpec,
    params_b: float | None,
    metric: Metric,
    percentile: float,
    prompt: float,
    output: float,
) -> Prior | None:
    try:
        args = parse_vllm_args(argv)
        model = ReplicaModel.from_vllm_args(args, gpu.type, params_b=params_b, gpu=gpu)
        mu = steady_state(model, 0.0, prompt, output).max_requests_per_s
    except (VllmArgsError, ValueError, KeyError, ZeroDivisionError):
        return None  # DoesNotFit and UnsupportedOnGpu are ValueErrors; KeyError: no kernel row
    if not mu > 0 or not math.isfinite(mu):
        return None
    classes = spread_classes(prompt, output, metric)
    rates, lats = [], []
    for x in PRIOR_X:
        st = steady_state(model, x * mu, prompt, output)
        q = class_quantiles(st, metric, classes, 1.0, prompt)
        rates.append(round(x * mu, 6))
        lats.append(mixture_quantile(q, classes.weight, percentile / 100.0))
    lats = list(np.maximum.accumulate(lats))
    uncertainty = UNCERTAINTY + (SYNTHETIC_SHAPE if params_b is not None else 0.0)
    uncertainty += SPECULATIVE if args.speculative is not None else 0.0
    return Prior(tuple(rates), tuple(float(v) for v in lats), prompt, output, mu, uncertainty)


def prior_problem(variant: VariantSpec, gpu: GpuSpec) -> str | None:
    """Why the model cannot apply to `variant` on `gpu` (what to change), or None."""
    sized, params_b = _size(variant)
    if not sized:
        return (
            f"vllm.model {variant.vllm.model!r} is not a model family the simulator knows "
            "and its name has no '<N>b' size: give the variant `parameters` (its parameter "
            "count)"
        )
    argv = vllm_argv(variant, variant.vllm.model)
    try:
        model = ReplicaModel.from_vllm_args(
            parse_vllm_args(argv), gpu.type, params_b=params_b, gpu=gpu
        )
        steady_state(model, 0.0, 1155.0, 211.0)
    except (VllmArgsError, ValueError, KeyError, ZeroDivisionError) as e:
        return f"the simulator cannot run `vllm serve {' '.join(argv)}` on {gpu.type}: {e}"
    return None
