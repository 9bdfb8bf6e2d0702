"""One reconcile of one ModelDeployment: the imperative shell around the pure tick.

    status + spec ─► observe (snapshot, no I/O) ─► tick (tick/tick.py) ─► plan_changes
                      memory (controller/memory.py) ─┘        │                 │
                                   status patch + events ◄────┴────── apply (SSA) ◄

Reads no API: the Deployments, Services and PodDisruptionBudgets come from the watch cache
(controller/cache.py), metrics from the poller's snapshot, the last status from the
per-object memory (we are its only writer) or the object. Acts only once the cache has listed
every watched kind (`Cache.synced`). Applies what the cache shows differs from the rendering
(actuate/plan.py), so a deleted or hand-scaled object is repaired on the next tick; nothing is
applied to a ModelDeployment that is being deleted (deletionTimestamp). A spec that cannot
be used is reported on the object and nothing else is touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from paretoscale.actuate.kube import Kube
from paretoscale.actuate.plan import Observed, plan_changes
from paretoscale.actuate.render import Owner
from paretoscale.api.manifest import parse_spec
from paretoscale.api.status import ModelDeploymentStatus
from paretoscale.config import OperatorSettings
from paretoscale.controller.cache import Cache, Key
from paretoscale.controller.memory import status_changed, with_memory
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.observing import operator_inputs, tick_options
from paretoscale.controller.status import (
    TickResult,
    build_status,
    comparable,
    invalid_spec_status,
    rfc3339,
)
from paretoscale.errors import SpecError
from paretoscale.rollout.machine import Event, VariantFacts
from paretoscale.tick.memory import TickMemory
from paretoscale.tick.tick import tick

log = logging.getLogger("paretoscale")


@dataclass
class ObjectMemory:
    """What this process remembers about one ModelDeployment between ticks."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    status: ModelDeploymentStatus | None = None
    tick: TickMemory | None = None  # the newest tick memory (status holds the last written)


@dataclass
class Context:
    """Shared by every reconcile of this process (kept in kopf's memo)."""

    settings: OperatorSettings
    kube: Kube
    metrics: OperatorMetrics
    latest_snapshot: Callable[[], Any]
    clock: Callable[[], float] = time.time
    cache: Cache = field(default_factory=Cache)
    objects: dict[str, ObjectMemory] = field(default_factory=dict)

    async def reconcile_key(self, key: Key) -> None:
        """Reconcile the cached ModelDeployment `key`, if it is still there and the cache has
        listed every watched kind (before that, a missing object may just not be listed yet)."""
        body = self.cache.mds.get(key)
        if body is not None and self.cache.synced:
            await reconcile(self, body, self.cache.facts(key), self.cache.observed(key))


EmitEvent = Callable[[str, str, str], None]  # (type, reason, message)


async def reconcile(
    ctx: Context,
    body: Mapping[str, Any],
    deployments: Mapping[str, VariantFacts],
    observed: Mapping[str, Observed],
) -> None:
    """Decide and act for one ModelDeployment, from the cluster as the cache shows it (its
    Deployments' facts by variant, its rendered objects by key). Safe to call at any time;
    serialized per object.

    Events are collected during the reconcile and posted at its end."""
    meta = body["metadata"]
    mem = ctx.objects.setdefault(meta["uid"], ObjectMemory())
    events: list[tuple[str, str, str]] = []
    async with mem.lock:
        started = time.perf_counter()
        try:
            await _reconcile(ctx, body, deployments, observed, lambda *e: events.append(e), mem)
        finally:
            ctx.metrics.reconcile_seconds.observe(time.perf_counter() - started)
            for type_, reason, message in events:
                try:
                    await asyncio.to_thread(ctx.kube.post_event, body, type_, reason, message)
                except Exception as e:  # an event is best effort; never fail a reconcile on it
                    log.warning("posting event %s on %s failed: %s", reason, meta["name"], e)


def _old_status(body: Mapping[str, Any], mem: ObjectMemory) -> ModelDeploymentStatus:
    if mem.status is not None:
        return mem.status
    try:
        return ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        log.warning("unreadable status on %s; starting from an empty one", body["metadata"]["name"])
        return ModelDeploymentStatus()


