"""plan_changes(): from a desired fleet and what the cluster shows to the objects to apply and
delete (pure, level-triggered).

Every object is rendered whole, stamped with the hash of its rendering (annotation
`paretoscale.io/rendered-hash`) and applied with server-side apply when what the watch cache
OBSERVES differs from it: the object is missing, carries another hash, or its spec.replicas
or spec.selector differ from the rendered ones (a `kubectl scale`, an edited selector). What
this process sent earlier plays no part, so a deleted or hand-edited object is repaired on the
next tick and a steady tick makes no API calls. Each variant's Deployment is followed by its
PodDisruptionBudget. A variant in the spec whose Deployment exists but that the fleet does not
name (neither active nor target, e.g. a target half-started before a crash) is scaled to 0.
Deployments of variants no longer in the spec are deleted (with their PodDisruptionBudgets,
see Kube.delete_deployment) once neither the Service nor the rollout uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretoscale.actuate.render import (
    Owner,
    deployment_name,
    render_deployment,
    render_pdb,
    render_service,
)
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.rollout.machine import Fleet

HASH_ANNOTATION = "paretoscale.io/rendered-hash"


@dataclass(frozen=True)
class Observed:
    """What the watch cache shows of one rendered object (it exists)."""

    rendered_hash: str | None = None  # the HASH_ANNOTATION it carries
    replicas: int | None = None  # spec.replicas (Deployments)
    selector: Mapping[str, Any] | None = None  # spec.selector
    # metadata.ownerReferences as (kind, name, uid); None: not known (taken as ours)
    owners: tuple[tuple[str, str, str], ...] | None = None


def observed_of(body: Mapping[str, Any]) -> Observed:
    """The comparable facts of an object as the API returns it (a dict)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    replicas = spec.get("replicas")
    selector = spec.get("selector")
    return Observed(
        rendered_hash=(meta.get("annotations") or {}).get(HASH_ANNOTATION),
        replicas=int(replicas) if replicas is not None else None,
        selector=dict(selector) if selector is not None else None,
        owners=owners_of(meta),
    )


def owners_of(meta: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """The ownerReferences of an object's metadata as (kind, name, uid)."""
    return tuple(
        (str(r.get("kind")), str(r.get("name")), str(r.get("uid")))
        for r in meta.get("ownerReferences") or []
    )


@dataclass(frozen=True)
class Changes:
    apply: tuple[dict[str, Any], ...] = ()
    delete_deployments: tuple[str, ...] = ()


def object_key(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def rendered_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def stamped(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with the hash of its rendering in the HASH_ANNOTATION."""
    meta = dict(manifest["metadata"])
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        HASH_ANNOTATION: rendered_hash(manifest),
    }
    return {**manifest, "metadata": meta}


def differs(manifest: Mapping[str, Any], seen: Observed | None) -> bool:
    """Whether the cluster's object is not what `manifest` (stamped) renders."""
    if seen is None:
        return True
    spec = manifest.get("spec") or {}
    return (
        seen.rendered_hash != manifest["metadata"]["annotations"][HASH_ANNOTATION]
        or ("replicas" in spec and seen.replicas != spec["replicas"])
        or ("selector" in spec and seen.selector != spec["selector"])
    )


def plan_changes(
    owner: Owner,
    spec: ModelDeploymentSpec,
    fleet: Fleet,
    existing_variants: set[str],
    observed: Mapping[str, Observed],
    gpus: GpuTypes = BUILTIN,
) -> Changes:
    """Objects to apply (those `observed`, an object key -> Observed map, does not show as
    rendered) and Deployments to delete. `existing_variants`: variants whose Deployment
    exists. `gpus`: the GPU type mapping the Deployments are placed with."""
    variants = {v.name: v for v in spec.variants}
    replicas = dict(fleet.replicas)
    for name in existing_variants:
        if name in variants and name not in replicas:
            replicas[name] = 0  # neither active nor target: it must not hold GPUs
    wanted: list[dict[str, Any]] = []
    for name, n in sorted(replicas.items()):
        if name in variants:
            wanted.append(stamped(render_deployment(owner, spec, variants[name], n, gpus)))
            wanted.append(stamped(render_pdb(owner, name)))
        # else removed from spec: deleted below rather than rendered
    if fleet.service:
        wanted.append(stamped(render_service(owner, fleet.service)))
    to_apply = tuple(m for m in wanted if differs(m, observed.get(object_key(m))))
    in_use = set(fleet.service) | {n for n, r in fleet.replicas.items() if r > 0}
    deletions = tuple(
        deployment_name(owner.name, n)
        for n in sorted(existing_variants)
        if n not in variants and n not in in_use
    )
    return Changes(to_apply, deletions)
