""" "hold" keeps the replicas the operator last decided (its memory, status.replicas), never a
count read from a Deployment that is missing from the cache or was scaled by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.types import Observation
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import TickMemory
from paretoscale.tick.tick import held, tick

EXAMPLES = Path(__file__).parents[3] / "examples"
NOW = 100_000.0
DOWN = Observation(at=NOW, metrics_problem="Prometheus unreachable")  # metrics expected


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    path = EXAMPLES / "llama-70b-speculative.yaml"
    return parse_manifests(path.read_text(), str(path))[0].spec


def serving(replicas: int | None) -> TickMemory:
    return TickMemory(RolloutState("Stable", "fp8"), variant_since=0.0, replicas=replicas)


@pytest.mark.parametrize(
    "facts",
    [{}, {"fp8": VariantFacts(0, 0)}, {"fp8": VariantFacts(7, 7)}],
    ids=["not-in-cache", "scaled-to-0-by-hand", "scaled-up-by-hand"],
)
def test_metrics_down_holds_the_recorded_replicas(
    spec: ModelDeploymentSpec, facts: dict[str, VariantFacts]
) -> None:
    out = tick(spec, serving(3), DOWN, facts, NOW)
    assert out.decision.action == "hold"
    assert out.step is not None and out.step.fleet.replicas == {"fp8": 3}
    assert out.step.fleet.service == ("fp8",)
    assert out.memory.replicas == 3
    assert not any(e.reason == "Scaled" for e in out.step.events)


def test_without_a_recorded_count_the_deployment_is_read(spec: ModelDeploymentSpec) -> None:
    """A status written before status.replicas was memory: adopt what the cluster runs."""
    out = tick(spec, serving(None), DOWN, {"fp8": VariantFacts(2, 2)}, NOW)
    assert out.step is not None and out.step.fleet.replicas == {"fp8": 2}
    assert out.memory.replicas == 2


def test_a_rollout_keeps_the_active_at_its_recorded_count(spec: ModelDeploymentSpec) -> None:
    verifying = TickMemory(
        RolloutState("Verifying", "fp8", "bf16-ngram", 2, NOW - 60, NOW - 30, "verifying"),
        variant_since=0.0,
        replicas=3,
    )
    facts = {"bf16-ngram": VariantFacts(2, 2)}  # fp8's Deployment not observed
    out = tick(spec, verifying, DOWN, facts, NOW)
    assert out.step is not None
    assert out.step.fleet.replicas == {"fp8": 3, "bf16-ngram": 2}
    assert out.memory.replicas == 3


def test_steady_ticks_emit_no_scaled_event(spec: ModelDeploymentSpec) -> None:
    """With the Deployment gone, each tick used to read 0 and say "Scaled" again."""
    memory = serving(3)
    for k in range(3):
        out = tick(spec, memory, DOWN, {}, NOW + 30 * k)
        assert out.step is not None and not out.step.events
        memory = out.memory


def test_held_only_replaces_the_active_desired_count() -> None:
    facts = {"fp8": VariantFacts(0, 1), "bf16": VariantFacts(2, 2)}
    assert held(facts, "fp8", 3) == {"fp8": VariantFacts(3, 1), "bf16": VariantFacts(2, 2)}
    assert held(facts, None, 3) == facts and held(facts, "fp8", None) == facts
