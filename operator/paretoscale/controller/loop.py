"""The tick: every tick_seconds, reconcile every cached ModelDeployment, a few at a time.

One loop per operator process, not one timer per object: the number of tasks and the
Prometheus queries per tick do not grow with the number of ModelDeployments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from paretoscale.controller.reconcile import Context

log = logging.getLogger("paretoscale")
CONCURRENCY = 8


async def tick_once(ctx: Context) -> int:
    """Reconcile every cached ModelDeployment once; returns how many were reconciled."""
    keys = list(ctx.cache.mds)
    gate = asyncio.Semaphore(CONCURRENCY)
    started = time.perf_counter()

    async def one(key: tuple[str, str]) -> None:
        async with gate:
            try:
                await ctx.reconcile_key(key)
            except Exception:  # one object's failure must not stop the others
                log.exception("reconcile of %s/%s failed; retrying next tick", *key)

    await asyncio.gather(*(one(k) for k in keys))
    ctx.metrics.tick_seconds.observe(time.perf_counter() - started)
    ctx.metrics.modeldeployments.set(len(keys))
    snapshot = ctx.latest_snapshot()
    if snapshot is not None:
        ctx.metrics.queries_per_tick.set(snapshot.queries_run)
    return len(keys)


async def tick_loop(
    ctx: Context, stop: asyncio.Event, on_tick: Callable[[], None] | None = None
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.tick_seconds)
        if not stop.is_set():
            await tick_once(ctx)
            if on_tick is not None:
                on_tick()
