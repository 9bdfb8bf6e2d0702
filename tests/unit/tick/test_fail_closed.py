"""The tick's verification is fail-closed: what the target's signals lack never passes.

A rollout fp8 -> bf16-ngram in Verifying, past its verify window, with the serving variant
healthy: the Service moves to the target only when its analysis is Successful."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.types import LatencyReading, Observation, VariantSignals
from paretoscale.rollout.machine import RolloutState, VariantFacts, verify_deadline_s
from paretoscale.tick.memory import TickMemory
from paretoscale.tick.tick import tick

EXAMPLE = Path(__file__).parents[3] / "examples" / "llama-70b-speculative.yaml"
START = 1_000_000.0
FACTS = {"fp8": VariantFacts(2, 2), "bf16-ngram": VariantFacts(2, 2)}
HEALTHY = VariantSignals(
    requests_per_s=2.0,
    latency=LatencyReading(0.03, 0.025, 0.05),
    finished_total=5000,
    errors_total=0,
    aborts_total=0,
)


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def verifying() -> TickMemory:
    state = RolloutState("Verifying", "fp8", "bf16-ngram", 2, START - 300, START, "verifying")
    return TickMemory(state, variant_since=START - 20_000, replicas=2)


def run(
    spec: ModelDeploymentSpec, target: VariantSignals | None, now: float, **obs: object
) -> tuple[str, str, str]:
    """(verdict outcome, message, phase after the tick) for the target's signals at `now`."""
    variants = {"fp8": HEALTHY, **({"bf16-ngram": target} if target else {})}
    o = Observation(at=now, **{"requests_per_s": 4.0, "variants": variants, **obs})  # type: ignore[arg-type]
    out = tick(spec, verifying(), o, FACTS, now)
    assert out.verdict is not None and out.step is not None
    return out.verdict.outcome, out.verdict.message, out.step.state.phase


def target(**changes: object) -> VariantSignals:
    fields = {
        "requests_per_s": 2.0,
        "latency": LatencyReading(0.03, 0.025, 0.05),
        "finished_total": 200.0,
        "errors_total": 0.0,
        "aborts_total": 0.0,
        **changes,
    }
    return VariantSignals(**fields)  # type: ignore[arg-type]


def test_a_healthy_target_switches_after_the_window(spec: ModelDeploymentSpec) -> None:
    now = START + spec.rollout.verify_seconds
    assert run(spec, target(), now)[::2] == ("Successful", "Switching")


@pytest.mark.parametrize(
    ("signals", "outcome", "words"),
    [
        (target(latency=None), "Unavailable", "latency missing"),
        (target(finished_total=None), "Unavailable", "no request counts"),
        (None, "Unavailable", "no request counts"),
        (target(finished_total=12.0), "Inconclusive", "not enough traffic"),
    ],
    ids=["latency-missing", "no-counters", "no-series", "little-traffic"],
)
def test_what_is_missing_never_switches(
    spec: ModelDeploymentSpec, signals: VariantSignals | None, outcome: str, words: str
) -> None:
    now = START + spec.rollout.verify_seconds + 30
    got, message, phase = run(spec, signals, now)
    assert (got, phase) == (outcome, "Verifying") and words in message
    late = START + verify_deadline_s(spec.rollout)
    assert run(spec, signals, late)[2] == "Stable"  # rolled back at the deadline


def test_metrics_unavailable_is_unavailable(spec: ModelDeploymentSpec) -> None:
    now = START + spec.rollout.verify_seconds
    got, message, phase = run(
        spec, target(), now, requests_per_s=None, metrics_problem="request_rate: timeout"
    )
    assert (got, phase) == ("Unavailable", "Verifying") and "timeout" in message


def test_a_target_answering_errors_rolls_back_at_once(spec: ModelDeploymentSpec) -> None:
    got, message, phase = run(spec, target(errors_total=30.0), START + 1)
    assert (got, phase) == ("Failed", "Stable") and "30 of 200 requests failed" in message


def test_without_prometheus_readiness_verifies(spec: ModelDeploymentSpec) -> None:
    now = START + spec.rollout.verify_seconds
    got, message, phase = run(spec, None, now, requests_per_s=None, metrics_expected=False)
    assert (got, phase) == ("Successful", "Switching") and "readiness" in message
