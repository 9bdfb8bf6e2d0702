"""The cache's initial listing: the condition for acting at all after a start.

kopf starts its watches without telling when each has listed, and a ModelDeployment may
arrive before its Deployments: acting then would read "no Deployment" as "0 replicas". So
before the first reconcile the operator lists, once, every kind it watches (ModelDeployments,
and the Deployments, Services and PodDisruptionBudgets it renders, with the same server-side
label selector as the watches; nodes and placed pods for the GPU inventory) into the cache,
then marks the cache synced. An object a watch
event already delivered is newer than the listing and is kept. Until the API answers the
listing is retried; nothing acts meanwhile.

Afterwards the same listing runs every `resync_seconds` (`resync_loop`): a watch that
restarts after its history expired lists again without telling what was deleted meanwhile,
so what the relisting no longer shows (and no watch event stored since it began) is dropped
from the cache, with its memory and its metric series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from paretoscale.actuate.render import LABEL_MD
from paretoscale.controller.cache import Cache, Key, slim
from paretoscale.controller.handlers import MANAGED_SELECTOR, WORKLOADS
from paretoscale.controller.inventory import Inventory
from paretoscale.controller.reconcile import Context

log = logging.getLogger("paretoscale")
RETRY_S = 2.0


async def sync_cache(ctx: Context, namespaces: Sequence[str]) -> None:
    """List every watched kind into `ctx.cache` (retrying until it works), then mark it
    synced. `namespaces`: those served; empty means the whole cluster."""
    scopes: list[str | None] = list(namespaces) or [None]
    while True:
        try:
            for scope in scopes:
                await _list_into(ctx, ctx.cache, scope)
            break
        except Exception as e:  # the API is not there yet: nothing may act before the listing
            log.warning("listing the watched objects failed (%s); retrying in %ss", e, RETRY_S)
            await asyncio.sleep(RETRY_S)
    await refresh_inventory(ctx, namespaces)
    ctx.cache.synced = True
    log.info("cache synced: %d ModelDeployments", len(ctx.cache.mds))


async def refresh_inventory(ctx: Context, namespaces: Sequence[str]) -> None:
    """list_inventory, never blocking what depends on it: the inventory is an optional
    input, so a listing that fails (no list on nodes or pods: a chart from before the
    inventory, RBAC trimmed by hand) leaves it as it was and the decisions plan with
    spec.gpus[].available until a relisting works."""
    try:
        await list_inventory(ctx, namespaces)
    except Exception as e:
        log.warning(
            "listing nodes and pods for the GPU inventory failed (%s); replicas are bounded by "
            "spec.gpus[].available alone until the next relisting (grant list/watch on nodes "
            "and pods, or run with --no-gpu-inventory)",
            e,
        )


async def list_inventory(ctx: Context, namespaces: Sequence[str]) -> None:
    """List nodes and placed pods into a fresh GPU inventory and put it in place (a no-op
    with the inventory off). A watch event that arrived during the listing may be older
    than what the listing shows and is overwritten; the next event of that object
    corrects it."""
    if ctx.inventory is None:
        return
    fresh = Inventory(gpus=ctx.inventory.gpus, synced=True)
    for body in await asyncio.to_thread(ctx.kube.list_nodes):
        fresh.put_node(body, deleted=False)
    scopes: list[str | None] = list(namespaces) or [None]
    for scope in scopes:
        for body in await asyncio.to_thread(ctx.kube.list_placed_pods, scope):
            fresh.put_pod(body, deleted=False)
    ctx.inventory.nodes, ctx.inventory.pods = fresh.nodes, fresh.pods
    ctx.inventory.synced = True
    ctx.inventory.changed()


async def _list_into(ctx: Context, cache: Cache, namespace: str | None) -> None:
    for body in await asyncio.to_thread(ctx.kube.list_modeldeployments, namespace, slim):
        meta = body["metadata"]
        if (meta["namespace"], meta["name"]) not in cache.mds:
            cache.put_md(body)
    for _, _, _, kind in WORKLOADS:
        listed = await asyncio.to_thread(ctx.kube.list_workloads, kind, namespace, MANAGED_SELECTOR)
        for body in listed:
            meta = body["metadata"]
            md = (meta.get("labels") or {}).get(LABEL_MD)
            if md is None:
                continue
            if f"{kind}/{meta['name']}" not in cache.observed((meta["namespace"], md)):
                cache.put_workload(kind, body, deleted=False)


async def relist(ctx: Context, namespaces: Sequence[str]) -> list[Key]:
    """List every watched kind again; store what changed, drop what vanished. Returns the
    ModelDeployments dropped."""
    cache, since = ctx.cache, ctx.cache.stamp
    mds: set[Key] = set()
    objects: set[tuple[Key, str]] = set()
    scopes: list[str | None] = list(namespaces) or [None]
    for scope in scopes:
        for body in await asyncio.to_thread(ctx.kube.list_modeldeployments, scope, slim):
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            mds.add(key)
            if cache.touched.get((key, ""), 0) <= since:
                cache.put_md(body)
        for _, _, _, kind in WORKLOADS:
            listed = await asyncio.to_thread(ctx.kube.list_workloads, kind, scope, MANAGED_SELECTOR)
            for body in listed:
                meta = body["metadata"]
                md = (meta.get("labels") or {}).get(LABEL_MD)
                if md is None:
                    continue
                seen = ((meta["namespace"], md), f"{kind}/{meta['name']}")
                objects.add(seen)
                if cache.touched.get(seen, 0) <= since:
                    cache.put_workload(kind, body, deleted=False)
    await refresh_inventory(ctx, namespaces)
    gone_mds, gone_objects = cache.vanished(since, mds, objects)
    for key, obj in gone_objects:
        cache.forget_object(key, obj)
    for key in gone_mds:
        uid = cache.mds[key]["metadata"].get("uid")
        cache.drop_md(*key)
        ctx.objects.pop(uid, None)
        ctx.metrics.forget(*key)
        log.info("relist: %s/%s is gone; dropped from the cache and the metrics", *key)
    return gone_mds


async def resync_loop(ctx: Context, namespaces: Sequence[str], stop: asyncio.Event) -> None:
    """`relist` every resync_seconds until `stop`; a failed relisting waits for the next."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.resync_seconds)
        if stop.is_set():
            return
        try:
            await relist(ctx, namespaces)
        except Exception as e:
            log.warning(
                "relisting the watched objects failed (%s); next in %gs",
                e,
                ctx.settings.resync_seconds,
            )
