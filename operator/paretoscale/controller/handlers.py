"""kopf wiring only: watch events feed the cache and trigger a reconcile when something moved.

Watched: ModelDeployments, and the Deployments, Services and PodDisruptionBudgets the
operator renders, listed and watched with the server-side label selector MANAGED_SELECTOR
(`configure_watching`), so the operator never lists the cluster's other workloads; with the
GPU inventory on (the default), also nodes and pods, of which it keeps only what GPUs each
node has and each placed pod holds (controller/inventory.py). No kopf
timers and no change-detecting handlers: those make kopf put a finalizer or annotations on
the user's ModelDeployments (GitOps owns them). The periodic tick is the operator's own loop
over the cache (controller/loop.py), one loop per process.
"""

from __future__ import annotations

from typing import Any

import kopf

from paretoscale.actuate.render import FIELD_MANAGER, LABEL_MANAGED, LABEL_MD
from paretoscale.api.types import GROUP, PLURAL, VERSION
from paretoscale.controller.reconcile import Context

MANAGED_SELECTOR = f"{LABEL_MANAGED}={FIELD_MANAGER}"
# (group, version, plural, kind) of every rendered kind the cache observes.
WORKLOADS = (
    ("apps", "v1", "deployments", "Deployment"),
    ("", "v1", "services", "Service"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
)


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: kopf builds and diffs one (a deep copy of the body) on every
    watch event for change-detecting handlers, and this operator has none. Nothing is read
    from or written to the objects."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def configure_watching(settings: kopf.OperatorSettings) -> None:
    """Server-side label selectors on the watches of the rendered kinds; no diff base."""
    for _, _, plural, _ in WORKLOADS:
        settings.watching.label_selectors[plural] = MANAGED_SELECTOR
    settings.persistence.diffbase_storage = NoDiffBase()


def register(registry: kopf.OperatorRegistry, gpu_inventory: bool = False) -> None:
    @kopf.on.event(GROUP, VERSION, PLURAL, id="modeldeployment-events", registry=registry)
    async def md_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx: Context = memo["ctx"]
        meta = body["metadata"]
        if event["type"] == "DELETED":
            ctx.cache.drop_md(meta["namespace"], meta["name"])
            ctx.metrics.forget(meta["namespace"], meta["name"])
            ctx.objects.pop(meta["uid"], None)
            return
        if ctx.cache.put_md(dict(body)):  # new, or the spec changed: act now, not next tick
            await ctx.reconcile_key((meta["namespace"], meta["name"]))

    for group, version, plural, kind in WORKLOADS:
        _register_workload(registry, group, version, plural, kind)
    if gpu_inventory:
        _register_inventory(registry)


def _register_inventory(registry: kopf.OperatorRegistry) -> None:
    """Nodes and pods into the GPU inventory (controller/inventory.py). A change there moves
    no reconcile by itself: the next tick plans with it."""

    @kopf.on.event("", "v1", "nodes", id="node-events", registry=registry)
    async def node_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        inventory = memo["ctx"].inventory
        if inventory is not None:
            inventory.put_node(body, event["type"] == "DELETED")

    @kopf.on.event("", "v1", "pods", id="pod-events", registry=registry)
    async def pod_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        inventory = memo["ctx"].inventory
        if inventory is not None:
            inventory.put_pod(body, event["type"] == "DELETED")


def _register_workload(
    registry: kopf.OperatorRegistry, group: str, version: str, plural: str, kind: str
) -> None:
    @kopf.on.event(
        group,
        version,
        plural,
        id=f"{kind.lower()}-events",
        labels={LABEL_MD: kopf.PRESENT},
        registry=registry,
    )
    async def workload_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx: Context = memo["ctx"]
        key = ctx.cache.put_workload(kind, body, event["type"] == "DELETED")
        if key is not None and key in ctx.cache.mds:
            await ctx.reconcile_key(key)  # e.g. the target became Ready, or a repair: now
