"""Render the Kubernetes objects of a ModelDeployment: pure manifests, no I/O.

One Deployment per variant, `<md>-<variant>`, running `vllm serve` with exactly that variant's
flags as an argv list (never a shell string), its GPUs requested as the GPU type's extended
resource and selected by its node label (both from the GPU type mapping, api/accelerators.py:
`nvidia.com/gpu` on `nvidia.com/gpu.product` by default), readiness on /health (vLLM answers it only once the model is loaded)
and a startup probe whose budget is twice the variant's `startupSeconds` plus a minute. The pod
is locked down by default (no ServiceAccount token, seccomp RuntimeDefault, no privilege
escalation, every capability dropped; `template` overrides each), has a memory-backed
/dev/shm sized from tensor parallelism, and no Service links in its environment (a Service
named `vllm` would otherwise set VLLM_PORT, which vLLM reads as its own setting). A stopping
pod sleeps PRESTOP_SLEEP_S in preStop before vLLM gets SIGTERM: kube-proxy, gateways and
load balancers learn that its endpoint is gone seconds after it is, and vLLM stops accepting
connections at SIGTERM, so without the sleep a scale-down refuses the requests routed to the
pod in between (the `sleep` action: no binary in the image; Kubernetes >= 1.30). Only with a
terminationGracePeriodSeconds of at least twice the sleep, so the drain keeps its time.
One PodDisruptionBudget per variant, same name, at most one of its pods evicted at a time.
One Service `<md>` whose selector the rollout moves. Everything carries the app.kubernetes.io
labels; selectors use only the paretoscale.io labels (a Deployment's selector is immutable).
Owner references make deleting the ModelDeployment delete all of it. Golden files in
tests/golden/ pin the output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.gpus import GpuSpec
from paretoscale.api.types import (
    GROUP,
    KIND,
    SHM_GI_PER_GPU,
    SHM_VOLUME,
    VERSION,
    ModelDeploymentSpec,
    TemplateSpec,
    VariantSpec,
    shm_disabled,
)
from paretoscale.api.vllm import VLLM_PORT, vllm_argv

LABEL_MD = "paretoscale.io/modeldeployment"
LABEL_VARIANT = "paretoscale.io/variant"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
APP_NAME = "vllm"
COMPONENT = "inference-server"
FIELD_MANAGER = "paretoscale"
SHM_PATH = "/dev/shm"
PROBE_PERIOD_S = 10
PRESTOP_SLEEP_S = 5
# Defaults under template.podSecurityContext / containerSecurityContext (merged key by key).
POD_SECURITY_CONTEXT: Mapping[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_CONTEXT: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns what is rendered."""

    name: str
    namespace: str
    uid: str


def deployment_name(md: str, variant: str) -> str:
    """Name of a variant's Deployment, and of its PodDisruptionBudget."""
    return f"{md}-{variant}"


def selector_labels(md: str, variant: str) -> dict[str, str]:
    """The labels selecting one variant's pods (a Deployment's selector never changes)."""
    return {LABEL_MD: md, LABEL_VARIANT: variant}


def object_labels(md: str, variant: str | None = None) -> dict[str, str]:
    """Labels of every rendered object: the paretoscale.io ones and app.kubernetes.io/*."""
    out = {LABEL_MD: md}
    if variant is not None:
        out[LABEL_VARIANT] = variant
    return out | {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: md,
        LABEL_COMPONENT: COMPONENT,
        LABEL_MANAGED: FIELD_MANAGER,
    }


def _metadata(owner: Owner, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": dict(labels),
        "ownerReferences": _owner_refs(owner),
    }


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


def _resources(spec: ModelDeploymentSpec, variant: VariantSpec, gpu: GpuSpec) -> dict[str, Any]:
    user: Mapping[str, Any] = spec.template.resources or {}
    limits = {**dict(user.get("limits", {})), gpu.resource: variant.gpu.count}
    requests = {**dict(user.get("requests", {})), gpu.resource: variant.gpu.count}
    return {"limits": limits, "requests": requests}


def tensor_parallel_size(variant: VariantSpec) -> int:
    """GPUs one vLLM replica shards the model over (vllm_argv's --tensor-parallel-size)."""
    return variant.vllm.tensor_parallel_size or variant.gpu.count


