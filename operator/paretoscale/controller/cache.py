"""The operator's view of its objects, fed by watch events (an informer cache, in memory).

ModelDeployments by (namespace, name) and the facts of their Deployments by variant, so the
tick loop and every reconcile read no API. `put_*` return whether something that matters to a
decision changed, which is when a reconcile runs at once instead of at the next tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.rollout.machine import VariantFacts

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Cache:
    mds: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    generations: dict[Key, int | None] = field(default_factory=dict)
    deployments: dict[Key, dict[str, VariantFacts]] = field(default_factory=dict)

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

    def facts(self, key: Key) -> dict[str, VariantFacts]:
        return dict(self.deployments.get(key, {}))
