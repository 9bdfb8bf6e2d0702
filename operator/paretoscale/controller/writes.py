"""What a reconcile writes about itself: the status, replaced at a resourceVersion, and
ReconcileError when a reconcile raises or times out.

The status replaces the stored one at the resourceVersion this process last saw, so a field
now None is removed and a write based on a stale read is refused (409): the object is then
re-read into the cache and what this process remembered of it is forgotten, so the next tick
decides again from what is stored. A failed reconcile is reported on its own object, with an
event at most every ERROR_EVENT_INTERVAL_S for the same message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from paretoscale.actuate.kube import StatusConflict
from paretoscale.api.status import ModelDeploymentStatus
from paretoscale.controller.status import comparable, reconcile_error_status

if TYPE_CHECKING:
    from paretoscale.controller.reconcile import Context, ObjectMemory

log = logging.getLogger("paretoscale")

EmitEvent = Callable[[str, str, str], None]  # (type, reason, message)
ERROR_EVENT_INTERVAL_S = 300.0  # a ReconcileError event repeats at most this often


def old_status(body: Mapping[str, Any], mem: ObjectMemory) -> ModelDeploymentStatus:
    """The status as this process last wrote it, else as the object carries it (an
    unreadable one counts as empty)."""
    if mem.status is not None:
        return mem.status
    try:
        return ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        log.warning("unreadable status on %s; starting from an empty one", body["metadata"]["name"])
        return ModelDeploymentStatus()


async def write_status(
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


async def report_error(
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
    new = reconcile_error_status(old_status(body, mem), timed_out, message, now, gen)
    if comparable(new) == comparable(old_status(body, mem)):
        return
    try:
        await asyncio.wait_for(
            write_status(ctx, body, new, mem), ctx.settings.reconcile_timeout_seconds
        )
    except Exception as e:  # the API itself may be what fails; the log says it
        log.warning("%s/%s: writing the ReconcileError condition failed: %s", ns, name, e)
