"""Events wait for the status writes of their tick: a tick posts its events only once every
reconcile of it has written its status; a reconcile outside a tick posts at once; each event
keeps its emission time and an object's events their order; a failed post loses only itself."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paretoscale.controller.events import EventQueue
from paretoscale.controller.loop import tick_once
from paretoscale.controller.sync import sync_cache
from tests.unit.controller.test_reconcile import FakeKube, context, md_serving_fp8


class OrderedKube(FakeKube):
    """Records status writes and event posts in one sequence."""

    def __init__(self, mds: list[dict[str, Any]]) -> None:
        super().__init__(mds, {})
        self.calls: list[tuple[str, str]] = []

    def replace_status(
        self, namespace: str, name: str, status: Mapping[str, Any], version: str | None
    ) -> str:
        self.calls.append(("status", name))
        return super().replace_status(namespace, name, status, version)

    def post_event(self, obj: Any, type_: str, reason: str, message: str, at: Any = None) -> None:
        self.calls.append(("event", obj["metadata"]["name"]))
        super().post_event(obj, type_, reason, message, at)


def recommend(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(md_serving_fp8(3))
    doc["metadata"].update(name=name, uid=f"u-{name}")
    doc["spec"]["mode"] = "Recommend"
    del doc["status"]
    return doc


def test_a_tick_posts_its_events_after_every_status_write() -> None:
    kube = OrderedKube([recommend(f"md-{i}") for i in range(40)])
    ctx = context(kube)

    async def go() -> None:
        await sync_cache(ctx, ["llm"])
        await tick_once(ctx)

    asyncio.run(go())
    kinds = [kind for kind, _ in kube.calls]
    assert kinds.count("status") == 40 and kinds.count("event") == 40  # a Recommendation each
    assert kinds == ["status"] * 40 + ["event"] * 40
    assert not ctx.events.pending and not ctx.events.ticking


def test_a_reconcile_outside_a_tick_posts_at_once_and_inside_one_waits_for_its_end() -> None:
    kube = OrderedKube([recommend("a")])
    ctx = context(kube)

    async def go() -> None:
        await sync_cache(ctx, ["llm"])
        ctx.events.ticking = True  # a tick is running: its end posts
        await ctx.reconcile_key(("llm", "a"))
        assert kube.calls == [("status", "a")] and len(ctx.events.pending) == 1
        ctx.events.ticking = False
        await ctx.events.flush(kube)
        assert kube.calls[-1] == ("event", "a")

    asyncio.run(go())


class Recorder:
    def __init__(self, failing: str | None = None) -> None:
        self.posted: list[tuple[str, str, datetime | None]] = []
        self.failing = failing

    def post_event(
        self, obj: Mapping[str, Any], type_: str, reason: str, message: str, at: Any = None
    ) -> None:
        if reason == self.failing:
            raise RuntimeError("the API refused it")
        self.posted.append((obj["metadata"]["name"], reason, at))


def obj(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "llm", "name": name}}


def test_events_keep_their_time_and_each_objects_order() -> None:
    times = iter(datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(60))
    queue = EventQueue(clock=lambda: next(times))
    for i in range(30):  # more objects than are posted at once
        queue.emit(obj(f"o{i % 10}"), "Normal", f"r{i}", "")
    kube = Recorder()
    assert asyncio.run(queue.flush(kube)) == 30
    for n in range(10):
        mine = [(reason, at) for name, reason, at in kube.posted if name == f"o{n}"]
        assert [r for r, _ in mine] == [f"r{n}", f"r{n + 10}", f"r{n + 20}"]
        assert [at.second for _, at in mine if at] == [n, n + 10, n + 20]
    assert not queue.pending


def test_a_failed_post_loses_only_itself() -> None:
    queue = EventQueue()
    queue.emit(obj("a"), "Normal", "Scaled", "")
    queue.emit(obj("a"), "Warning", "Broken", "")
    queue.emit(obj("a"), "Normal", "Switched", "")
    kube = Recorder(failing="Broken")
    assert asyncio.run(queue.flush(kube)) == 2
    assert [r for _, r, _ in kube.posted] == ["Scaled", "Switched"]


def test_a_queued_event_keeps_only_what_names_its_object() -> None:
    queue = EventQueue()
    body = {
        "apiVersion": "paretoscale.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"namespace": "llm", "name": "a", "uid": "u-a", "labels": {"x": "y"}},
        "spec": {"variants": ["a large spec"]},
        "status": {"frontier": ["a large status"]},
    }
    queue.emit(body, "Normal", "Scaled", "")
    assert queue.pending[0].obj == {
        "apiVersion": "paretoscale.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"namespace": "llm", "name": "a", "uid": "u-a"},
    }
