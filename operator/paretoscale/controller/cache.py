"""The operator's view of its objects, fed by watch events (an informer cache, in memory).

ModelDeployments by (namespace, name); per ModelDeployment the facts of its Deployments by
variant and what is observed of each rendered object (Deployments, Services,
PodDisruptionBudgets, by object key `Kind/name`), so the tick loop and every reconcile read no
API. `put_*` return whether something that matters to a decision changed, which is when a
reconcile runs at once instead of at the next tick. `synced` turns True once every watched
kind has been listed (controller/sync.py): before that an absent object may merely not be
listed yet, so nothing acts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.actuate.plan import Observed, observed_of
from paretoscale.actuate.render import LABEL_MD, LABEL_VARIANT
from paretoscale.rollout.machine import VariantFacts

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Cache:
    mds: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    generations: dict[Key, int | None] = field(default_factory=dict)
    deployments: dict[Key, dict[str, VariantFacts]] = field(default_factory=dict)
    objects: dict[Key, dict[str, Observed]] = field(default_factory=dict)
    synced: bool = False

    def put_md(self, body: Mapping[str, Any]) -> bool:
        """Store the object; True when it is new or its spec changed (a new generation)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.mds[key] = body
        gen = meta.get("generation")
        changed = key not in self.generations or self.generations[key] != gen
        self.generations[key] = gen
        return changed

    def drop_md(self, namespace: str, name: str) -> None:
        self.mds.pop((namespace, name), None)
        self.generations.pop((namespace, name), None)
        self.deployments.pop((namespace, name), None)
        self.objects.pop((namespace, name), None)

    def put_deployment(
        self, namespace: str, md: str, variant: str, facts: VariantFacts | None
    ) -> bool:
        """Store (or with None, forget) one variant's facts; True when they changed."""
        by_variant = self.deployments.setdefault((namespace, md), {})
        old = by_variant.get(variant)
        if facts is None:
            by_variant.pop(variant, None)
        else:
            by_variant[variant] = facts
        return old != facts

    def put_object(self, namespace: str, md: str, key: str, seen: Observed | None) -> bool:
        """Store (or with None, forget) what is observed of one rendered object; True when
        it changed."""
        by_key = self.objects.setdefault((namespace, md), {})
        old = by_key.get(key)
        if seen is None:
            by_key.pop(key, None)
        else:
            by_key[key] = seen
        return old != seen

    def put_workload(self, kind: str, body: Mapping[str, Any], deleted: bool) -> Key | None:
        """Store one Deployment, Service or PodDisruptionBudget of a ModelDeployment (by its
        LABEL_MD label) as a watch event or a listing shows it. Returns the ModelDeployment's
        key when something that matters to it changed, None otherwise (or without label)."""
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        md = labels.get(LABEL_MD)
        if md is None:
            return None
        ns = meta["namespace"]
        changed = self.put_object(
            ns, md, f"{kind}/{meta['name']}", None if deleted else observed_of(body)
        )
        if kind == "Deployment":
            facts = None
            if not deleted:
                facts = VariantFacts(
                    desired=int((body.get("spec") or {}).get("replicas") or 0),
                    ready=int((body.get("status") or {}).get("readyReplicas") or 0),
                )
            variant = labels.get(LABEL_VARIANT, "")
            changed = self.put_deployment(ns, md, variant, facts) or changed
        return (ns, md) if changed else None

    def facts(self, key: Key) -> dict[str, VariantFacts]:
        return dict(self.deployments.get(key, {}))

    def observed(self, key: Key) -> dict[str, Observed]:
        return dict(self.objects.get(key, {}))
