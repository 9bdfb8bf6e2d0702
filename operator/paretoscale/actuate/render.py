"""Render the Kubernetes objects of a ModelDeployment: pure manifests, no I/O.

One Deployment per variant, `<md>-<variant>`, running `vllm serve` with exactly that variant's
flags as an argv list (never a shell string), its GPUs requested and selected by
`nvidia.com/gpu.product`, readiness on /health (vLLM answers it only once the model is loaded).
One Service `<md>` whose selector the rollout moves. Owner references make deleting the
ModelDeployment delete all of it. Golden files in tests/golden/ pin the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretoscale.api.gpus import gpu_spec
from paretoscale.api.types import GROUP, KIND, VERSION, ModelDeploymentSpec, VariantSpec
from paretoscale.api.vllm import VLLM_PORT, vllm_argv

LABEL_MD = "paretoscale.io/modeldeployment"
LABEL_VARIANT = "paretoscale.io/variant"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
FIELD_MANAGER = "paretoscale"


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns what is rendered."""

    name: str
    namespace: str
    uid: str


def deployment_name(md: str, variant: str) -> str:
    return f"{md}-{variant}"


def _owner_refs(owner: Owner) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": owner.name,
            "uid": owner.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _resources(spec: ModelDeploymentSpec, variant: VariantSpec) -> dict[str, Any]:
    user: Mapping[str, Any] = spec.template.resources or {}
    limits = {**dict(user.get("limits", {})), GPU_RESOURCE: variant.gpu.count}
    requests = {**dict(user.get("requests", {})), GPU_RESOURCE: variant.gpu.count}
    return {"limits": limits, "requests": requests}


def render_deployment(
    owner: Owner, spec: ModelDeploymentSpec, variant: VariantSpec, replicas: int
) -> dict[str, Any]:
    """The Deployment of one variant at `replicas`."""
    labels = {LABEL_MD: owner.name, LABEL_VARIANT: variant.name, LABEL_MANAGED: FIELD_MANAGER}
    selector = {LABEL_MD: owner.name, LABEL_VARIANT: variant.name}
    node_selector = {
        **(spec.template.node_selector or {}),
        GPU_PRODUCT_LABEL: gpu_spec(variant.gpu.type).product_label,
    }
    container: dict[str, Any] = {
        "name": "vllm",
        "image": spec.template.image,
        "command": ["vllm", "serve"],
        "args": vllm_argv(variant, spec.model),
        "ports": [{"name": "http", "containerPort": VLLM_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": max(1, variant.startup_seconds // 10 + 6),
        },
        "resources": _resources(spec, variant),
    }
    if spec.template.env:
        container["env"] = [dict(e) for e in spec.template.env]
    pod_spec: dict[str, Any] = {"containers": [container], "nodeSelector": node_selector}
    if spec.template.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.template.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(owner.name, variant.name),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": _owner_refs(owner),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def render_service(owner: Owner, variants: tuple[str, ...]) -> dict[str, Any]:
    """The stable Service `<md>`: routes to one variant, or to every variant of the
    ModelDeployment while a target is being verified (both serve, each Ready pod a share)."""
    selector = {LABEL_MD: owner.name}
    if len(variants) == 1:
        selector[LABEL_VARIANT] = variants[0]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": {LABEL_MD: owner.name, LABEL_MANAGED: FIELD_MANAGER},
            "ownerReferences": _owner_refs(owner),
        },
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": VLLM_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
