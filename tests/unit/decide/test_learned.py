"""The learned profile's window and fit: bounded, aged, shrunk toward the declared profile by
its confidence, upper bounds one-sided and robust to a stray low one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.corrections import Evidence
from paretoscale.decide.learned import (
    MAX_AGE_S,
    MAX_SAMPLES,
    MIN_BOUNDS,
    MIN_WEIGHT,
    PRIOR_WEIGHT,
    Fit,
    LearnedProfile,
    Sample,
    factors,
    fit,
    learn,
    window,
)
from paretoscale.decide.types import LatencyReading
from paretoscale.economics.work import TokenMix

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def points(factor: float, n: int, start: float = 0.0, weight: float = 1.0) -> tuple[Sample, ...]:
    return tuple(Sample(start + 30.0 * i, 8.0, 8.0, factor, False, weight) for i in range(n))


def test_no_sample_is_the_declared_profile() -> None:
    assert fit(()) == fit(points(0.5, 0))
    assert (fit(()).factor, fit(()).confidence, fit(()).applied) == (1.0, 0.0, 1.0)
    assert factors({"fp8": LearnedProfile(15.9)}) == {}


def test_the_decision_follows_the_fit_by_its_confidence() -> None:
    one, many = fit(points(0.5, 1)), fit(points(0.5, 40))
    assert one.factor == many.factor == pytest.approx(0.5)
    assert one.confidence == pytest.approx(1 / (1 + PRIOR_WEIGHT), abs=1e-3)
    assert one.applied == pytest.approx(0.5 ** (1 / (1 + PRIOR_WEIGHT)), abs=1e-3)
    assert 0.5 < many.applied < 0.51 < one.applied < 1.0
    # readings far below the SLO weigh little: the same count moves the decision less
    light = fit(points(0.5, 4, weight=MIN_WEIGHT))
    assert light.confidence < fit(points(0.5, 4)).confidence
    assert light.applied > fit(points(0.5, 4)).applied


def test_the_fit_is_least_squares_in_log_space() -> None:
    f = fit((*points(0.5, 10), *points(2.0, 10, 600.0)))
    assert f.factor == pytest.approx(1.0, abs=1e-3)  # geometric, not arithmetic, mean
    f = fit((*points(0.5, 30), *points(0.8, 10, 900.0)))
    assert f.factor == pytest.approx(math.exp((30 * math.log(0.5) + 10 * math.log(0.8)) / 40), 1e-3)


def test_a_bound_only_caps_and_a_stray_low_one_does_not_stick() -> None:
    # h100-price-cut: once, at saturation while new pods loaded, completions per replica read
    # 0.88 of the declared capacity; calm readings then say 1.0. The old scalar stayed at 0.88.
    stray = Sample(0.0, 14.0, 12.0, 0.88, bound=True)
    again = Sample(30.0, 14.0, 12.0, 0.88, bound=True)
    assert fit((stray, again)).factor == pytest.approx(0.88)
    calm = points(1.0, 20, 30.0)
    f = fit((stray, again, *calm))
    assert f.factor > 0.98  # a bound counts only while the fit lies above it
    # a saturated window's bounds count as one, at their median: one stray low bound among
    # readings at 0.6 does not drag the fit to it
    sat = tuple(Sample(30.0 * i, 9.5, 20.0, 0.6, bound=True) for i in range(9))
    low = Sample(300.0, 2.0, 9.0, 0.15, bound=True)
    assert fit((*sat, low)).factor == pytest.approx(0.6)
    assert fit((*sat, low, *points(0.4, 10, 600.0))).factor == pytest.approx(0.4)


def test_one_saturated_reading_alone_is_no_bound() -> None:
    # diurnal-14d-70b: one fp8 replica at 2.1 req/s, 60% of its capacity, saw its p95 ITL
    # past the SLO for two ticks (a run of long prompts): the one bound it gave (0.62) moved
    # the factor to 0.72 and the operator to int8-w8a8 and back, 11 switches in 14 days.
    # A bound counts once MIN_BOUNDS readings in the window say it.
    spike = Sample(0.0, 2.1, 0.03, 0.62, bound=True)
    assert MIN_BOUNDS == 2
    assert fit((spike,)) == Fit()
    assert fit((spike, Sample(30.0, 2.1, 0.03, 0.62, bound=True))).applied < 0.8


def test_the_window_is_bounded_and_ages_out() -> None:
    many = points(0.5, MAX_SAMPLES + 10)
    kept = window(many, many[-1].at)
    assert len(kept) == MAX_SAMPLES and kept[-1] == many[-1] and kept[0] == many[10]
    assert window(many, many[-1].at + MAX_AGE_S + 1.0) == ()
    half = window(many, many[0].at + MAX_AGE_S + 30.0 * 20)
    assert half and all(s.at >= 30.0 * 20 for s in half)


def test_learn_takes_samples_from_trusted_readings_only(spec: ModelDeploymentSpec) -> None:
    # fp8 shows 9.1 s (exact) at 9 req/s per replica: its profile reaches 9.1 s at 18.
    slow = Evidence(9.0, LatencyReading(9.1, 9.1, 9.1))
    light = Evidence(2.0, LatencyReading(2.7, 2.7, 2.7))  # far below half its capacity
    w = learn(spec, {}, {"fp8": slow, "bf16": light, "gone": slow}, 100.0)
    assert set(w) == {"fp8"}
    (s,) = w["fp8"].samples
    assert (s.at, s.factor, s.bound, s.weight) == (100.0, pytest.approx(0.5), False, 1.0)
    assert s.rate_rps == pytest.approx(9.0)  # without a mix: read at the profile's own
    # the window ages out; a variant without samples is dropped
    assert learn(spec, w, {}, 100.0 + MAX_AGE_S + 1) == {}
    assert learn(spec, w, {}, 200.0) == w


def test_samples_are_kept_at_the_profiles_token_mix(spec: ModelDeploymentSpec) -> None:
    # twice the tokens per request: the declared capacity at this mix is lower, so 9 req/s
    # observed is more than 9 req/s of the profile's own mix
    v = next(x for x in spec.variants if x.name == "fp8")
    assert v.profile_tokens is None  # the Azure conversation mix
    heavy = TokenMix(2310.0, 422.0)
    slow = Evidence(5.0, LatencyReading(30.0, 30.0, 30.0))  # beyond the profile's top
    w = learn(spec, {}, {"fp8": slow}, 0.0, mix=heavy)
    (s,) = w["fp8"].samples
    assert s.rate_rps > 5.0 * 1.5
