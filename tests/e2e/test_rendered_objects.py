"""What actuate/render.py renders is what the real API server accepts, unchanged.

Every variant of every example (the model-cache PVC one included) is rendered as its
Deployment, its PodDisruptionBudget and the Service, and applied the way the operator applies
it (server-side apply, force) with dryRun=All: validated and defaulted by the API server,
nothing stored. Then one variant is applied for real, and its PodDisruptionBudget counts the
Deployment's (KWOK) pods: its selector selects them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import pytest

from paretoscale.actuate.render import (
    FIELD_MANAGER,
    Owner,
    render_deployment,
    render_pdb,
    render_service,
)
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec

pytestmark = pytest.mark.e2e

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
APPLY = "application/apply-patch+yaml"
UID = "00000000-0000-0000-0000-0000000000e2"


def _variants() -> list[tuple[str, ModelDeploymentSpec, VariantSpec]]:
    out = []
    for path in sorted((REPO_ROOT / "examples").glob("*.yaml")):
        for md in parse_manifests(path.read_text(), path.name):
            out += [(f"{path.stem}-{v.name}", md.spec, v) for v in md.spec.variants]
    return out


VARIANTS = _variants()


def _apply(k8s_client: Any, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
    """Server-side apply as Kube.apply does it; the object the API server returns, as a dict."""
    from kubernetes import client

    name, ns = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}
    if dry_run:
        kwargs["dry_run"] = "All"
    patch = {
        "Deployment": client.AppsV1Api(k8s_client).patch_namespaced_deployment,
        "PodDisruptionBudget": client.PolicyV1Api(
            k8s_client
        ).patch_namespaced_pod_disruption_budget,
        "Service": client.CoreV1Api(k8s_client).patch_namespaced_service,
    }[manifest["kind"]]
    returned = patch(name, ns, dict(manifest), **kwargs)
    return dict(k8s_client.sanitize_for_serialization(returned))


def _contains(actual: Any, expected: Any) -> bool:
    """Whether actual holds everything in expected (the server adds defaults, drops nothing)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected or str(actual) == str(expected))  # 4 vs "4" in quantities


@pytest.mark.parametrize(
    ("case", "spec", "variant"), VARIANTS, ids=[case for case, _, _ in VARIANTS]
)
def test_rendered_objects_pass_server_side_dry_run(
    k8s_client: Any, namespace: str, case: str, spec: ModelDeploymentSpec, variant: VariantSpec
) -> None:
    owner = Owner("md", namespace, UID)
    for manifest in (
        render_deployment(owner, spec, variant, 2),
        render_pdb(owner, variant.name),
        render_service(owner, (variant.name,)),
    ):
        returned = _apply(k8s_client, manifest, dry_run=True)
        # Accepted, and nothing the operator rendered was pruned or rewritten.
        assert _contains(returned["metadata"], manifest["metadata"]), (case, manifest["kind"])
        assert _contains(returned["spec"], manifest["spec"]), (case, manifest["kind"])


def test_model_cache_example_keeps_its_volume_and_mount(k8s_client: Any, namespace: str) -> None:
    (md,) = parse_manifests(
        (REPO_ROOT / "examples" / "model-cache-pvc.yaml").read_text(), "model-cache-pvc.yaml"
    )
    owner = Owner("md", namespace, UID)
    returned = _apply(
        k8s_client, render_deployment(owner, md.spec, md.spec.variants[0], 1), dry_run=True
    )
    pod = returned["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "llama-70b-model-cache"
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"dshm": "/dev/shm", "model-cache": "/models"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_pdb_selects_the_variants_pods(k8s_client: Any, namespace: str, wait_for: Any) -> None:
    """Applied for real on the KWOK GPU nodes: the PDB counts the Deployment's pods."""
    from kubernetes import client

    (md,) = parse_manifests(
        (REPO_ROOT / "examples" / "assistant-llama-8b.yaml").read_text(), "assistant"
    )
    fp8 = next(v for v in md.spec.variants if v.name == "fp8")
    owner_cm = client.CoreV1Api(k8s_client).create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    # A real owner (a ConfigMap standing in for the ModelDeployment) so the garbage collector
    # does not delete what it finds with an absent owner.
    owner = Owner("assistant", namespace, owner_cm.metadata.uid)
    deployment = render_deployment(owner, md.spec, fp8, 2)
    pdb = render_pdb(owner, fp8.name)
    # KWOK turns a vLLM pod Ready once the simulator bridge marks it healthy; no bridge runs
    # here, so the pods carry the bridge's mark from the start.
    pod_meta = deployment["spec"]["template"]["metadata"]
    pod_meta.setdefault("annotations", {})["sim.paretoscale.io/healthy"] = "true"
    for manifest in (deployment, pdb):
        manifest["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid}
        ]
        _apply(k8s_client, manifest, dry_run=False)
    policy = client.PolicyV1Api(k8s_client)

    def counted() -> Any:
        status = policy.read_namespaced_pod_disruption_budget(pdb["metadata"]["name"], namespace)
        s = status.status
        return s if s and s.expected_pods == 2 and s.current_healthy == 2 else None

    status = wait_for(counted, timeout_s=90, what="the PDB to count 2 healthy pods")
    assert status.disruptions_allowed == 1
