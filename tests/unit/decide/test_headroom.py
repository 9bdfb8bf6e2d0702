"""The headroom rules (decide/headroom.py) and how decide() applies them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.forecast import RateForecast
from paretoscale.decide.headroom import loss_quantile, noise_band, rate_at_risk
from paretoscale.decide.policy import decide
from paretoscale.decide.saturation import Saturation, SaturationMemory
from paretoscale.decide.types import CurrentState, Observation

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"
CALM = Saturation(False, True, 0, "", SaturationMemory("fp8"))
UNEASY = Saturation(False, False, 0, "fp8: 3 requests waiting", SaturationMemory("fp8"))
RUNNING = CurrentState(active="fp8", replicas=1, variant_since=0.0)


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def test_the_band_shrinks_with_the_requests_a_reading_counts() -> None:
    # 70B at 2 req/s over 2 minutes: 240 requests, 2 x sqrt(2/240) = 18%, capped at half of
    # the 1/0.75 - 1 = 33% headroom
    assert noise_band(2.0, 120.0, 0.75) == pytest.approx(1 / 6)
    # 8B at 30 req/s: 3,600 requests
    assert noise_band(30.0, 120.0, 0.8) == pytest.approx(2 * math.sqrt(2 / 3600))
    assert noise_band(30.0, None, 0.8) == 0.0
    assert noise_band(0.0, 120.0, 0.8) == 0.0


def test_the_quantile_covered_is_one_minus_cost_over_value() -> None:
    assert loss_quantile(10.0, 100.0) == pytest.approx(0.9)
    assert loss_quantile(1.0, 1e6) == 0.999
    assert loss_quantile(10.0, 0.0) == 0.5


def test_the_rate_at_risk_reads_the_margin_as_a_log_normal_quantile() -> None:
    ahead = RateForecast(point_rps=10.0, upper_rps=13.0, horizon_s=330.0)
    # at the margin's own quantile (0.9) the rate at risk is the forecast's upper rate
    assert rate_at_risk(ahead, 10.0, 100.0) == pytest.approx(13.0)
    # a replica 1% of the value at risk covers more of the tail, one worth half of it less
    assert rate_at_risk(ahead, 1.0, 100.0) > 15.0
    assert rate_at_risk(ahead, 50.0, 100.0) == pytest.approx(10.0)
    assert rate_at_risk(RateForecast(10.0, 10.0, 330.0), 1.0, 100.0) == 10.0


def test_a_load_past_the_replicas_by_less_than_the_noise_adds_none(
    spec: ModelDeploymentSpec,
) -> None:
    # fp8 serves 15.9 req/s at the SLO, 12.72 at the 0.8 target; 13.2 req/s over 120 s is
    # 1,584 requests, a band of 7.1%: 13.2 / 1.071 = 12.3 fits one replica
    held = decide(
        spec, Observation(at=1e4, requests_per_s=13.2, rate_window_s=120.0), RUNNING, CALM
    )
    assert (held.variant, held.replicas, held.action) == ("fp8", 1, "stay")
    assert any("reading's noise" in r for r in held.reasons)
    # past the band, or with the window unknown, or a signal not calm: a replica at once
    past = decide(
        spec, Observation(at=1e4, requests_per_s=14.0, rate_window_s=120.0), RUNNING, CALM
    )
    unknown = decide(spec, Observation(at=1e4, requests_per_s=13.2), RUNNING, CALM)
    uneasy = decide(
        spec, Observation(at=1e4, requests_per_s=13.2, rate_window_s=120.0), RUNNING, UNEASY
    )
    assert [d.replicas for d in (past, unknown, uneasy)] == [2, 2, 2]


def test_a_forecast_past_the_band_still_adds_the_replica(spec: ModelDeploymentSpec) -> None:
    # the same noisy reading, but the load expected once a replica is Ready (16 req/s) needs
    # two even lowered by the band (16 / 1.071 = 14.9 > 12.72): the hold does not apply
    ahead = RateForecast(point_rps=16.0, upper_rps=17.0, horizon_s=330.0)
    observed = Observation(at=1e4, requests_per_s=13.2, rate_window_s=120.0)
    d = decide(spec, observed, RUNNING, CALM, ahead)
    assert d.replicas == 2 and not any("reading's noise" in r for r in d.reasons)
