"""One reconcile of one ModelDeployment: the imperative shell around the pure tick.

    status + spec ─► observe (snapshot, no I/O) ─► tick (tick/tick.py) ─► plan_changes
                      memory (controller/memory.py) ─┘                          │
                     status (the intent) ─► events, switch count ─► apply (SSA) ◄

The status that records a step (its phase, target, replicas) is written before any apply
the step leads to, so a process that dies in between resumes from the step; it replaces the
stored status at the resourceVersion last seen (a dropped field is removed), and a conflict
re-reads the object and decides again next tick. A step's events and its switch are counted
once its status is written: a status write that fails applies and posts nothing.

Reads no API (but the Pending pods of a Deployment short of Ready replicas, named in
condition CapacityPending): the Deployments, Services and PodDisruptionBudgets come from the
watch cache (controller/cache.py), metrics from the poller's snapshot, the last status from
the per-object memory (we are its only writer) or the object. Acts only once the cache has listed
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
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from paretoscale.actuate.kube import Kube, StatusConflict
from paretoscale.actuate.ownership import Conflict, OwnerRefs, first_conflict
from paretoscale.actuate.plan import Changes, Observed, object_key, plan_changes
from paretoscale.actuate.render import LABEL_MD, Owner
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.admission import gpu_type_problems
from paretoscale.api.conditions import get_condition
from paretoscale.api.manifest import parse_spec
from paretoscale.api.names import collisions, name_problems
from paretoscale.api.status import ModelDeploymentStatus
from paretoscale.api.types import ModelDeploymentSpec
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

    spec: tuple[int, ModelDeploymentSpec] | None = None  # (generation, its parsed spec)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    status: ModelDeploymentStatus | None = None
    tick: TickMemory | None = None  # the newest tick memory (status holds the last written)
    error_event_at: float | None = None  # when the last ReconcileError event was posted
    error_message: str | None = None
    written_at: float | None = None  # when this process last wrote the status (ctx.clock)
    version: str | None = None  # the resourceVersion our last status write made
    version_base: str | None = None  # the cached object's resourceVersion that write was based on


@dataclass
class Context:
    """Shared by every reconcile of this process (kept in kopf's memo)."""

    settings: OperatorSettings
    kube: Kube
    metrics: OperatorMetrics
    latest_snapshot: Callable[[], Any]
    clock: Callable[[], float] = time.time
    gpu_types: GpuTypes = BUILTIN  # the cluster's GPU type mapping (--gpu-types-file)
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
            _write_status(ctx, body, new, mem), ctx.settings.reconcile_timeout_seconds
        )
    except Exception as e:  # the API itself may be what fails; the log says it
        log.warning("%s/%s: writing the ReconcileError condition failed: %s", ns, name, e)


def _spec_of(ctx: Context, mem: ObjectMemory, body: Mapping[str, Any]) -> ModelDeploymentSpec:
    """The spec, parsed and checked (names, GPU types) once per generation; SpecError when
    it cannot be used."""
    meta = body["metadata"]
    gen, source = meta.get("generation"), f"{meta['namespace']}/{meta['name']}"
    if gen is not None and mem.spec is not None and mem.spec[0] == gen:
        return mem.spec[1]
    spec = parse_spec(body.get("spec") or {}, source)
    problems = [
        *name_problems(meta["name"], [v.name for v in spec.variants]),
        *gpu_type_problems(spec, ctx.gpu_types),
    ]
    if problems:
        raise SpecError(source, problems)
    if gen is not None:
        mem.spec = (int(gen), spec)
    return spec


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
        spec = _spec_of(ctx, mem, body)
    except SpecError as e:
        new = invalid_spec_status(old, e.problems, now, gen)
        if comparable(new) != comparable(old):
            emit("Warning", "InvalidSpec", "; ".join(e.problems)[:1024])
            await _write_status(ctx, body, new, mem)
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
        spec,
        memory,
        replace(seen.observation, gpu_types=ctx.gpu_types),
        deployments,
        now,
        tick_options(ctx.settings, mode),
    )
    decision = outcome.decision
    mem.tick = outcome.memory

    result_step = outcome.step
    conflict: str | None = None
    collision = False
    changes = Changes()
    read_error = None
    if result_step is not None:
        owner = Owner(name, ns, meta["uid"])
        changes = plan_changes(
            owner, spec, result_step.fleet, set(deployments), observed, ctx.gpu_types
        )
        try:
            conflict, collision = await _conflict(ctx, body, owner, changes, observed)
        except Exception as e:  # could not tell: act on nothing, say so, retry next tick
            read_error = f"reading the Kubernetes API failed: {e}"[:1024]
        if conflict is not None or read_error is not None:
            changes, result_step, mem.tick = Changes(), None, None  # touch nothing
        if conflict is not None:
            old_conflict = get_condition(old.conditions, "ResourceConflict")
            if old_conflict is None or (old_conflict.status, old_conflict.message) != (
                "True",
                conflict,
            ):
                emit("Warning", "ResourceConflict", conflict[:1024])

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
        apply_error=read_error,
        conflict=conflict,
        collision=collision,
        pending_pods=await _pending_pods(ctx, ns, name, deployments),
    )
    new = with_memory(build_status(old, result), outcome.memory)
    # The intent first: the status records the step (its phase, target and replicas) before
    # any apply it leads to, so a crash in between resumes from the step, never from before it.
    since = now - mem.written_at if mem.written_at is not None else None
    if status_changed(new, old, since) and not await _write_status(ctx, body, new, mem):
        return  # the object changed meanwhile: re-read, decide again next tick
    if result_step is not None:  # recorded: its events and switch count once
        for ev in result_step.events:
            _emit(emit, ev)
        if result_step.switch is not None:
            ctx.metrics.switches.labels(**labels, outcome=result_step.switch.outcome).inc()
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
    apply_error = await _apply(ctx, ns, changes)
    if apply_error is not None:
        ctx.metrics.apply_errors.labels(**labels).inc()
        failed = with_memory(
            build_status(old, replace(result, apply_error=apply_error)), outcome.memory
        )
        await _write_status(ctx, body, failed, mem)


