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
be used is reported on the object and nothing else is touched. Nothing is applied over an
object this ModelDeployment does not own (the cache, or a GET for an object the cache does not
show), nor when its `<md>-<variant>` names collide with an older ModelDeployment's: condition
ResourceConflict (actuate/ownership.py, api/names.py). Each reconcile has a timeout
(`reconcile_timeout_seconds`); one that raises or hangs sets ReconcileError on its own object.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from paretoscale.actuate.kube import Kube
from paretoscale.actuate.ownership import Conflict, OwnerRefs, first_conflict
from paretoscale.actuate.plan import Changes, Observed, object_key, plan_changes
from paretoscale.actuate.render import Owner
from paretoscale.api.conditions import get_condition
from paretoscale.api.manifest import parse_spec
from paretoscale.api.names import collisions, name_problems
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
    reconcile_error_status,
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
    error_event_at: float | None = None  # when the last ReconcileError event was posted
    error_message: str | None = None


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
ERROR_EVENT_INTERVAL_S = 300.0  # a ReconcileError event repeats at most this often


async def reconcile(
    ctx: Context,
    body: Mapping[str, Any],
    deployments: Mapping[str, VariantFacts],
    observed: Mapping[str, Observed],
) -> None:
    """Decide and act for one ModelDeployment, from the cluster as the cache shows it (its
    Deployments' facts by variant, its rendered objects by key). Safe to call at any time;
    serialized per object.

    Events are collected during the reconcile and posted at its end. A reconcile that raises
    or outlasts `reconcile_timeout_seconds` is reported on its object (condition
    ReconcileError, an event at most every ERROR_EVENT_INTERVAL_S) and never propagates: the
    other objects go on."""
    meta = body["metadata"]
    mem = ctx.objects.setdefault(meta["uid"], ObjectMemory())
    events: list[tuple[str, str, str]] = []
    async with mem.lock:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                _reconcile(ctx, body, deployments, observed, lambda *e: events.append(e), mem),
                timeout=ctx.settings.reconcile_timeout_seconds,
            )
        except Exception as e:  # TimeoutError included: report it on the object, go on
            await _report_error(ctx, body, mem, e, lambda *ev: events.append(ev))
        finally:
            ctx.metrics.reconcile_seconds.observe(time.perf_counter() - started)
            for type_, reason, message in events:
                try:
                    await asyncio.to_thread(ctx.kube.post_event, body, type_, reason, message)
                except Exception as e:  # an event is best effort; never fail a reconcile on it
                    log.warning("posting event %s on %s failed: %s", reason, meta["name"], e)


async def _report_error(
    ctx: Context, body: Mapping[str, Any], mem: ObjectMemory, err: Exception, emit: EmitEvent
) -> None:
    """ReconcileError on the object; an event and a traceback in the log when the message
    changed or ERROR_EVENT_INTERVAL_S passed, a one-line warning otherwise."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    timed_out = isinstance(err, TimeoutError)
    message = (
        f"reconcile timed out after {ctx.settings.reconcile_timeout_seconds:g}s; retrying next tick"
        if timed_out
        else f"reconcile failed: {type(err).__name__}: {err}; retrying next tick"
    )[:1024]
    now = ctx.clock()
    mem.tick = None  # the status (not a half-done tick) is what happened
    loud = message != mem.error_message or (
        mem.error_event_at is None or now - mem.error_event_at >= ERROR_EVENT_INTERVAL_S
    )
    if loud:
        log.warning("%s/%s: %s", ns, name, message, exc_info=None if timed_out else err)
        emit("Warning", "ReconcileError", message)
        mem.error_event_at, mem.error_message = now, message
    else:
        log.warning("%s/%s: %s", ns, name, message)
    gen = meta.get("generation")
    new = reconcile_error_status(_old_status(body, mem), timed_out, message, now, gen)
    if comparable(new) == comparable(_old_status(body, mem)):
        return
    try:
        await asyncio.wait_for(
            _write_status(ctx, ns, name, new, mem), ctx.settings.reconcile_timeout_seconds
        )
    except Exception as e:  # the API itself may be what fails; the log says it
        log.warning("%s/%s: writing the ReconcileError condition failed: %s", ns, name, e)


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
        problems = name_problems(name, [v.name for v in spec.variants])
        if problems:
            raise SpecError(f"{ns}/{name}", problems)
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
    conflict: str | None = None
    collision = False
    if result_step is not None:
        owner = Owner(name, ns, meta["uid"])
        changes = plan_changes(owner, spec, result_step.fleet, set(deployments), observed)
        try:
            conflict = _name_collision(ctx, body)
            collision = conflict is not None
            if conflict is None:
                found = await _ownership_conflict(ctx, owner, changes.apply, observed)
                if found is not None:
                    conflict, collision = found.message(name), found.collision
            if conflict is not None:
                changes = Changes()  # touch nothing
                result_step = None
                mem.tick = None
                old_conflict = get_condition(old.conditions, "ResourceConflict")
                if old_conflict is None or (old_conflict.status, old_conflict.message) != (
                    "True",
                    conflict,
                ):
                    emit("Warning", "ResourceConflict", conflict[:1024])
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
        conflict=conflict,
        collision=collision,
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


def _name_collision(ctx: Context, body: Mapping[str, Any]) -> str | None:
    """Why this ModelDeployment's `<md>-<variant>` names clash with an earlier one of its
    namespace in the cache (None: they do not)."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    peers = {k[1]: b for k, b in ctx.cache.mds.items() if k[0] == ns} | {name: body}
    return collisions(peers.values()).get(name)


async def _ownership_conflict(
    ctx: Context,
    owner: Owner,
    manifests: Sequence[Mapping[str, Any]],
    observed: Mapping[str, Observed],
) -> Conflict | None:
    """The first object to apply that exists and that this ModelDeployment does not own. The
    cache shows only the operator's labeled objects; any other is read from the API."""
    existing: dict[str, OwnerRefs | None] = {}
    for m in manifests:
        key = object_key(m)
        seen = observed.get(key)
        if seen is not None:
            existing[key] = seen.owners
        else:
            existing[key] = await asyncio.to_thread(
                ctx.kube.owners, m["kind"], owner.namespace, m["metadata"]["name"]
            )
        found = first_conflict(owner, [key], existing)
        if found is not None:
            return found
    return None


def _emit(emit: EmitEvent, ev: Event) -> None:
    emit(ev.type, ev.reason, ev.message[:1024])


async def _write_status(
    ctx: Context, ns: str, name: str, status: ModelDeploymentStatus, mem: ObjectMemory
) -> None:
    doc = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    await asyncio.to_thread(ctx.kube.patch_status, ns, name, doc)
    mem.status = status
