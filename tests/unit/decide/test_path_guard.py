"""path_guard: a switch must pay over the load the daily profile expects within the dwell,
not only at this hour's load."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import evaluate
from paretoscale.decide.forecast import RateForecast
from paretoscale.decide.guards import path_guard
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, Observation, VariantEval

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def at(spec: ModelDeploymentSpec, rate: float, name: str) -> VariantEval:
    return next(e for e in evaluate(spec, rate, {}, {}) if e.name == name)


def test_a_gain_that_reverses_within_the_dwell_holds(spec: ModelDeploymentSpec) -> None:
    """At 2 req/s the L40S variant beats fp8; the profile expects 30 req/s for the rest of
    the dwell, where one L40S replica per 5 req/s loses to fp8: hold."""
    now_cur, now_best = at(spec, 2.0, "fp8"), at(spec, 2.0, "w4a16-l40s")
    assert now_best.net_value_per_hour_usd > now_cur.net_value_per_hour_usd
    later = [(at(spec, 30.0, "fp8"), at(spec, 30.0, "w4a16-l40s"))] * 7
    held = path_guard(now_cur, now_best, later, 0.05)
    assert held is not None and "on average" in held
    assert path_guard(now_cur, now_best, [], 0.05) is None  # no path known: no hold
    steady = [(at(spec, 2.0, "fp8"), at(spec, 2.0, "w4a16-l40s"))] * 7
    assert path_guard(now_cur, now_best, steady, 0.05) is None


def test_a_target_that_cannot_serve_the_expected_peak_holds(spec: ModelDeploymentSpec) -> None:
    cur, best = at(spec, 2.0, "fp8"), at(spec, 2.0, "w4a16-l40s")
    peak = (at(spec, 60.0, "fp8"), at(spec, 60.0, "w4a16-l40s"))
    assert peak[0].feasible and not peak[1].feasible  # 8 L40S cannot hold 60 req/s
    held = path_guard(cur, best, [peak], 0.05)
    assert held is not None and "cannot meet the SLO" in held


def test_decide_reads_the_path_of_the_forecast(spec: ModelDeploymentSpec) -> None:
    state = CurrentState(active="fp8", replicas=1, variant_since=0.0)
    obs = Observation(at=100_000.0, requests_per_s=2.0)
    assert decide(spec, obs, state).variant == "w4a16-l40s"
    rising = RateForecast(2.0, 2.0, 600.0, path_rps=(10.0, 20.0, 30.0, 30.0, 30.0))
    held = decide(spec, obs, state, ahead=rising)
    assert held.variant == "fp8" and "within its dwell" in held.reasons[0]
