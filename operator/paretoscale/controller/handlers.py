"""kopf wiring only: watch events feed the cache and trigger a reconcile when something moved.

No kopf timers and no change-detecting handlers: those make kopf put a finalizer or
annotations on the user's ModelDeployments (GitOps owns them). The periodic tick is the
operator's own loop over the cache (controller/loop.py), one loop per process.
"""

from __future__ import annotations

from typing import Any

import kopf

from paretoscale.actuate.render import LABEL_MD, LABEL_VARIANT
from paretoscale.api.types import GROUP, PLURAL, VERSION
from paretoscale.controller.reconcile import Context
from paretoscale.rollout.machine import VariantFacts


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(GROUP, VERSION, PLURAL, id="modeldeployment-events", registry=registry)
    async def md_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx: Context = memo["ctx"]
        meta = body["metadata"]
        if event["type"] == "DELETED":
            ctx.cache.drop_md(meta["namespace"], meta["name"])
            ctx.objects.pop(meta["uid"], None)
            return
        if ctx.cache.put_md(dict(body)):  # new, or the spec changed: act now, not next tick
            await ctx.reconcile_key((meta["namespace"], meta["name"]))

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        id="deployment-events",
        labels={LABEL_MD: kopf.PRESENT},
        registry=registry,
    )
    async def deployment_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx: Context = memo["ctx"]
        meta = body["metadata"]
        labels = meta.get("labels", {})
        ns, md, variant = meta["namespace"], labels[LABEL_MD], labels.get(LABEL_VARIANT, "")
        facts = None
        if event["type"] != "DELETED":
            facts = VariantFacts(
                desired=int(body.get("spec", {}).get("replicas") or 0),
                ready=int(body.get("status", {}).get("readyReplicas") or 0),
            )
        if ctx.cache.put_deployment(ns, md, variant, facts) and (ns, md) in ctx.cache.mds:
            await ctx.reconcile_key((ns, md))  # e.g. the target became Ready: move on now
