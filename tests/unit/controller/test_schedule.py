"""A tick that cannot reconcile every object within its budget reconciles first the objects
whose decision can change; the others carry their last decision, least recently reconciled
first, so every object is reached within a bounded number of ticks."""

from __future__ import annotations

import asyncio
from typing import Any

from paretoscale.config import OperatorSettings
from paretoscale.controller.cache import Cache
from paretoscale.controller.events import EventQueue
from paretoscale.controller.loop import tick_once
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.schedule import Schedule, load_bucket, signature, tick_order


def body(name: str, generation: int = 1, phase: str = "Stable") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "generation": generation},
        "status": {"phase": phase},
    }


def test_load_moves_a_bucket_at_ten_percent() -> None:
    assert load_bucket(10.0) == load_bucket(10.5)
    assert load_bucket(10.0) != load_bucket(11.2)
    assert load_bucket(0.0) == -1 and load_bucket(None) is None


def test_urgent_objects_come_first_then_the_least_recently_reconciled() -> None:
    s = Schedule()
    sigs = {("ns", n): signature(body(n), 5.0) for n in "abcd"}
    for at, n in enumerate("abcd"):
        s.done(("ns", n), float(at), sigs[("ns", n)])
    sigs[("ns", "c")] = signature(body("c", generation=2), 5.0)  # new spec
    sigs[("ns", "d")] = signature(body("d"), 9.0)  # load moved
    order = tick_order(sigs, s)
    assert order[:2] == [(("ns", "c"), True), (("ns", "d"), True)]
    assert order[2:] == [(("ns", "a"), False), (("ns", "b"), False)]
    rolling = {("ns", "a"): signature(body("a", phase="Verifying"), 5.0)}
    s.done(("ns", "a"), 10.0, rolling[("ns", "a")])
    assert tick_order(rolling, s) == [(("ns", "a"), True)]  # a rollout moves every tick


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Ctx:
    """The parts of the Context the loop reads; each reconcile takes one clock second."""

    def __init__(self, names: list[str], clock: Clock) -> None:
        self.settings = OperatorSettings(tick_seconds=10)
        self.metrics = OperatorMetrics.create()
        self.cache = Cache()
        for n in names:
            self.cache.put_md(body(n))
        self.reconciled: list[str] = []
        self.clock = clock
        self.events = EventQueue()
        self.kube = None  # no events are emitted, so none are posted

    def latest_snapshot(self) -> None:
        return None

    async def reconcile_key(self, key: tuple[str, str]) -> None:
        self.reconciled.append(key[1])
        self.clock.t += 1.0


def test_a_tick_over_budget_defers_the_rest_and_the_next_tick_reaches_them() -> None:
    clock = Clock()
    names = [f"md-{i:02d}" for i in range(20)]
    ctx = Ctx(names, clock)
    s = Schedule()
    first = asyncio.run(tick_once(ctx, s, clock))  # type: ignore[arg-type]
    assert first == 20  # never reconciled: all urgent, none deferred
    ctx.reconciled.clear()
    second = asyncio.run(tick_once(ctx, s, clock))  # type: ignore[arg-type]
    # budget 0.8 x 10 s, one second each: the objects that started before the deadline ran
    assert 8 <= second < 20
    assert ctx.metrics.deferred._value.get() == 20 - second
    assert ctx.reconciled == names[:second]  # least recently reconciled first
    ctx.reconciled.clear()
    third = asyncio.run(tick_once(ctx, s, clock))  # type: ignore[arg-type]
    assert third >= 8
    assert ctx.reconciled == (names[second:] + names[:second])[:third]  # deferred ones first
