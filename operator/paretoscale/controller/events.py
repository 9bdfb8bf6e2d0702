"""Events wait for the status writes of their tick: a reconcile queues its events, and the
tick posts them once its reconciles are done; a reconcile outside a tick (a watch event)
posts its own at once, unless a tick is running, whose end posts them.

The status carries the decision; an event tells `kubectl describe` that it moved. Posted
inline, a fleet's first tick spent as many API writes on events as on decisions, and the
last object's decision waited for the first ones' events. Each event keeps the time it was
emitted; an object's events are posted in the order they were emitted, objects at once (at
most CONCURRENCY). Events are best effort: a failed post is logged, never retried, and
events queued when the process stops are lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paretoscale.actuate.kube import Kube

log = logging.getLogger("paretoscale")

CONCURRENCY = 8  # objects whose events are posted at once


def involved(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What an event needs of its object: kind and name, not the whole body (a fleet's first
    tick queues an event per object while the watch replaces their bodies in the cache)."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in ("namespace", "name", "uid") if k in meta},
    }


@dataclass(frozen=True)
class Event:
    obj: Mapping[str, Any]  # what names the object it is about (`involved`)
    type: str  # Normal | Warning
    reason: str
    message: str
    at: datetime  # when it was emitted


@dataclass
class EventQueue:
    """Events emitted and not yet posted, in emission order, and whether a tick is running
    (its end posts them)."""

    pending: list[Event] = field(default_factory=list)
    ticking: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def emit(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.pending.append(Event(involved(obj), type_, reason, message, self.clock()))

    async def flush(self, kube: Kube) -> int:
        """Post every pending event; returns how many were posted."""
        batch, self.pending = self.pending, []
        by_object: dict[str, list[Event]] = {}
        for ev in batch:
            meta = ev.obj["metadata"]
            by_object.setdefault(f"{meta['namespace']}/{meta['name']}", []).append(ev)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def post(events: list[Event]) -> int:
            posted = 0
            async with gate:
                for ev in events:
                    try:
                        await asyncio.to_thread(
                            kube.post_event, ev.obj, ev.type, ev.reason, ev.message, ev.at
                        )
                        posted += 1
                    except Exception as e:  # best effort; never fail a tick on an event
                        name = ev.obj["metadata"]["name"]
                        log.warning("posting event %s on %s failed: %s", ev.reason, name, e)
            return posted

        return sum(await asyncio.gather(*(post(evs) for evs in by_object.values())))
