"""Work per request in prompt-token equivalents, and a profile's capacity at another token mix.

A profile is measured at one token mix: P0 prompt and O0 generated tokens per request (from
the `vllm bench serve` result files, stated by hand, or the Azure conversation means). Traffic
with another mix (P, O) costs a replica a different amount of work per request, and a request
takes a different time at the same load. Both are first-order models fitted to the simulator's
performance model (sim/perfmodel.py + sim/steady.py; the fit is recomputed and checked by
tests/unit/economics/test_work_fit.py, which is where the constants below come from):

Throughput. A replica's throughput limit mu(P, O) [req/s] follows 1 / mu = s x W(P, O) with
    W(P, O) = P + beta x O + kappa x O x (P + O / 2)      [prompt-token equivalents]
- P: a prompt token costs GEMM FLOPs once (compute-bound prefill); it is the unit;
- beta x O: a generated token costs its share of a decode step (at the batch the limit allows),
  beta ~ 1 without speculative decoding (a decode step at the limit batch is compute-bound too)
  and more with it (each step verifies k + 1 tokens per sequence and runs the drafter);
- kappa x O x (P + O/2): each generated token holds and reads the request's KV cache, whose
  mean context is P + O/2; where the KV cache bounds the batch (long contexts) this dominates.
The fit: over the variants of examples/assistant-llama-8b, llama-70b-speculative and
qwen3-8b-quantization, prompts 150-4,600 and outputs 28-800 tokens, least squares on the
relative error of 1/mu with one free scale s per variant and beta, kappa shared per decoding
method. Without speculative decoding beta = 1.01,
kappa = 1.74e-3 per token (worst error over that grid 25%: kappa depends on KV room per GPU,
from 0.7e-3 for a 70B model on 4 H100s to 3e-3 for an 8B model on one).

Latency. At the same utilization, a request's latency scales with a length L(P, O):
- e2e: L = O + rho x P (a request decodes O tokens, one step each, after a prefill that costs
  rho steps per prompt token; rho = 0.0176 without speculative decoding);
- ttft: L = P + P_base (the prefill grows with the prompt above a fixed step cost worth
  P_base = 260 prompt tokens);
- itl: L = 1 (the decode step does not grow with the request's own length, to first order).

Capacity at the SLO for the mix (P, O), from the profile's curve latency(rate) at (P0, O0):
    capacity(P, O) = capacity_profile(slo x L(P0, O0) / L(P, O)) x W(P0, O0) / W(P, O)
i.e. the curve's rates shrink by the work ratio and its latencies grow by the length ratio.
Accuracy against the perf model's own capacity at the SLO (profile at 1155/211 tokens, SLO at
the latency of 70% of the limit, mixes 300-6,900 prompt and 28-420 output tokens, every
example variant; predicted / true): e2e median 1.01, 80% within 0.85-1.19, all 0.64-1.78,
and 6 of 105 long-output cases called infeasible where the perf model still serves a little
(conservative); ttft median 0.98, 0.42-1.93; itl median 1.08, 0.72-2.57, optimistic for long
prompts with short outputs, whose prefill chunks lengthen the p95 step (not modelled). The
work ratio alone would be off up to 6x for e2e when outputs grow.
Pure: no I/O, no simulator at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from paretoscale.economics.capacity import capacity_at_slo_rps

LatencyMetric = Literal["e2e", "ttft", "itl"]
DecodeKind = Literal["plain", "eagle", "draft_model", "ngram"]


@dataclass(frozen=True)
class TokenMix:
    """Mean tokens per request: prompt (prefilled) and output (generated)."""

    prompt_tokens: float
    output_tokens: float

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.output_tokens

    def __str__(self) -> str:
        return f"{self.prompt_tokens:.0f}/{self.output_tokens:.0f} tokens"


# Mean of the Azure LLM inference trace 2023, conversation (data/SOURCES.md): the mix a
# profile is assumed to be measured at when it does not say.
AZURE_CONVERSATION_MIX = TokenMix(1155.0, 211.0)


@dataclass(frozen=True)
class WorkWeights:
    """The fitted constants of one decoding method (see the module docstring)."""

    decode: float  # beta: one generated token, in prompt tokens
    context: float  # kappa: per generated token per token of context [1/token]
    e2e_prompt: float  # rho: one prompt token's share of e2e latency, in decode steps
    ttft_base_tokens: float  # P_base: TTFT's fixed part, in prompt tokens


# Fitted on those examples (k = speculative tokens there: EAGLE-3 3, draft model 4, n-gram 5);
# EAGLE and MTP heads borrow EAGLE-3's. tests/unit/economics/test_work_fit.py refits them.
WORK_WEIGHTS: Mapping[DecodeKind, WorkWeights] = MappingProxyType(
    {
        "plain": WorkWeights(decode=1.01, context=1.74e-3, e2e_prompt=0.0176, ttft_base_tokens=260),
        "eagle": WorkWeights(decode=1.53, context=0.94e-3, e2e_prompt=0.0268, ttft_base_tokens=424),
        "draft_model": WorkWeights(
            decode=2.16, context=0.30e-3, e2e_prompt=0.0277, ttft_base_tokens=338
        ),
        "ngram": WorkWeights(decode=3.27, context=0.36e-3, e2e_prompt=0.0259, ttft_base_tokens=303),
    }
)


def decode_kind(speculative_method: str | None) -> DecodeKind:
    """The weights' key for a variant's speculative method (None: plain decoding)."""
    if speculative_method is None:
        return "plain"
    if speculative_method in ("draft_model", "ngram"):
        return speculative_method  # type: ignore[return-value]
    return "eagle"  # eagle, eagle3, mtp: a head on the target model


def work_per_request(mix: TokenMix, weights: WorkWeights) -> float:
    """W(P, O) = P + beta x O + kappa x O x (P + O/2) [prompt-token equivalents]."""
    p, o = max(mix.prompt_tokens, 0.0), max(mix.output_tokens, 0.0)
    return p + weights.decode * o + weights.context * o * (p + o / 2.0)


def latency_length(mix: TokenMix, metric: LatencyMetric, weights: WorkWeights) -> float:
    """L(P, O): e2e O + rho x P, ttft P + P_base, itl 1 (see the module docstring)."""
    p, o = max(mix.prompt_tokens, 0.0), max(mix.output_tokens, 1.0)
    if metric == "e2e":
        return o + weights.e2e_prompt * p
    if metric == "ttft":
        return p + weights.ttft_base_tokens
    return 1.0


def work_ratio(measured: TokenMix, observed: TokenMix, weights: WorkWeights) -> float:
    """W(P0, O0) / W(P, O): the factor on request rates moving from the measured mix to the
    observed one (below 1: observed requests are more work)."""
    w = work_per_request(observed, weights)
    return work_per_request(measured, weights) / w if w > 0 else 1.0


def curve_at_mix(
    rates_rps: Sequence[float],
    latencies_s: Sequence[float],
    metric: LatencyMetric,
    measured: TokenMix,
    observed: TokenMix,
    weights: WorkWeights,
) -> tuple[list[float], list[float]]:
    """The profile's curve moved to mix `observed`: rates x W(measured) / W(observed),
    latencies x L(observed) / L(measured). Capacity, prediction and live correction all read
    this curve, so they agree on the mix."""
    k = work_ratio(measured, observed, weights)
    length = latency_length(measured, metric, weights)
    stretch = latency_length(observed, metric, weights) / length if length > 0 else 1.0
    return [r * k for r in rates_rps], [lat * stretch for lat in latencies_s]


def capacity_at_mix_rps(
    rates_rps: Sequence[float],
    latencies_s: Sequence[float],
    slo_s: float,
    metric: LatencyMetric,
    measured: TokenMix,
    observed: TokenMix,
    weights: WorkWeights,
) -> float:
    """Per-replica capacity [req/s] at the SLO for traffic of mix `observed`, from a profile
    measured at mix `measured`:
    capacity_profile(slo x L(measured) / L(observed)) x W(measured) / W(observed)."""
    rates, lats = curve_at_mix(rates_rps, latencies_s, metric, measured, observed, weights)
    return capacity_at_slo_rps(rates, lats, slo_s)
