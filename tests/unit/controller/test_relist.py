"""A relisting drops what the watches missed the deletion of: the ModelDeployment, its
memory and its metric series, and a rendered object that is gone; what a watch event stored
after the listing began is kept."""

from __future__ import annotations

import asyncio
import copy

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.controller.inventory import Inventory
from paretoscale.controller.sync import relist, sync_cache
from tests.unit.controller.test_reconcile import FakeKube, context, md_serving_fp8

DEP = {
    "kind": "Deployment",
    "metadata": {
        "name": "assistant-fp8",
        "namespace": "llm",
        "labels": {"paretoscale.io/modeldeployment": "assistant", "paretoscale.io/variant": "fp8"},
    },
    "spec": {"replicas": 3},
    "status": {"readyReplicas": 3},
}
KEY = ("llm", "assistant")


def series(ctx: object, name: str) -> list[dict[str, str]]:
    registry = ctx.metrics.registry  # type: ignore[attr-defined]
    return [
        dict(s.labels)
        for m in registry.collect()
        for s in m.samples
        if s.name.startswith(name) and s.labels.get("modeldeployment") == "assistant"
    ]


def test_a_relisting_drops_a_vanished_modeldeployment_and_its_series() -> None:
    kube = FakeKube([md_serving_fp8(3)], {"Deployment": [copy.deepcopy(DEP)]})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    asyncio.run(ctx.reconcile_key(KEY))
    assert series(ctx, "paretoscale_decisions") and KEY in ctx.cache.mds and ctx.objects
    kube.mds, kube.workloads = [], {}  # deleted while the watch was down
    assert asyncio.run(relist(ctx, ["llm"])) == [KEY]
    assert KEY not in ctx.cache.mds and not ctx.cache.facts(KEY) and not ctx.objects
    assert series(ctx, "paretoscale_decisions") == []


def test_a_relisting_drops_a_vanished_deployment_but_keeps_newer_watch_events() -> None:
    kube = FakeKube([md_serving_fp8(3)], {"Deployment": [copy.deepcopy(DEP)]})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    assert ctx.cache.facts(KEY)["fp8"].desired == 3
    kube.workloads = {}
    asyncio.run(relist(ctx, ["llm"]))
    assert ctx.cache.facts(KEY) == {} and ctx.cache.observed(KEY) == {}
    assert KEY in ctx.cache.mds  # still listed

    listing = kube.list_workloads

    def listing_while_an_event_arrives(kind: str, ns: str | None, selector: str) -> list[object]:
        if kind == "Deployment":  # the watch stores the Deployment while the listing runs
            ctx.cache.put_workload("Deployment", copy.deepcopy(DEP), deleted=False)
        return listing(kind, ns, selector)

    kube.list_workloads = listing_while_an_event_arrives  # type: ignore[method-assign]
    asyncio.run(relist(ctx, ["llm"]))
    assert ctx.cache.facts(KEY)["fp8"].desired == 3


def test_a_gpu_inventory_that_cannot_be_listed_never_blocks_acting() -> None:
    """No list on nodes (a chart from before the inventory): the cache still syncs and the
    decisions plan with spec.gpus[].available (the inventory reports nothing, not 0)."""

    class NoNodes(FakeKube):
        def list_nodes(self) -> list[dict[str, object]]:
            raise PermissionError("nodes is forbidden")

        def list_placed_pods(self, namespace: str | None) -> list[dict[str, object]]:
            return []

    kube = NoNodes([md_serving_fp8(3)], {"Deployment": [copy.deepcopy(DEP)]})
    ctx = context(kube)
    ctx.inventory = Inventory()
    asyncio.run(sync_cache(ctx, ["llm"]))
    assert ctx.cache.synced and KEY in ctx.cache.mds
    spec = ModelDeploymentSpec.model_validate(ctx.cache.mds[KEY]["spec"])
    assert ctx.inventory.available(spec, KEY) is None
    asyncio.run(relist(ctx, ["llm"]))  # a failing relisting of the inventory: the rest goes on
    assert KEY in ctx.cache.mds