def shm_size(template: TemplateSpec, variant: VariantSpec) -> str | None:
    """The /dev/shm emptyDir's sizeLimit, or None when the pod gets none: `shmSize: "0"`,
    or the template mounts something of its own at /dev/shm."""
    if any(m.get("mountPath") == SHM_PATH for m in template.volume_mounts or []):
        return None
    if template.shm_size is None:
        return f"{SHM_GI_PER_GPU * tensor_parallel_size(variant)}Gi"
    return None if shm_disabled(template.shm_size) else template.shm_size


def startup_failure_threshold(startup_seconds: int) -> int:
    """Startup probes (every PROBE_PERIOD_S) before the kubelet restarts a loading vLLM:
    twice the variant's startupSeconds plus a minute, so a slow (cold-cache) load still
    finishes while a hung one is restarted."""
    return max(1, math.ceil((2 * startup_seconds + 60) / PROBE_PERIOD_S))


def _topology_spread(
    constraints: list[dict[str, Any]] | None, selector: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The template's constraints; one without a labelSelector spreads its variant's pods."""
    return [
        c if "labelSelector" in c else {**c, "labelSelector": {"matchLabels": dict(selector)}}
        for c in constraints or []
    ]


def render_deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    replicas: int,
    gpus: GpuTypes = BUILTIN,
) -> dict[str, Any]:
    """The Deployment of one variant at `replicas`, on its GPU type as `gpus` maps it (the
    type must be in `gpus`: admission's gpu_type_problems checks that first)."""
    t = spec.template
    gpu = gpus.get(variant.gpu.type)
    labels = object_labels(owner.name, variant.name)
    selector = selector_labels(owner.name, variant.name)
    node_selector = {**(t.node_selector or {}), **gpu.node_selector}
    volumes = [dict(v) for v in t.volumes or []]
    mounts = [dict(m) for m in t.volume_mounts or []]
    shm = shm_size(t, variant)
    if shm is not None:
        volumes.insert(0, {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm}})
        mounts.insert(0, {"name": SHM_VOLUME, "mountPath": SHM_PATH})
    container: dict[str, Any] = {
        "name": "vllm",
        "image": t.image,
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
            "periodSeconds": PROBE_PERIOD_S,
            "failureThreshold": startup_failure_threshold(variant.startup_seconds),
        },
        "resources": _resources(spec, variant, gpu),
        "securityContext": {**CONTAINER_SECURITY_CONTEXT, **(t.container_security_context or {})},
    }
    if t.termination_grace_period_seconds >= 2 * PRESTOP_SLEEP_S:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}}
    if t.env:
        container["env"] = [dict(e) for e in t.env]
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "nodeSelector": node_selector,
        "automountServiceAccountToken": t.automount_service_account_token,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": t.termination_grace_period_seconds,
        "securityContext": {**POD_SECURITY_CONTEXT, **(t.pod_security_context or {})},
    }
    if t.service_account_name:
        pod_spec["serviceAccountName"] = t.service_account_name
    if t.priority_class_name:
        pod_spec["priorityClassName"] = t.priority_class_name
    if t.affinity:
        pod_spec["affinity"] = dict(t.affinity)
    if t.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = _topology_spread(
            t.topology_spread_constraints, selector
        )
    if t.tolerations:
        pod_spec["tolerations"] = [dict(tol) for tol in t.tolerations]
    if volumes:
        pod_spec["volumes"] = volumes
    pod_meta: dict[str, Any] = {"labels": {**(t.pod_labels or {}), **labels}}
    if t.pod_annotations:
        pod_meta["annotations"] = dict(t.pod_annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, deployment_name(owner.name, variant.name), labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }


def render_pdb(owner: Owner, variant: str) -> dict[str, Any]:
    """The PodDisruptionBudget of one variant: a node drain evicts at most one of its pods at
    a time; pods that are not Ready (loading, crashing) may always be evicted, so they never
    block a drain."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(
            owner, deployment_name(owner.name, variant), object_labels(owner.name, variant)
        ),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner.name, variant)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
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
        "metadata": _metadata(owner, owner.name, object_labels(owner.name)),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": VLLM_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
