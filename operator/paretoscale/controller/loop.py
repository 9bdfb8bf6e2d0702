"""The tick: every tick_seconds, reconcile the cached ModelDeployments, a few at a time.

One loop per operator process, not one timer per object: the number of tasks and the
Prometheus queries per tick do not grow with the number of ModelDeployments. Objects whose
decision can change go first (controller/schedule.py); once a share of the interval is
spent, the others carry their last decision to a later tick, least recently reconciled first.
`paretoscale_tick_deferred_modeldeployments` and `paretoscale_decision_age_max_seconds` say
how far behind the loop is. The tick's events are posted after its reconciles
(controller/events.py), so they never hold a decision back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from paretoscale.controller.reconcile import Context
from paretoscale.controller.schedule import (
    BUDGET_SHARE,
    Key,
    Schedule,
    Signature,
    signature,
    tick_order,
)

log = logging.getLogger("paretoscale")
CONCURRENCY = 16  # reconciles at once (each may wait on the API server)


async def tick_once(
    ctx: Context, schedule: Schedule | None = None, clock: Callable[[], float] = time.monotonic
) -> int:
    """Reconcile the cached ModelDeployments once, urgent ones first; returns how many were
    reconciled. Without a `schedule` (a one-off tick) every object is reconciled."""
    schedule = schedule if schedule is not None else Schedule()
    snapshot = ctx.latest_snapshot()
    signatures = {k: signature(b, _load(snapshot, k)) for k, b in list(ctx.cache.mds.items())}
    schedule.forget_absent(signatures)
    gate = asyncio.Semaphore(CONCURRENCY)
    started = clock()
    deadline = started + BUDGET_SHARE * ctx.settings.tick_seconds
    done = 0

    async def one(key: Key, urgent: bool, sig: Signature) -> None:
        nonlocal done
        async with gate:
            if not urgent and clock() > deadline:
                return  # carries its last decision to a later tick
            try:
                await ctx.reconcile_key(key)
            except Exception:  # one object's failure must not stop the others
                log.exception("reconcile of %s/%s failed; retrying next tick", *key)
            schedule.done(key, clock(), sig)
            done += 1

    order = tick_order(signatures, schedule)
    ctx.events.ticking = True
    try:
        await asyncio.gather(*(one(k, u, signatures[k]) for k, u in order))
    finally:
        ctx.events.ticking = False
    await ctx.events.flush(ctx.kube)  # once every decision of the tick is written
    now = clock()
    ctx.metrics.tick_seconds.observe(now - started)
    ctx.metrics.modeldeployments.set(len(signatures))
    ctx.metrics.deferred.set(len(signatures) - done)
    ages = [now - schedule.last_at[k] for k in signatures if k in schedule.last_at]
    ctx.metrics.decision_age.set(max(ages, default=0.0))
    if snapshot is not None:
        ctx.metrics.queries_per_tick.set(snapshot.queries_run)
    return done


def _load(snapshot: Any, key: Key) -> float | None:
    """The object's request rate in the snapshot (None: no snapshot or no series)."""
    if snapshot is None:
        return None
    rates = [m.requests_per_s for m in snapshot.for_modeldeployment(*key).values()]
    known = [r for r in rates if r is not None]
    return sum(known) if known else None


async def tick_loop(
    ctx: Context, stop: asyncio.Event, on_tick: Callable[[], None] | None = None
) -> None:
    schedule = Schedule()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.tick_seconds)
        if not stop.is_set():
            await tick_once(ctx, schedule)
            if on_tick is not None:
                on_tick()
