"""The work model (economics/work.py) on constructed numbers, and evaluate() at an observed mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import evaluate, variant_capacity
from paretoscale.decide.types import Observation
from paretoscale.economics.capacity import capacity_at_slo_rps
from paretoscale.economics.work import (
    AZURE_CONVERSATION_MIX,
    WORK_WEIGHTS,
    TokenMix,
    WorkWeights,
    capacity_at_mix_rps,
    curve_at_mix,
    decode_kind,
    latency_length,
    work_per_request,
    work_ratio,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"
W = WorkWeights(decode=2.0, context=1e-3, e2e_prompt=0.02, ttft_base_tokens=100.0)
RATES = [2.0, 8.0, 14.0]
LATS = [3.1, 5.5, 9.8]


def test_work_per_request_formula() -> None:
    # P + beta O + kappa O (P + O/2) = 1000 + 2 x 200 + 1e-3 x 200 x 1100 = 1620
    assert work_per_request(TokenMix(1000, 200), W) == pytest.approx(1620.0)
    assert work_ratio(TokenMix(1000, 200), TokenMix(1000, 200), W) == 1.0
    # 6000 + 400 + 1e-3 x 200 x 6100 = 7620
    assert work_ratio(TokenMix(1000, 200), TokenMix(6000, 200), W) == pytest.approx(1620 / 7620)


def test_latency_length_by_metric() -> None:
    mix = TokenMix(1000, 200)
    assert latency_length(mix, "e2e", W) == pytest.approx(200 + 0.02 * 1000)
    assert latency_length(mix, "ttft", W) == pytest.approx(1100.0)
    assert latency_length(mix, "itl", W) == 1.0


def test_capacity_at_the_measured_mix_is_the_profiles() -> None:
    for metric in ("e2e", "ttft", "itl"):
        got = capacity_at_mix_rps(
            RATES, LATS, 8.0, metric, TokenMix(900, 100), TokenMix(900, 100), W
        )
        assert got == pytest.approx(capacity_at_slo_rps(RATES, LATS, 8.0))


def test_capacity_at_another_mix() -> None:
    measured, observed = TokenMix(1000, 200), TokenMix(6000, 200)
    # itl: latencies unchanged, rates x 1620/7620
    itl = capacity_at_mix_rps(RATES, LATS, 8.0, "itl", measured, observed, W)
    assert itl == pytest.approx(capacity_at_slo_rps(RATES, LATS, 8.0) * 1620 / 7620)
    # e2e: the SLO seen at the measured mix shrinks by L0 / L = 220 / 320
    e2e = capacity_at_mix_rps(RATES, LATS, 8.0, "e2e", measured, observed, W)
    assert e2e == pytest.approx(capacity_at_slo_rps(RATES, LATS, 8.0 * 220 / 320) * 1620 / 7620)
    # a mix whose length pushes the SLO below the lightest profiled latency is infeasible
    assert capacity_at_mix_rps(RATES, LATS, 8.0, "e2e", measured, TokenMix(1000, 800), W) == 0


def test_curve_at_mix_moves_both_axes() -> None:
    rates, lats = curve_at_mix(RATES, LATS, "e2e", TokenMix(1000, 200), TokenMix(6000, 200), W)
    assert rates == pytest.approx([r * 1620 / 7620 for r in RATES])
    assert lats == pytest.approx([lat * 320 / 220 for lat in LATS])


@given(
    p=st.floats(1, 50_000), o=st.floats(1, 8_000), dp=st.floats(0, 10_000), do=st.floats(0, 2_000)
)
def test_more_tokens_never_more_capacity(p: float, o: float, dp: float, do: float) -> None:
    for w in WORK_WEIGHTS.values():
        small, big = TokenMix(p, o), TokenMix(p + dp, o + do)
        for metric in ("e2e", "ttft", "itl"):
            a = capacity_at_mix_rps(RATES, LATS, 8.0, metric, AZURE_CONVERSATION_MIX, small, w)
            b = capacity_at_mix_rps(RATES, LATS, 8.0, metric, AZURE_CONVERSATION_MIX, big, w)
            assert b <= a * (1 + 1e-9)


def test_decode_kinds() -> None:
    assert decode_kind(None) == "plain"
    assert decode_kind("eagle3") == decode_kind("mtp") == "eagle"
    assert decode_kind("ngram") == "ngram"
    assert WORK_WEIGHTS["ngram"].decode > WORK_WEIGHTS["plain"].decode


def _spec(profile_tokens: str = "") -> ModelDeploymentSpec:
    text = EXAMPLE.read_text()
    if profile_tokens:
        text = text.replace(
            "    profile:                    # per replica",
            f"    profileTokens: {profile_tokens}\n    profile:                    # per replica",
        )
    return parse_manifests(text, str(EXAMPLE))[0].spec


def test_evaluate_needs_more_replicas_on_long_prompts() -> None:
    """The issue's case: prompts 6x the profile's at the same request rate need more replicas
    (completions-only demand at the profile's mix held one replica at 0.1% SLO)."""
    spec = _spec()
    rate = 3.4
    base = {e.name: e for e in evaluate(spec, rate, {}, {})}
    same = {e.name: e for e in evaluate(spec, rate, {}, {}, mix=AZURE_CONVERSATION_MIX)}
    long = {e.name: e for e in evaluate(spec, rate, {}, {}, mix=TokenMix(6930, 211))}
    for name, e in base.items():
        assert same[name].capacity_rps == pytest.approx(e.capacity_rps)
        assert same[name].replicas == e.replicas
        assert long[name].capacity_rps < e.capacity_rps / 3
    assert long["w4a16-l40s"].replicas > base["w4a16-l40s"].replicas
    assert long["bf16"].replicas > base["bf16"].replicas


def test_profile_tokens_set_the_reference_mix() -> None:
    """A profile measured at the observed mix needs no scaling; one measured at shorter
    prompts is scaled down when longer ones arrive."""
    spec = _spec("{promptTokens: 6930, outputTokens: 211}")
    v = spec.variants[0]
    assert v.profile_tokens is not None
    at_own, _ = variant_capacity(v, 8.0, None, None, "e2e", TokenMix(6930, 211))
    plain, _ = variant_capacity(v, 8.0, None, None)
    assert at_own == pytest.approx(plain)
    shorter, _ = variant_capacity(v, 8.0, None, None, "e2e", AZURE_CONVERSATION_MIX)
    assert shorter > plain


def test_observation_demand_and_mix() -> None:
    assert Observation(at=0).demand_per_s is None
    assert Observation(at=0, requests_per_s=2.0).demand_per_s == 2.0
    assert Observation(at=0, requests_per_s=2.0, arrivals_per_s=5.0).demand_per_s == 5.0
    assert Observation(at=0, requests_per_s=2.0, arrivals_per_s=-1.0).demand_per_s == 0.0
    assert Observation(at=0, prompt_tokens_per_request=10.0).token_mix is None
    mix = Observation(at=0, prompt_tokens_per_request=10.0, output_tokens_per_request=5.0)
    assert mix.token_mix == TokenMix(10.0, 5.0)


def test_plan_tokens_scales_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    from paretoscale.cli import main

    args = ["plan", "-f", str(EXAMPLE), "--rate", "3.4", "-o", "json"]
    assert main(args) == 0
    base = {v["name"]: v for v in json.loads(capsys.readouterr().out)["variants"]}
    assert main([*args, "--tokens", "6930/211"]) == 0
    long = {v["name"]: v for v in json.loads(capsys.readouterr().out)["variants"]}
    assert long["bf16"]["capacityPerReplica"] < base["bf16"]["capacityPerReplica"] / 3
    assert long["w4a16-l40s"]["replicas"] > base["w4a16-l40s"]["replicas"]


def test_plan_tokens_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from paretoscale.cli import main

    for bad in ("6930", "a/b", "0/211", "100/0"):
        assert main(["plan", "-f", str(EXAMPLE), "--rate", "1", "--tokens", bad]) == 2
        assert "--tokens" in capsys.readouterr().err
