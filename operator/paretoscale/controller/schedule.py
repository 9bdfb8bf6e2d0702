"""Which ModelDeployments a tick reconciles first, and which may carry their last decision
(pure, apart from the mutable `Schedule` record the tick loop owns).

A tick that cannot reconcile every object within its budget (a share of the tick interval)
reconciles first the objects whose decision can change: never reconciled, a new spec
generation, a rollout in progress, or a load that moved by more than LOAD_STEP since their
last reconcile (prices move every object at once and are read by every reconcile, so they do
not reorder). The others follow, least recently reconciled first, until the budget is spent;
the rest keep their last decision and their status until a later tick reaches them. So at
any fleet size every object is reconciled within ceil(N / per-tick capacity) ticks, and an
object whose inputs moved within one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (namespace, name)
LOAD_STEP = 0.10  # a load that moved by more than 10% makes an object urgent
BUDGET_SHARE = 0.8  # a tick spends at most this share of the interval on non-urgent objects


@dataclass(frozen=True)
class Signature:
    """What, when it moves, can change an object's decision."""

    generation: int | None
    phase: str  # the rollout phase its status shows; anything but Stable moves every tick
    load: int | None  # load_bucket of its request rate

    @property
    def in_rollout(self) -> bool:
        return self.phase != "Stable"


@dataclass
class Schedule:
    """When each object was last reconciled (seconds, the loop's clock) and its inputs'
    signature then."""

    last_at: dict[Key, float] = field(default_factory=dict)
    last_signature: dict[Key, Signature] = field(default_factory=dict)

    def done(self, key: Key, at: float, sig: Signature) -> None:
        self.last_at[key] = at
        self.last_signature[key] = sig

    def forget_absent(self, keys: Iterable[Key]) -> None:
        """Drop what is remembered of objects no longer in the cache."""
        present = set(keys)
        for gone in [k for k in self.last_at if k not in present]:
            self.last_at.pop(gone, None)
            self.last_signature.pop(gone, None)


def load_bucket(requests_per_s: float | None) -> int | None:
    """The load on a log scale in steps of LOAD_STEP (None: not measured; 0 req/s: -1)."""
    if requests_per_s is None or not math.isfinite(requests_per_s):
        return None
    if requests_per_s <= 0:
        return -1
    return math.floor(math.log(requests_per_s) / math.log1p(LOAD_STEP))


def signature(body: Mapping[str, Any], requests_per_s: float | None) -> Signature:
    meta = body.get("metadata") or {}
    phase = (body.get("status") or {}).get("phase") or "Stable"
    return Signature(meta.get("generation"), str(phase), load_bucket(requests_per_s))


def tick_order(signatures: Mapping[Key, Signature], schedule: Schedule) -> list[tuple[Key, bool]]:
    """Every key with whether it is urgent (never reconciled, in a rollout, or its signature
    moved), urgent ones first, then the least recently reconciled."""

    def urgent(key: Key) -> bool:
        sig = signatures[key]
        return sig.in_rollout or schedule.last_signature.get(key) != sig

    rows = [(k, urgent(k)) for k in signatures]
    rows.sort(key=lambda r: (not r[1], schedule.last_at.get(r[0], -math.inf), r[0]))
    return rows