async def _apply(ctx: Context, ns: str, changes: Changes) -> str | None:
    """Apply and delete what `changes` says; None when all went through, else why not (the
    next tick applies again what still differs)."""
    try:
        for manifest in changes.apply:
            await asyncio.to_thread(ctx.kube.apply, manifest)
        for dep in changes.delete_deployments:
            await asyncio.to_thread(ctx.kube.delete_deployment, ns, dep)
    except Exception as e:  # the API refused: say so, retry next tick
        return f"applying to the Kubernetes API failed: {e}"[:1024]
    return None


async def _conflict(
    ctx: Context,
    body: Mapping[str, Any],
    owner: Owner,
    changes: Changes,
    observed: Mapping[str, Observed],
) -> tuple[str | None, bool]:
    """(why nothing may be applied, whether that is a name collision); (None, False): go."""
    conflict = _name_collision(ctx, body)
    if conflict is not None:
        return conflict, True
    found = await _ownership_conflict(ctx, owner, changes.apply, observed)
    if found is not None:
        return found.message(owner.name), found.collision
    return None, False


async def _pending_pods(
    ctx: Context, ns: str, name: str, deployments: Mapping[str, VariantFacts]
) -> tuple[tuple[str, str], ...] | None:
    """The pods of this ModelDeployment the scheduler cannot place, (name, why), looked up
    only while a Deployment has fewer Ready replicas than desired; () when none is short;
    None when the lookup failed (the condition stays as it was)."""
    if all(f.ready >= f.desired for f in deployments.values()):
        return ()
    try:
        found = await asyncio.to_thread(ctx.kube.pending_pods, ns, f"{LABEL_MD}={name}")
    except Exception as e:
        log.warning("%s/%s: listing Pending pods failed: %s", ns, name, e)
        return None
    return tuple(sorted(found))


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
    ctx: Context, body: Mapping[str, Any], status: ModelDeploymentStatus, mem: ObjectMemory
) -> bool:
    """Replace the stored status with `status` at the resourceVersion this process last saw
    (a field now None is removed). False on a conflict (409: someone else wrote since): the
    object is re-read into the cache and this process forgets what it remembered of it, so the
    next tick decides again from what is stored. Other API errors raise."""
    meta = body["metadata"]
    ns, name, seen = meta["namespace"], meta["name"], meta.get("resourceVersion")
    version = mem.version if mem.version is not None and seen == mem.version_base else seen
    doc = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    try:
        written = await asyncio.to_thread(ctx.kube.replace_status, ns, name, doc, version)
    except StatusConflict:
        log.info("%s/%s: changed since read (status conflict); deciding again", ns, name)
        mem.status, mem.tick, mem.version, mem.version_base = None, None, None, None
        fresh = await asyncio.to_thread(ctx.kube.read_modeldeployment, ns, name)
        if fresh is not None:
            ctx.cache.put_md(fresh)
        return False
    mem.status, mem.version, mem.version_base = status, written, seen
    mem.written_at = ctx.clock()
    ctx.metrics.status_writes.inc()
    return True
