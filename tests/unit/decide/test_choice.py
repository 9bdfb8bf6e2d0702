"""How a choice between variants is made: for the load expected while the choice must run,
and on capacities that live readings have confirmed (the 70B example, where variants are
near-ties at a given minute's load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import evaluate, unproven_factors
from paretoscale.decide.forecast import RateForecast
from paretoscale.decide.policy import UNKNOWN_DAY_BAND, decide
from paretoscale.decide.types import CurrentState, Observation, VariantEval
from paretoscale.sim.prior import UNCERTAINTY

EXAMPLE = Path(__file__).parents[3] / "examples" / "llama-70b-speculative.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def at(spec: ModelDeploymentSpec, rate: float) -> dict[str, VariantEval]:
    return {e.name: e for e in evaluate(spec, rate, {}, {})}


def test_a_first_rollout_goes_to_the_variant_with_headroom(spec: ModelDeploymentSpec) -> None:
    """At 3.5 req/s bf16-ngram and fp8 both need 2 replicas and bf16-ngram's 0.001 of
    quality makes it the best at this minute's load; 25% more load needs a third
    bf16-ngram replica and still 2 of fp8."""
    now, more = at(spec, 3.5), at(spec, 3.5 * UNKNOWN_DAY_BAND[1])
    assert now["bf16-ngram"].net_value_per_hour_usd > now["fp8"].net_value_per_hour_usd
    assert more["bf16-ngram"].replicas > more["fp8"].replicas
    d = decide(spec, Observation(at=0, requests_per_s=3.5), CurrentState())
    assert (d.variant, d.replicas) == ("fp8", 2)
    assert "over the load expected while it must run" in d.reasons[-1]


def test_a_model_prior_nothing_confirmed_does_not_win_on_its_face_value(
    spec: ModelDeploymentSpec,
) -> None:
    """int8-w8a8 has no profile: at 2.65 req/s its prior fits the load on 1 replica where fp8
    needs 2, a gain far above the switch margin. Unconfirmed, its capacity counts less the
    prior's uncertainty (2 replicas: no gain), so fp8 stays; once live readings confirm the
    prior (a learned factor), the same load switches."""
    face = at(spec, 2.65)
    int8, fp8 = face["int8-w8a8"], face["fp8"]
    assert int8.capacity_basis == "model" and (int8.replicas, fp8.replicas) == (1, 2)
    assert int8.net_value_per_hour_usd - fp8.net_value_per_hour_usd > 0.05 * fp8.hourly_cost_usd
    steady = RateForecast(2.65, 2.65, 600.0, path_rps=(2.65,) * 8)
    state = CurrentState(active="fp8", replicas=2, variant_since=0.0)
    held = decide(spec, Observation(at=100_000.0, requests_per_s=2.65), state, ahead=steady)
    assert held.variant == "fp8" and held.reasons[0].startswith("staying on fp8")
    confirmed = Observation(at=100_000.0, requests_per_s=2.65, capacity_factors={"int8-w8a8": 1.0})
    assert decide(spec, confirmed, state, ahead=steady).variant == "int8-w8a8"


def test_unproven_factors_touch_only_unconfirmed_model_priors(spec: ModelDeploymentSpec) -> None:
    factors = unproven_factors(spec, {"fp8": 0.9}, None, None)
    assert set(factors) == {"fp8", "int8-w8a8"} and factors["fp8"] == 0.9
    assert 0.5 < factors["int8-w8a8"] <= 1.0 - UNCERTAINTY
    assert "int8-w8a8" not in unproven_factors(spec, {}, None, None, but="int8-w8a8")
    assert unproven_factors(spec, {"int8-w8a8": 1.1}, None, None)["int8-w8a8"] == 1.1
