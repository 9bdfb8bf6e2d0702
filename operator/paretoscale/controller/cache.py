"""The operator's view of its objects, fed by watch events (an informer cache, in memory).

ModelDeployments by (namespace, name); per ModelDeployment the facts of its Deployments by
variant and what is observed of each rendered object (Deployments, Services,
PodDisruptionBudgets, by object key `Kind/name`), so the tick loop and every reconcile read no
API. `put_*` return whether something that matters to a decision changed, which is when a
reconcile runs at once instead of at the next tick. `synced` turns True once every watched
kind has been listed (controller/sync.py): before that an absent object may merely not be
listed yet, so nothing acts. A watch can miss a deletion (a relist after its history expired
shows only what exists): a periodic relisting (controller/sync.py) drops what it no longer
shows (`vanished`), unless a watch event stored it after the listing began (`stamp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.actuate.plan import Observed, observed_of
from paretoscale.actuate.render import LABEL_MD, LABEL_VARIANT
from paretoscale.rollout.machine import VariantFacts

Key = tuple[str, str]  # (namespace, name)

# The metadata a reconcile, a status write and an event read; the rest (managedFields, which
# list every status field again, and annotations such as kubectl's last-applied copy of the
# whole object) is most of an object's size and is not kept.
KEPT_METADATA = (
    "name", "namespace", "uid", "generation", "resourceVersion", "labels",
    "creationTimestamp", "deletionTimestamp",
)  # fmt: skip


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as the cache keeps it: metadata cut to KEPT_METADATA, the rest as is."""
    meta = body["metadata"]
    out = {k: v for k, v in body.items() if k != "metadata"}
    out["metadata"] = {k: meta[k] for k in KEPT_METADATA if k in meta}
    return out


@dataclass
class Cache:
    mds: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    generations: dict[Key, int | None] = field(default_factory=dict)
    deployments: dict[Key, dict[str, VariantFacts]] = field(default_factory=dict)
    objects: dict[Key, dict[str, Observed]] = field(default_factory=dict)
    synced: bool = False
    # A counter of stores, and when each ModelDeployment / rendered object was last stored:
    # a relisting keeps what a watch event stored after the listing began.
    stamp: int = 0
    touched: dict[tuple[Key, str], int] = field(default_factory=dict)
    variant_of: dict[tuple[Key, str], str] = field(default_factory=dict)  # Deployment -> variant

    def _touch(self, key: Key, what: str) -> None:
        self.stamp += 1
        self.touched[(key, what)] = self.stamp

    def put_md(self, body: Mapping[str, Any]) -> bool:
        """Store the object (`slim`: without what the operator never reads); True when it is
        new or its spec changed (a new generation)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self._touch(key, "")
        self.mds[key] = slim(body)
        gen = meta.get("generation")
        changed = key not in self.generations or self.generations[key] != gen
        self.generations[key] = gen
        return changed

    def drop_md(self, namespace: str, name: str) -> None:
        self._touch((namespace, name), "")
        self.mds.pop((namespace, name), None)
        self.generations.pop((namespace, name), None)
        self.deployments.pop((namespace, name), None)
        self.objects.pop((namespace, name), None)
        for k in [k for k in self.variant_of if k[0] == (namespace, name)]:
            del self.variant_of[k]

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
        self._touch((ns, md), f"{kind}/{meta['name']}")
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
            self.variant_of[((ns, md), f"{kind}/{meta['name']}")] = variant
            changed = self.put_deployment(ns, md, variant, facts) or changed
        return (ns, md) if changed else None

    def facts(self, key: Key) -> dict[str, VariantFacts]:
        return dict(self.deployments.get(key, {}))

    def observed(self, key: Key) -> dict[str, Observed]:
        return dict(self.objects.get(key, {}))

    def vanished(
        self, since: int, mds: set[Key], objects: set[tuple[Key, str]]
    ) -> tuple[list[Key], list[tuple[Key, str]]]:
        """What a complete listing that began at `stamp` == `since` no longer shows (its
        ModelDeployment keys `mds`, its rendered objects `objects` as (md key, `Kind/name`)),
        and no watch event stored since: (ModelDeployments, rendered objects) gone."""
        gone_mds = [k for k in self.mds if k not in mds and self.touched.get((k, ""), 0) <= since]
        gone_objects = [
            (k, obj)
            for k, by_key in self.objects.items()
            for obj in by_key
            if (k, obj) not in objects and self.touched.get((k, obj), 0) <= since
        ]
        return gone_mds, gone_objects

    def forget_object(self, key: Key, obj: str) -> None:
        """Forget one rendered object (`Kind/name`) a relisting no longer shows."""
        self.put_object(key[0], key[1], obj, None)
        variant = self.variant_of.pop((key, obj), None)
        if variant is not None:
            self.put_deployment(key[0], key[1], variant, None)
