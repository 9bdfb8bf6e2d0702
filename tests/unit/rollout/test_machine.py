"""The rollout state machine, driven tick by tick on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, Decision, Observation
from paretoscale.rollout.analysis import Reading, Verdict, analyze
from paretoscale.rollout.machine import RolloutState, VariantFacts, step, verify_deadline_s

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"
OK = Verdict("Inconclusive", "no traffic yet")


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), "x")[0].spec


def switch_to_fp8(spec: ModelDeploymentSpec) -> Decision:
    d = decide(spec, Observation(at=0, requests_per_s=12.0), CurrentState())
    assert (d.variant, d.action) == ("fp8", "switch")
    return d


def hold(spec: ModelDeploymentSpec, active: str) -> Decision:
    return decide(
        spec,
        Observation(at=0, requests_per_s=12.0),
        CurrentState(active=active, replicas=1, rollout_in_progress=True),
    )


def test_full_switch_walks_every_phase(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout
    s = RolloutState(active="bf16")
    facts = {"bf16": VariantFacts(2, 2)}
    st = step(s, switch_to_fp8(spec), facts, OK, r, now=0)
    assert st.state.phase == "Preparing" and st.state.target == "fp8"
    assert st.fleet.replicas == {"bf16": 2, "fp8": 1} and st.fleet.service == ("bf16",)
    assert st.events[0].reason == "RolloutStarted"

    # target still loading: stays Preparing, Service untouched
    st = step(st.state, hold(spec, "bf16"), {**facts, "fp8": VariantFacts(1, 0)}, OK, r, now=100)
    assert st.state.phase == "Preparing" and st.fleet.service == ("bf16",)

    facts = {**facts, "fp8": VariantFacts(1, 1)}
    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=200)
    assert st.state.phase == "Verifying" and st.fleet.service == ("bf16", "fp8")

    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=200 + r.verify_seconds - 1)
    assert st.state.phase == "Verifying"
    st = step(
        st.state,
        hold(spec, "bf16"),
        facts,
        Verdict("Successful", "ok"),
        r,
        now=200 + r.verify_seconds,
    )
    assert st.state.phase == "Switching" and st.fleet.service == ("fp8",)
    assert st.fleet.replicas == {"bf16": 2, "fp8": 1}  # old still serves during the move

    t = 300 + r.verify_seconds
    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=t)
    assert st.state.phase == "Draining" and st.fleet.replicas["bf16"] == 2
    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=t + r.drain_grace_seconds)
    assert st.state.phase == "Stable" and st.state.active == "fp8"
    assert st.fleet.replicas == {"bf16": 0, "fp8": 1} and st.fleet.service == ("fp8",)
    assert st.switch is not None and st.switch.outcome == "completed"


def test_ready_timeout_rolls_back(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout
    st = step(
        RolloutState(active="bf16"), switch_to_fp8(spec), {"bf16": VariantFacts(2, 2)}, OK, r, now=0
    )
    facts = {"bf16": VariantFacts(2, 2), "fp8": VariantFacts(1, 0)}
    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=r.ready_timeout_seconds)
    assert st.state.phase == "Preparing"
    st = step(st.state, hold(spec, "bf16"), facts, OK, r, now=r.ready_timeout_seconds + 1)
    assert st.state.phase == "Stable" and st.state.active == "bf16"
    assert st.fleet.replicas == {"bf16": 2, "fp8": 0} and st.fleet.service == ("bf16",)
    assert st.switch is not None and st.switch.outcome == "rolledBack"
    assert "not Ready after 1200s" in st.events[0].message and st.events[0].type == "Warning"


def test_failed_analysis_rolls_back_at_once(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout
    s = RolloutState("Verifying", "bf16", "fp8", 1, 0, 10)
    facts = {"bf16": VariantFacts(2, 2), "fp8": VariantFacts(1, 1)}
    st = step(
        s,
        hold(spec, "bf16"),
        facts,
        Verdict("Failed", "fp8: p95 e2e 12s exceeds the SLO 8s"),
        r,
        now=11,
    )
    assert (
        st.state.active == "bf16"
        and st.fleet.service == ("bf16",)
        and st.fleet.replicas["fp8"] == 0
    )
    assert "exceeds the SLO" in st.state.message


def test_verification_waits_while_metrics_are_unavailable(spec: ModelDeploymentSpec) -> None:
    s = RolloutState("Verifying", "bf16", "fp8", 1, 0, 10)
    facts = {"bf16": VariantFacts(2, 2), "fp8": VariantFacts(1, 1)}
    st = step(
        s,
        hold(spec, "bf16"),
        facts,
        Verdict("Unavailable", "connection refused"),
        spec.rollout,
        now=500,
    )
    assert st.state.phase == "Verifying" and st.fleet.service == ("bf16", "fp8")
    assert "waiting for metrics" in st.state.message


def test_restart_mid_switch_resumes_from_persisted_state(spec: ModelDeploymentSpec) -> None:
    # A new process sees Switching in status: it re-applies the same Service and moves on.
    s = RolloutState("Switching", "bf16", "fp8", 1, 0, 50)
    facts = {"bf16": VariantFacts(2, 2), "fp8": VariantFacts(1, 1)}
    st = step(s, hold(spec, "bf16"), facts, OK, spec.rollout, now=60)
    assert st.state.phase == "Draining" and st.fleet.service == ("fp8",)


def test_target_removed_from_spec_rolls_back(spec: ModelDeploymentSpec) -> None:
    s = RolloutState("Preparing", "bf16", "gone", 1, 0, 0)
    st = step(s, hold(spec, "bf16"), {"bf16": VariantFacts(2, 2)}, OK, spec.rollout, now=5)
    assert (
        st.state.active == "bf16"
        and st.state.phase == "Stable"
        and "removed from spec" in st.state.message
    )


def test_first_rollout_has_no_drain(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout
    st = step(RolloutState(), switch_to_fp8(spec), {}, OK, r, now=0)
    assert st.fleet.service == ("fp8",) and st.state.phase == "Preparing"
    facts = {"fp8": VariantFacts(1, 1)}
    st = step(st.state, hold(spec, "fp8"), facts, OK, r, now=1)
    st = step(st.state, hold(spec, "fp8"), facts, OK, r, now=1 + r.verify_seconds)
    assert st.state.phase == "Switching"
    st = step(st.state, hold(spec, "fp8"), facts, OK, r, now=2 + r.verify_seconds)
    assert (
        st.state.phase == "Stable" and st.state.active == "fp8" and st.fleet.replicas == {"fp8": 1}
    )


def test_stable_scales_within_variant(spec: ModelDeploymentSpec) -> None:
    d = decide(
        spec,
        Observation(at=0, requests_per_s=30.0),
        CurrentState(active="fp8", replicas=1, variant_since=0),
    )
    st = step(RolloutState(active="fp8"), d, {"fp8": VariantFacts(1, 1)}, OK, spec.rollout, now=10)
    assert st.fleet.replicas == {"fp8": 3} and st.events[0].reason == "Scaled"


@pytest.mark.parametrize(
    ("reading", "outcome", "words"),
    [
        (Reading(5.0, 100, 0, 0), "Successful", "within the SLO"),
        (Reading(9.0, 100, 0, 0), "Failed", "exceeds the SLO"),
        (Reading(5.0, 5, 0, 0), "Inconclusive", "not enough traffic (5 of 20"),
        (Reading(None, 100, 0, 0), "Unavailable", "latency missing"),
        (Reading(5.0, None, None, None), "Unavailable", "no request counts"),
        (Reading(5.0, 100, 6, 0), "Failed", "6 of 100 requests failed"),
        (Reading(5.0, 100, 5, 0), "Successful", "5 of 100 requests failed"),
        (Reading(None, 8, 2, 0), "Failed", "2 of 8 requests failed"),  # fails before 20
        (Reading(5.0, 100, 0, 10), "Failed", "aborted"),
    ],
    ids=[
        "within",
        "over-slo",
        "little-traffic",
        "latency-missing",
        "no-counts",
        "errors",
        "errors-at-limit",
        "errors-early",
        "aborts",
    ],
)
def test_analysis(reading: Reading, outcome: str, words: str) -> None:
    v = analyze("fp8", reading, 8.0, "p95 e2e")
    assert v.outcome == outcome and words in v.message


def test_aborts_no_worse_than_what_serves_pass() -> None:
    """Clients that give up on both variants (an overload) do not fail the target."""
    target = Reading(5.0, 100, 0, 10)
    assert analyze("fp8", target, 8.0, "p95", Reading(5.0, 1000, 0, 100)).outcome == "Successful"
    assert analyze("fp8", target, 8.0, "p95", Reading(5.0, 1000, 0, 10)).outcome == "Failed"


VERIFYING = RolloutState("Verifying", "bf16", "fp8", 1, 0, 10)
BOTH = {"bf16": VariantFacts(2, 2), "fp8": VariantFacts(1, 1)}


@pytest.mark.parametrize(
    ("verdict", "why"),
    [
        (Verdict("Inconclusive", "fp8: 3 of 20 requests", "not enough traffic"), "not enough"),
        (Verdict("Unavailable", "fp8: latency missing", "latency missing"), "latency missing"),
        (Verdict("Unavailable", "no vllm series", "no metrics"), "no metrics"),
    ],
)
def test_verification_never_passes_without_success_and_times_out(
    spec: ModelDeploymentSpec, verdict: Verdict, why: str
) -> None:
    """Fail-closed: Inconclusive and Unavailable keep the Service on both variants past the
    verify window, and roll back at the deadline with a reason that says which."""
    r = spec.rollout
    deadline = 10 + verify_deadline_s(r)
    for now in (10 + r.verify_seconds, deadline - 1):
        st = step(VERIFYING, hold(spec, "bf16"), BOTH, verdict, r, now=now)
        assert st.state.phase == "Verifying" and st.fleet.service == ("bf16", "fp8")
        assert st.switch is None
    st = step(VERIFYING, hold(spec, "bf16"), BOTH, verdict, r, now=deadline)
    assert st.state.phase == "Stable" and st.state.active == "bf16"
    assert st.fleet.service == ("bf16",) and st.fleet.replicas["fp8"] == 0
    assert st.switch is not None and st.switch.outcome == "rolledBack"
    assert "verification timed out" in st.switch.reason and why in st.switch.reason


def test_success_switches_only_after_the_verify_window(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout
    ok = Verdict("Successful", "fp8: p95 e2e 2s within the SLO 8s")
    early = step(VERIFYING, hold(spec, "bf16"), BOTH, ok, r, now=10 + r.verify_seconds - 1)
    assert early.state.phase == "Verifying"
    st = step(VERIFYING, hold(spec, "bf16"), BOTH, ok, r, now=10 + r.verify_seconds)
    assert st.state.phase == "Switching" and st.fleet.service == ("fp8",)


def test_the_deadline_is_at_least_the_verify_window(spec: ModelDeploymentSpec) -> None:
    r = spec.rollout.model_copy(update={"verify_seconds": 900, "verify_timeout_seconds": 30})
    assert verify_deadline_s(r) == 900
    assert verify_deadline_s(spec.rollout) == spec.rollout.verify_timeout_seconds == 600
