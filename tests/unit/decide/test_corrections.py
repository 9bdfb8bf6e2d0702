"""What one reading says at a bucket-edge SLO and at saturation: something only on readings
beyond noise, and only as far as the nearest edge; the learned profile takes a sample only
from such a reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.corrections import Evidence, evidence_factor
from paretoscale.decide.learned import Sample, factors, fit, learn
from paretoscale.decide.types import LatencyReading
from paretoscale.economics.capacity import capacity_at_slo_rps, rate_at_latency_rps

EXAMPLE = Path(__file__).parents[3] / "examples" / "llama-70b-speculative.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def profile(spec: ModelDeploymentSpec, name: str) -> tuple[list[float], list[float]]:
    v = next(x for x in spec.variants if x.name == name)
    assert v.profile
    return [p.requests_per_second for p in v.profile], [p.latency_seconds for p in v.profile]


def test_a_p95_interpolated_under_the_edge_says_nothing(spec: ModelDeploymentSpec) -> None:
    # fp8 at 2 req/s: the profile predicts 0.0215 s, inside (0.01, 0.025]; the quantile
    # interpolates to 0.024 at any load there (today's correction read that as "slower")
    under = LatencyReading(0.024, 0.01, 0.025)
    assert evidence_factor(spec, "fp8", Evidence(2.0, under), 1.0) is None
    assert learn(spec, {}, {"fp8": Evidence(2.0, under)}, 0.0) == {}


def test_an_edge_slo_learns_from_the_share_only_beyond_noise(spec: ModelDeploymentSpec) -> None:
    rates, lats = profile(spec, "fp8")
    capacity = capacity_at_slo_rps(rates, lats, 0.025)
    noise = LatencyReading(0.05, 0.025, 0.05, within_slo=0.94, count=250)
    assert evidence_factor(spec, "fp8", Evidence(2.0, noise), 1.0) is None
    missed = LatencyReading(0.05, 0.025, 0.05, within_slo=0.85, count=250)
    got = evidence_factor(spec, "fp8", Evidence(2.8, missed), 1.0)
    assert got == pytest.approx(2.8 / capacity)  # capacity at the SLO <= what it served
    # well below capacity a miss is the tail of the request mix, not the load
    assert evidence_factor(spec, "fp8", Evidence(0.7 * capacity, missed), 1.0) is None
    # beyond the profile's capacity a miss is what the profile predicts: nothing to learn
    assert evidence_factor(spec, "fp8", Evidence(4.0, missed), 1.0) is None
    met = LatencyReading(0.02, 0.01, 0.025, within_slo=0.99, count=400)
    faster = evidence_factor(spec, "fp8", Evidence(4.0, met), 1.0)
    assert faster == pytest.approx(4.0 / capacity)
    assert evidence_factor(spec, "fp8", Evidence(3.0, met), 1.0) is None  # as predicted


def test_without_the_share_the_bucket_interval_bounds_the_step(
    spec: ModelDeploymentSpec,
) -> None:
    rates, lats = profile(spec, "fp8")
    # reading 60% into (0.025, 0.05] at 2.8 req/s where the profile says 0.0235:
    # reality reaches the 0.025 edge by 2.8 req/s, the profile only at rate_at(0.025)
    over = LatencyReading(0.04, 0.025, 0.05)
    at_edge = rate_at_latency_rps(rates, lats, 0.025)
    assert at_edge is not None
    got = evidence_factor(spec, "fp8", Evidence(2.8, over), 1.0)
    assert got == pytest.approx(2.8 / at_edge)
    barely = LatencyReading(0.026, 0.025, 0.05)  # crossed the edge by noise
    assert evidence_factor(spec, "fp8", Evidence(2.8, barely), 1.0) is None


def test_overload_bounds_the_factor_from_above_only(spec: ModelDeploymentSpec) -> None:
    rates, lats = profile(spec, "fp8")
    declared = capacity_at_slo_rps(rates, lats, 0.025)
    late = LatencyReading(0.06, 0.05, 0.075)
    got = evidence_factor(spec, "fp8", Evidence(0.8 * declared, late, saturated=True), 1.0)
    assert got == pytest.approx(0.8)  # completions per replica >= capacity at the SLO
    # serving more than the corrected capacity while saturated says nothing new
    fast = Evidence(1.2 * declared, late, saturated=True)
    assert evidence_factor(spec, "fp8", fast, 1.0) is None
    # one observation moves at most 2x
    crawl = Evidence(0.1 * declared, late, saturated=True)
    assert evidence_factor(spec, "fp8", crawl, 1.0) == pytest.approx(0.5)
    new = learn(spec, {}, {"fp8": Evidence(0.8 * declared, late, saturated=True)}, 60.0)
    (sample,) = new["fp8"].samples
    assert sample.bound and sample.factor == pytest.approx(0.8)
    assert new["fp8"].declared_rps == pytest.approx(declared)
    # bounds among readings that say faster only cap the fit; one alone is no bound yet
    faster = tuple(Sample(float(t), 1.0, 0.02, 1.2, False) for t in range(10))
    assert fit((*faster, sample)).factor == pytest.approx(1.2)
    capped = fit((*faster, sample, replace(sample, at=90.0)))
    assert 0.8 < capped.factor < 1.2
    assert fit(faster).factor == pytest.approx(1.2)
    # readings at or below the bound: it does not count
    slower = tuple(Sample(float(t), 1.0, 0.02, 0.6, False) for t in range(10))
    assert fit((*slower, sample)).factor == pytest.approx(0.6) == fit(slower).factor
    # the decision uses a bound once a second reading says it
    assert factors(new)["fp8"] == 1.0
    again = learn(spec, new, {"fp8": Evidence(0.8 * declared, late, saturated=True)}, 90.0)
    assert factors(again)["fp8"] < 1.0


def test_an_estimate_learns_only_from_a_clear_miss(spec: ModelDeploymentSpec) -> None:
    noise = LatencyReading(0.027, 0.025, 0.05)
    assert evidence_factor(spec, "int8-w8a8", Evidence(3.0, noise), 1.0) is None
    missed = LatencyReading(0.045, 0.025, 0.05)
    got = evidence_factor(spec, "int8-w8a8", Evidence(3.0, missed), 1.0)
    assert got is not None and got < 1.0


ASSISTANT = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


def test_a_reading_says_only_its_bucket_wherever_the_interpolation_falls() -> None:
    # the 8B's e2e SLO (8 s) sits inside vLLM's (5, 10] bucket; fp8's profile predicts 7.0 s
    # at 14 req/s
    spec = parse_manifests(ASSISTANT.read_text(), str(ASSISTANT))[0].spec
    rates, lats = profile(spec, "fp8")
    for value in (5.2, 7.0, 9.8):  # in the predicted bucket: nothing, however high it reads
        assert evidence_factor(spec, "fp8", Evidence(14.0, LatencyReading(value, 5, 10)), 1) is None
    # a bucket below the prediction: reality reaches 5 s only past 14 req/s, the profile at
    # R(5) = 10.2: the factor moves to the nearest end of what the bucket allows, 14 / R(5)
    at_5 = rate_at_latency_rps(rates, lats, 5.0)
    assert at_5 is not None
    faster = evidence_factor(spec, "fp8", Evidence(14.0, LatencyReading(4.9, 2.5, 5)), 1.0)
    assert faster == pytest.approx(14.0 / at_5)
    assert evidence_factor(spec, "fp8", Evidence(14.0, LatencyReading(4.9, 2.5, 5)), 1.4) is None
    # above the profile's last latency (9.1 s): slower than it says anywhere, k <= 14 / 18
    slower = evidence_factor(spec, "fp8", Evidence(14.0, LatencyReading(11.0, 10, 15)), 1.0)
    assert slower == pytest.approx(14.0 / rates[-1])
