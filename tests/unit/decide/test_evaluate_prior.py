"""decide/evaluate.py on a variant without a profile: the performance-model prior (basis
"model"), read at the observed mix, corrected live, refusing an SLO no load meets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paretoscale.api.accelerators import BUILTIN
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import (
    estimate_problems,
    evaluate,
    model_prior,
    variant_capacity,
)
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, Observation
from paretoscale.economics.capacity import capacity_at_slo_rps
from paretoscale.economics.work import TokenMix
from paretoscale.plan import plan_table

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


def bare(slo_s: float = 8.0) -> ModelDeploymentSpec:
    """The assistant example without its profiles (parameters keep the spec valid)."""
    spec = parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec
    variants = [
        v.model_copy(update={"profile": None, "profile_tokens": None, "parameters": 8_030_000_000})
        for v in spec.variants
    ]
    slo = spec.slo.model_copy(update={"seconds": slo_s})
    return spec.model_copy(update={"variants": variants, "slo": slo})


def test_a_variant_without_a_profile_plans_with_the_prior() -> None:
    spec = bare()
    v = spec.variants[0]
    mix = TokenMix(1155, 211)
    cap, basis = variant_capacity(v, 8.0, None, None, "e2e", mix, BUILTIN, 95)
    prior = model_prior(v, "e2e", 95, mix, BUILTIN)
    assert prior is not None and basis == "model"
    # the prior at its own (rounded) mix, within the 5% rounding the work model moves across
    own = capacity_at_slo_rps(list(prior.rates_rps), list(prior.latencies_s), 8.0)
    assert cap == pytest.approx(own, rel=0.05)
    assert 10 < cap < 20  # BF16 8B on one H100 at p95 e2e <= 8 s (the DES measures 15.1)
    rows = evaluate(spec, 30.0, {}, {}, mix=mix)
    assert {r.capacity_basis for r in rows} == {"model"}
    d = decide(spec, Observation(at=0, requests_per_s=30.0), CurrentState())
    assert "(model)" in plan_table("assistant", d)


def test_longer_outputs_lower_the_prior_and_a_live_factor_scales_it() -> None:
    v = bare().variants[1]
    short, _ = variant_capacity(v, 8.0, None, None, "e2e", TokenMix(1155, 211), BUILTIN, 95)
    long, _ = variant_capacity(v, 8.0, None, None, "e2e", TokenMix(1155, 400), BUILTIN, 95)
    assert 0 < long < short
    live, basis = variant_capacity(v, 8.0, None, 0.8, "e2e", TokenMix(1155, 211), BUILTIN, 95)
    assert basis == "live" and live == pytest.approx(0.8 * short)


def test_the_prior_refuses_an_slo_no_load_meets() -> None:
    spec = bare(slo_s=0.5)  # one request's e2e at 211 output tokens takes seconds
    v = spec.variants[0]
    assert variant_capacity(v, 0.5, None, None, "e2e", None, BUILTIN, 95) == (0.0, "model")
    row = evaluate(spec, 1.0, {}, {})[0]
    assert not row.feasible and "the performance model predicts" in row.reason


def test_the_flop_proxy_remains_where_the_model_cannot_apply() -> None:
    v = bare().variants[0]
    broken = v.model_copy(
        update={"vllm": v.vllm.model_copy(update={"extra_args": ["--max-num-seqs", "many"]})}
    )
    cap, basis = variant_capacity(broken, 8.0, None, None, "e2e", None, BUILTIN, 95)
    assert basis == "estimate" and cap > 0


def _without_profiles(text: str) -> str:
    doc = yaml.safe_load(text)
    for v in doc["spec"]["variants"]:
        v.pop("profile", None)
        v.pop("parameters", None)
    return yaml.safe_dump(doc)


def test_a_known_model_family_needs_no_profile_nor_parameters() -> None:
    """The assistant example without profiles and parameters parses, passes the operator's
    checks, and plans on the prior (what `paretoscale demo --profiles model` applies)."""
    (md,) = parse_manifests(_without_profiles(EXAMPLE.read_text()), "md.yaml")
    assert estimate_problems(md.spec) == []
    d = decide(md.spec, Observation(at=0.0, requests_per_s=12.0), CurrentState())
    assert {e.capacity_basis for e in d.evaluations} == {"model"} and d.slo_met


def test_an_unknown_model_without_a_profile_is_refused_with_the_fix() -> None:
    doc = yaml.safe_load(_without_profiles(EXAMPLE.read_text()))
    doc["spec"]["variants"][2]["vllm"]["model"] = "acme/house-model"
    (md,) = parse_manifests(yaml.safe_dump(doc), "md.yaml")
    (line,) = estimate_problems(md.spec)
    assert line.startswith("spec.variants[2]: variant 'w4a16-l40s' needs a profile")
    assert "or parameters" in line and "not a model family the simulator knows" in line
    doc["spec"]["variants"][2]["parameters"] = 8_000_000_000
    (md,) = parse_manifests(yaml.safe_dump(doc), "md.yaml")
    assert estimate_problems(md.spec) == []


def test_a_mix_the_model_cannot_run_refuses_the_variant_without_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A variant with neither profile nor parameters is accepted on the default mix; at an
    observed mix where the performance model does not apply, it is infeasible with the fix
    in its reason, and the decision goes on (no assert, no crash loop)."""
    import paretoscale.decide.evaluate as ev

    (md,) = parse_manifests(_without_profiles(EXAMPLE.read_text()), "md.yaml")
    mix = TokenMix(9000, 200)
    real = ev.model_prior
    monkeypatch.setattr(
        ev, "model_prior", lambda v, *a: None if a[2] == mix and v.name == "bf16" else real(v, *a)
    )
    assert estimate_problems(md.spec) == []
    obs = Observation(
        at=0.0, requests_per_s=4.0, prompt_tokens_per_request=9000, output_tokens_per_request=200
    )
    d = decide(md.spec, obs, CurrentState())
    bf16 = d.evaluation("bf16")
    assert not bf16.feasible and "give it a profile or parameters" in bf16.reason
    assert d.variant != "bf16"
