"""One reconcile of one ModelDeployment: the imperative shell around the pure tick.

    status + spec ─► observe (snapshot, no I/O) ─► tick (tick/tick.py) ─► plan_changes
                      memory (controller/memory.py) ─┘                          │
                     status (the intent) ─► events, switch count ─► apply (SSA) ◄

The status that records a step (its phase, target, replicas) is written before any apply
the step leads to, so a process that dies in between resumes from the step; it replaces the
stored status at the resourceVersion last seen (controller/writes.py), and a conflict
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
ResourceConflict (controller/conflicts.py). Each reconcile has a timeout
(`reconcile_timeout_seconds`); one that raises or hangs sets ReconcileError on its own object.
With spec.profiling enabled, controller/profiling.py runs its profiling Jobs (reading them from
the API) and the tick plans with the profiles they measured where the spec has none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paretoscale.actuate.kube import Kube
from paretoscale.actuate.plan import Changes, Observed, plan_changes
from paretoscale.actuate.render import LABEL_MD, Owner
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.admission import gpu_type_problems
from paretoscale.api.conditions import get_condition
from paretoscale.api.manifest import parse_spec
from paretoscale.api.names import name_problems
from paretoscale.api.status import ModelDeploymentStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.config import OperatorSettings
from paretoscale.controller.cache import Cache, Key
from paretoscale.controller.conflicts import apply_conflict
from paretoscale.controller.events import EventQueue
from paretoscale.controller.inventory import Inventory
from paretoscale.controller.memory import refresh_interval_s, status_changed, with_memory
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.observing import operator_inputs, tick_options
from paretoscale.controller.profiling import profile_step
from paretoscale.controller.status import (
    TickResult,
    build_status,
    comparable,
    invalid_spec_status,
    rfc3339,
)
from paretoscale.controller.writes import (
    EmitEvent,
    old_status,
    report_error,
    write_status,
)
from paretoscale.decide.evaluate import estimate_problems
from paretoscale.decide.profiling import with_profiles
from paretoscale.decide.types import Decision
from paretoscale.errors import SpecError
from paretoscale.rollout.machine import Step, VariantFacts
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
    inventory: Inventory | None = None  # the cluster's GPUs (--no-gpu-inventory: None)
    objects: dict[str, ObjectMemory] = field(default_factory=dict)
    events: EventQueue = field(default_factory=EventQueue)

    async def reconcile_key(self, key: Key) -> None:
        """Reconcile the cached ModelDeployment `key`, if it is still there and the cache has
        listed every watched kind (before that, a missing object may just not be listed yet).
        Its events are posted at once, or at the end of the tick that is running."""
        body = self.cache.mds.get(key)
        if body is not None and self.cache.synced:
            await reconcile(self, body, self.cache.facts(key), self.cache.observed(key))
            if not self.events.ticking:
                await self.events.flush(self.kube)


async def reconcile(
    ctx: Context,
    body: Mapping[str, Any],
    deployments: Mapping[str, VariantFacts],
    observed: Mapping[str, Observed],
) -> None:
    """Decide and act for one ModelDeployment, from the cluster as the cache shows it (its
    Deployments' facts by variant, its rendered objects by key). Safe to call at any time;
    serialized per object.

    Events are queued on `ctx.events` (controller/events.py), posted after the status
    writes. A reconcile that raises or outlasts `reconcile_timeout_seconds` is reported on
    its object (condition ReconcileError, an event at most every ERROR_EVENT_INTERVAL_S) and
    never propagates: the other objects go on."""
    meta = body["metadata"]
    mem = ctx.objects.setdefault(meta["uid"], ObjectMemory())

    def emit(type_: str, reason: str, message: str) -> None:
        ctx.events.emit(body, type_, reason, message)

    async with mem.lock:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                _reconcile(ctx, body, deployments, observed, emit, mem),
                timeout=ctx.settings.reconcile_timeout_seconds,
            )
        except Exception as e:  # TimeoutError included: report it on the object, go on
            await report_error(ctx, body, mem, e, emit)
        finally:
            ctx.metrics.reconcile_seconds.observe(time.perf_counter() - started)


def _spec_of(ctx: Context, mem: ObjectMemory, body: Mapping[str, Any]) -> ModelDeploymentSpec:
    """The spec, parsed and checked (names, GPU types, an estimate for every variant without
    a profile) once per generation; SpecError when it cannot be used."""
    meta = body["metadata"]
    gen, source = meta.get("generation"), f"{meta['namespace']}/{meta['name']}"
    if gen is not None and mem.spec is not None and mem.spec[0] == gen:
        return mem.spec[1]
    spec = parse_spec(body.get("spec") or {}, source)
    problems = [
        *name_problems(meta["name"], [v.name for v in spec.variants]),
        *gpu_type_problems(spec, ctx.gpu_types),
    ]
    problems = problems or estimate_problems(spec, ctx.gpu_types)
    if problems:
        raise SpecError(source, problems)
    if gen is not None:
        mem.spec = (int(gen), spec)
    return spec


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
    old = old_status(body, mem)

    try:
        spec = _spec_of(ctx, mem, body)
    except SpecError as e:
        new = invalid_spec_status(old, e.problems, now, gen)
        if comparable(new) != comparable(old):
            emit("Warning", "InvalidSpec", "; ".join(e.problems)[:1024])
            await write_status(ctx, body, new, mem)
        return

    mode = ctx.settings.default_mode or spec.mode
    gpus = ctx.inventory.available(spec, (ns, name)) if ctx.inventory is not None else None
    seen, memory = operator_inputs(
        ctx.latest_snapshot(), ctx.settings, ns, name, spec, now, old, mem.tick, gpus
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
        with_profiles(spec, old.profiling),  # a measured profile where the spec has none
        memory,
        replace(seen.observation, gpu_types=ctx.gpu_types),
        deployments,
        now,
        tick_options(ctx.settings, mode),
    )
    decision = outcome.decision
    mem.tick = outcome.memory

    guard = await _guard(ctx, body, spec, outcome.step, deployments, observed)
    if outcome.step is not None and guard.step is None:
        mem.tick = None  # nothing of the step happened: the status is what did
    if guard.conflict is not None:
        was = get_condition(old.conditions, "ResourceConflict")
        if was is None or (was.status, was.message) != ("True", guard.conflict):
            emit("Warning", "ResourceConflict", guard.conflict[:1024])

    result = TickResult(
        now=now,
        generation=gen,
        mode=mode,
        decision=decision,
        step=guard.step,
        observed=seen.status(rfc3339(now)),
        metrics_problem=seen.observation.metrics_problem,
        prometheus_configured=ctx.settings.prometheus_url is not None,
        capacity_corrections=dict(outcome.corrections),
        apply_error=guard.read_error,
        conflict=guard.conflict,
        collision=guard.collision,
        pending_pods=await _pending_pods(ctx, ns, name, deployments),
    )
    profiling = await profile_step(
        ctx.kube, body, spec, old.profiling, seen.observation.token_mix, now, emit, ctx.gpu_types
    )
    new = with_memory(build_status(old, result), outcome.memory)
    new = new.model_copy(update={"profiling": profiling})
    # The intent first: the status records the step (its phase, target and replicas) before
    # any apply it leads to, so a crash in between resumes from the step, never from before it.
    since = now - mem.written_at if mem.written_at is not None else None
    refresh = refresh_interval_s(meta["uid"])
    changed = status_changed(new, old, since, refresh) or profiling != old.profiling
    if changed and not await write_status(ctx, body, new, mem):
        return  # the object changed meanwhile: re-read, decide again next tick
    _report(ctx, labels, mode, old, new, outcome.decision, guard.step, emit)
    apply_error = await _apply(ctx, ns, guard.changes)
    if apply_error is not None:
        ctx.metrics.apply_errors.labels(**labels).inc()
        failed = with_memory(
            build_status(old, replace(result, apply_error=apply_error)), outcome.memory
        ).model_copy(update={"profiling": profiling})
        await write_status(ctx, body, failed, mem)


@dataclass(frozen=True)
class Guarded:
    """What a step may apply once names and ownership are checked."""

    changes: Changes = field(default_factory=Changes)
    step: Step | None = None  # None: nothing of the tick's step is done
    conflict: str | None = None  # why nothing may be applied (ResourceConflict)
    collision: bool = False  # the conflict is a `<md>-<variant>` name collision
    read_error: str | None = None  # the API could not say who owns an object


async def _guard(
    ctx: Context,
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    step: Step | None,
    deployments: Mapping[str, VariantFacts],
    observed: Mapping[str, Observed],
) -> Guarded:
    """The changes a step leads to, or none when a name collides, an object to apply is not
    this ModelDeployment's, or the API cannot tell (controller/conflicts.py)."""
    if step is None:
        return Guarded()
    meta = body["metadata"]
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    changes = plan_changes(owner, spec, step.fleet, set(deployments), observed, ctx.gpu_types)
    try:
        conflict, collision = await apply_conflict(ctx, body, owner, changes, observed)
    except Exception as e:  # could not tell: act on nothing, say so, retry next tick
        return Guarded(read_error=f"reading the Kubernetes API failed: {e}"[:1024])
    if conflict is not None:
        return Guarded(conflict=conflict, collision=collision)
    return Guarded(changes, step)


def _report(
    ctx: Context,
    labels: Mapping[str, str],
    mode: str,
    old: ModelDeploymentStatus,
    new: ModelDeploymentStatus,
    decision: Decision,
    step: Step | None,
    emit: EmitEvent,
) -> None:
    """Once the status recorded the step: its events and switch count, the Recommendation
    event when the recommendation moved, and the per-object metrics."""
    if step is not None:
        for ev in step.events:
            emit(ev.type, ev.reason, ev.message[:1024])
        if step.switch is not None:
            ctx.metrics.switches.labels(**labels, outcome=step.switch.outcome).inc()
    before = (old.decision.variant, old.decision.replicas) if old.decision else None
    after = (new.decision.variant, new.decision.replicas) if new.decision else None
    if mode == "Recommend" and before != after:
        why = "; ".join(decision.reasons)
        emit("Normal", "Recommendation", f"recommend {decision.variant}: {why}"[:1024])
    ctx.metrics.decisions.labels(**labels, action=decision.action).inc()
    serving = next((e for e in decision.evaluations if e.name == new.active_variant), None)
    if serving is not None:
        ctx.metrics.hourly_cost.labels(**labels).set(serving.hourly_cost_usd)
        ctx.metrics.net_value.labels(**labels).set(serving.net_value_per_hour_usd)


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
