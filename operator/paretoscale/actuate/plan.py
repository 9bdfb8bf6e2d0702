"""plan_changes(): from a desired fleet to the objects to apply and delete (pure).

Every object is rendered whole and applied with server-side apply; an object whose rendering
has not changed since it was last applied (same hash) is skipped, so a steady tick makes no
API calls. Each variant's Deployment is followed by its PodDisruptionBudget. Deployments of
variants no longer in the spec are deleted (with their PodDisruptionBudgets, see
Kube.delete_deployment) once neither the Service nor the rollout uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.actuate.render import (
    Owner,
    deployment_name,
    render_deployment,
    render_pdb,
    render_service,
)
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.rollout.machine import Fleet


@dataclass(frozen=True)
class Changes:
    apply: tuple[dict[str, Any], ...] = ()
    delete_deployments: tuple[str, ...] = ()
    hashes: Mapping[str, str] = field(default_factory=dict)  # object key -> rendered hash


def object_key(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def rendered_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def plan_changes(
    owner: Owner,
    spec: ModelDeploymentSpec,
    fleet: Fleet,
    existing_variants: set[str],
    applied: Mapping[str, str],
) -> Changes:
    """Objects to apply (changed since `applied`, a key -> hash map) and Deployments to delete."""
    variants = {v.name: v for v in spec.variants}
    wanted: list[dict[str, Any]] = []
    for name, replicas in sorted(fleet.replicas.items()):
        if name in variants:
            wanted.append(render_deployment(owner, spec, variants[name], replicas))
            wanted.append(render_pdb(owner, name))
        elif name in existing_variants and replicas == 0:
            continue  # removed from spec: deleted below rather than rendered
    if fleet.service:
        wanted.append(render_service(owner, fleet.service))
    hashes = {object_key(m): rendered_hash(m) for m in wanted}
    to_apply = tuple(m for m in wanted if applied.get(object_key(m)) != hashes[object_key(m)])
    in_use = set(fleet.service) | {n for n, r in fleet.replicas.items() if r > 0}
    deletions = tuple(
        deployment_name(owner.name, n)
        for n in sorted(existing_variants)
        if n not in variants and n not in in_use
    )
    return Changes(to_apply, deletions, hashes)
