"""plan_changes() compares the rendering with what the watch cache observes, never with what
was sent: a missing, hand-scaled or re-selected object is applied again; an object as
rendered is not; a variant neither active nor target is scaled to 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paretoscale.actuate.plan import (
    HASH_ANNOTATION,
    Observed,
    object_key,
    observed_of,
    plan_changes,
)
from paretoscale.actuate.render import Owner
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.rollout.machine import Fleet

ROOT = Path(__file__).parents[3]
OWNER = Owner("assistant", "llm", "00000000-0000-0000-0000-000000000001")
SPEC: ModelDeploymentSpec = parse_manifests(
    (ROOT / "examples" / "assistant-llama-8b.yaml").read_text(), "assistant"
)[0].spec


def as_cluster(manifests: tuple[dict[str, Any], ...]) -> dict[str, Observed]:
    """What the watch cache would observe once these manifests are applied."""
    return {object_key(m): observed_of(m) for m in manifests}


def keys(manifests: tuple[dict[str, Any], ...]) -> list[str]:
    return [object_key(m) for m in manifests]


def test_everything_missing_is_applied_and_removed_variants_deleted() -> None:
    fleet = Fleet({"fp8": 1, "bf16": 0}, ("fp8",))
    first = plan_changes(OWNER, SPEC, fleet, {"bf16", "old"}, {})
    assert keys(first.apply) == [
        "Deployment/assistant-bf16",
        "PodDisruptionBudget/assistant-bf16",
        "Deployment/assistant-fp8",
        "PodDisruptionBudget/assistant-fp8",
        "Service/assistant",
    ]
    assert all(HASH_ANNOTATION in m["metadata"]["annotations"] for m in first.apply)
    assert first.delete_deployments == ("assistant-old",)


def test_nothing_is_applied_when_the_cluster_shows_the_rendering() -> None:
    fleet = Fleet({"fp8": 2}, ("fp8",))
    cluster = as_cluster(plan_changes(OWNER, SPEC, fleet, set(), {}).apply)
    again = plan_changes(OWNER, SPEC, fleet, {"fp8"}, cluster)
    assert again.apply == () and again.delete_deployments == ()


def test_a_deleted_object_is_applied_again_whatever_was_sent_before() -> None:
    fleet = Fleet({"fp8": 2}, ("fp8",))
    cluster = as_cluster(plan_changes(OWNER, SPEC, fleet, set(), {}).apply)
    for gone in (
        "Deployment/assistant-fp8",
        "Service/assistant",
        "PodDisruptionBudget/assistant-fp8",
    ):
        left = {k: v for k, v in cluster.items() if k != gone}
        assert keys(plan_changes(OWNER, SPEC, fleet, {"fp8"}, left).apply) == [gone]


def test_a_manual_scale_or_selector_edit_is_reverted() -> None:
    fleet = Fleet({"fp8": 2}, ("fp8",))
    cluster = as_cluster(plan_changes(OWNER, SPEC, fleet, set(), {}).apply)
    dep = cluster["Deployment/assistant-fp8"]
    scaled = {**cluster, "Deployment/assistant-fp8": Observed(dep.rendered_hash, 0, dep.selector)}
    fixed = plan_changes(OWNER, SPEC, fleet, {"fp8"}, scaled).apply
    assert keys(fixed) == ["Deployment/assistant-fp8"] and fixed[0]["spec"]["replicas"] == 2
    svc = cluster["Service/assistant"]
    moved = {**cluster, "Service/assistant": Observed(svc.rendered_hash, None, {"x": "y"})}
    assert keys(plan_changes(OWNER, SPEC, fleet, {"fp8"}, moved).apply) == ["Service/assistant"]


def test_a_changed_rendering_is_applied_by_its_hash() -> None:
    cluster = as_cluster(plan_changes(OWNER, SPEC, Fleet({"fp8": 2}, ("fp8",)), set(), {}).apply)
    scaled = plan_changes(OWNER, SPEC, Fleet({"fp8": 3}, ("fp8",)), {"fp8"}, cluster).apply
    assert keys(scaled) == ["Deployment/assistant-fp8"]
    dep = cluster["Deployment/assistant-fp8"]
    stale = {**cluster, "Deployment/assistant-fp8": Observed("0123", dep.replicas, dep.selector)}
    assert keys(plan_changes(OWNER, SPEC, Fleet({"fp8": 2}, ("fp8",)), {"fp8"}, stale).apply) == [
        "Deployment/assistant-fp8"
    ]


def test_a_variant_neither_active_nor_target_is_scaled_to_zero() -> None:
    """E.g. a target started just before a crash, with the status still Stable on fp8."""
    fleet = Fleet({"fp8": 2}, ("fp8",))
    cluster = as_cluster(plan_changes(OWNER, SPEC, fleet, set(), {}).apply)
    stray = plan_changes(OWNER, SPEC, Fleet({"bf16": 3}, ()), set(), {}).apply
    cluster |= as_cluster(stray)
    out = plan_changes(OWNER, SPEC, fleet, {"fp8", "bf16"}, cluster)
    assert [(object_key(m), m["spec"].get("replicas")) for m in out.apply] == [
        ("Deployment/assistant-bf16", 0)
    ]
    assert out.delete_deployments == ()
    # once it is at 0, nothing more is applied
    cluster |= as_cluster(out.apply)
    assert plan_changes(OWNER, SPEC, fleet, {"fp8", "bf16"}, cluster).apply == ()


def test_observed_of_reads_the_api_json() -> None:
    body = {
        "metadata": {
            "name": "x",
            "annotations": {HASH_ANNOTATION: "abc"},
            "ownerReferences": [{"kind": "ModelDeployment", "name": "m", "uid": "u-9"}],
        },
        "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"readyReplicas": 1},
    }
    assert observed_of(body) == Observed(
        "abc", 3, {"matchLabels": {"a": "b"}}, (("ModelDeployment", "m", "u-9"),)
    )
    assert observed_of({"metadata": {}, "spec": {}}) == Observed(owners=())
