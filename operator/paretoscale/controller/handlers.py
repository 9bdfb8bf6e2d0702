"""kopf wiring only: which events and timers call reconcile, and with what.

Handlers are registered on an explicit registry at start-up (so the tick interval comes from
settings, not import time). Deployments of ModelDeployments are kept in a kopf index, so a
reconcile reads no API. Each ModelDeployment is reconciled on create, on every spec change
(at once, not at the next tick), and on a timer every tick.
"""

from __future__ import annotations

from typing import Any

import kopf

from paretoscale.actuate.render import LABEL_MD, LABEL_VARIANT
from paretoscale.api.types import GROUP, PLURAL, VERSION
from paretoscale.config import OperatorSettings
from paretoscale.controller.reconcile import Context, reconcile
from paretoscale.rollout.machine import VariantFacts


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    @kopf.index(
        "apps",
        "v1",
        "deployments",
        id="md_deployments",
        labels={LABEL_MD: kopf.PRESENT},
        registry=registry,
    )
    def md_deployments(
        body: kopf.Body, namespace: str | None, **_: Any
    ) -> dict[tuple[str, str], tuple[str, VariantFacts]]:
        labels = body["metadata"].get("labels", {})
        facts = VariantFacts(
            desired=int(body.get("spec", {}).get("replicas") or 0),
            ready=int(body.get("status", {}).get("readyReplicas") or 0),
        )
        return {(namespace or "", labels[LABEL_MD]): (labels.get(LABEL_VARIANT, ""), facts)}

    async def run(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        ctx: Context = memo["ctx"]
        md_deployments: kopf.Index[Any, Any] = kwargs["md_deployments"]
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        facts = {variant: f for variant, f in md_deployments.get(key, [])}

        def emit(type_: str, reason: str, message: str) -> None:
            kopf.event(body, type=type_, reason=reason, message=message)

        await reconcile(ctx, body, facts, emit)

    kopf.on.create(GROUP, VERSION, PLURAL, id="created", registry=registry)(run)
    kopf.on.update(GROUP, VERSION, PLURAL, id="spec-changed", field="spec", registry=registry)(run)
    kopf.on.resume(GROUP, VERSION, PLURAL, id="resumed", registry=registry)(run)
    kopf.timer(
        GROUP, VERSION, PLURAL, id="tick", interval=settings.tick_seconds, registry=registry
    )(run)