async def _reconcile(
    ctx: Context,
    body: Mapping[str, Any],
    deployments: Mapping[str, VariantFacts],
    observed: Mapping[str, Observed],
    emit: EmitEvent,
    mem: ObjectMemory,
) -> None:
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return  # being deleted: the garbage collector removes what it owns; never re-create it
    ns, name, gen = meta["namespace"], meta["name"], meta.get("generation")
    labels = {"namespace": ns, "modeldeployment": name}
    now = ctx.clock()
    old = _old_status(body, mem)

    try:
        spec = parse_spec(body.get("spec") or {}, f"{ns}/{name}")
    except SpecError as e:
        new = invalid_spec_status(old, e.problems, now, gen)
        if comparable(new) != comparable(old):
            emit("Warning", "InvalidSpec", "; ".join(e.problems)[:1024])
            await _write_status(ctx, ns, name, new, mem)
        return

    mode = ctx.settings.default_mode or spec.mode
    seen, memory = operator_inputs(
        ctx.latest_snapshot(), ctx.settings, ns, name, spec, now, old, mem.tick
    )
    state0 = memory.rollout
    if mode == "Auto" and state0.active and state0.active not in deployments:
        log.warning(
            "%s/%s: the Deployment of %s is gone; recreating it at the replicas last decided",
            ns,
            name,
            state0.active,
        )
    outcome = tick(
        spec, memory, seen.observation, deployments, now, tick_options(ctx.settings, mode)
    )
    decision = outcome.decision
    mem.tick = outcome.memory

    result_step = outcome.step
    apply_error = None
    if result_step is not None:
        owner = Owner(name, ns, meta["uid"])
        changes = plan_changes(owner, spec, result_step.fleet, set(deployments), observed)
        try:
            for manifest in changes.apply:
                await asyncio.to_thread(ctx.kube.apply, manifest)
            for dep in changes.delete_deployments:
                await asyncio.to_thread(ctx.kube.delete_deployment, ns, dep)
        except Exception as e:  # the API refused: keep the old state, say so, retry next tick
            apply_error = f"applying to the Kubernetes API failed: {e}"[:1024]
            ctx.metrics.apply_errors.labels(**labels).inc()
            result_step = None
            mem.tick = None  # the status (not this tick's memory) is what happened
        if result_step is not None:
            for ev in result_step.events:
                _emit(emit, ev)
            if result_step.switch is not None:
                ctx.metrics.switches.labels(**labels, outcome=result_step.switch.outcome).inc()

    result = TickResult(
        now=now,
        generation=gen,
        mode=mode,
        decision=decision,
        step=result_step,
        observed=seen.status(rfc3339(now)),
        metrics_problem=seen.observation.metrics_problem,
        prometheus_configured=ctx.settings.prometheus_url is not None,
        capacity_corrections=dict(outcome.corrections),
        apply_error=apply_error,
    )
    new = with_memory(build_status(old, result), outcome.memory)
    if mode == "Recommend" and (
        old.decision is None
        or (old.decision.variant, old.decision.replicas)
        != (
            new.decision.variant if new.decision else None,
            new.decision.replicas if new.decision else None,
        )
    ):
        emit(
            "Normal",
            "Recommendation",
            f"recommend {decision.best}: {'; '.join(decision.reasons)}"[:1024],
        )
    ctx.metrics.decisions.labels(**labels, action=decision.action).inc()
    serving = next((e for e in decision.evaluations if e.name == new.active_variant), None)
    if serving is not None:
        ctx.metrics.hourly_cost.labels(**labels).set(serving.hourly_cost_usd)
        ctx.metrics.net_value.labels(**labels).set(serving.net_value_per_hour_usd)
    if status_changed(new, old):
        await _write_status(ctx, ns, name, new, mem)


def _emit(emit: EmitEvent, ev: Event) -> None:
    emit(ev.type, ev.reason, ev.message[:1024])


async def _write_status(
    ctx: Context, ns: str, name: str, status: ModelDeploymentStatus, mem: ObjectMemory
) -> None:
    doc = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    await asyncio.to_thread(ctx.kube.patch_status, ns, name, doc)
    mem.status = status
