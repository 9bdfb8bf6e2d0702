"""The cache's initial listing: the condition for acting at all after a start.

kopf starts its watches without telling when each has listed, and a ModelDeployment may
arrive before its Deployments: acting then would read "no Deployment" as "0 replicas". So
before the first reconcile the operator lists, once, every kind it watches (ModelDeployments,
and the Deployments, Services and PodDisruptionBudgets it renders, with the same server-side
label selector as the watches) into the cache, then marks the cache synced. An object a watch
event already delivered is newer than the listing and is kept. Until the API answers the
listing is retried; nothing acts meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from paretoscale.actuate.render import LABEL_MD
from paretoscale.controller.cache import Cache
from paretoscale.controller.handlers import MANAGED_SELECTOR, WORKLOADS
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
    ctx.cache.synced = True
    log.info("cache synced: %d ModelDeployments", len(ctx.cache.mds))


async def _list_into(ctx: Context, cache: Cache, namespace: str | None) -> None:
    for body in await asyncio.to_thread(ctx.kube.list_modeldeployments, namespace):
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
