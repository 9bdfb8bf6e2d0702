"""Ownership and isolation in the shell: an object this ModelDeployment does not own is never
applied over (ResourceConflict, nothing touched); a `<md>-<variant>` collision names the later
ModelDeployment; a spec the API server admits but that cannot render is a condition; a
reconcile that raises or hangs is reported on its own object while the others go on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from paretoscale.actuate.ownership import OwnerRefs
from paretoscale.actuate.plan import object_key
from paretoscale.config import OperatorSettings
from paretoscale.controller import reconcile as reconcile_module
from paretoscale.controller.loop import tick_once
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context
from paretoscale.controller.sync import sync_cache
from tests.unit.controller.test_reconcile import NOW, FakeKube, md_serving_fp8


class Kube(FakeKube):
    """FakeKube with foreign objects (object key -> ownerReferences) and statuses by name."""

    def __init__(self, mds: list[dict[str, Any]], foreign: dict[str, OwnerRefs]) -> None:
        super().__init__(mds, {})
        self.foreign = foreign
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.hang: set[str] = set()  # ModelDeployments whose applies block until released
        self.release = threading.Event()

    def owners(self, kind: str, namespace: str, name: str) -> OwnerRefs | None:
        return self.foreign.get(f"{kind}/{name}")

    def apply(self, manifest: Mapping[str, Any]) -> None:
        if manifest["metadata"]["labels"]["paretoscale.io/modeldeployment"] in self.hang:
            self.release.wait(timeout=30)
        super().apply(manifest)

    def replace_status(
        self, namespace: str, name: str, status: Mapping[str, Any], version: str | None
    ) -> str:
        self.by_name.setdefault(name, []).append(dict(status))
        return super().replace_status(namespace, name, status, version)


def context(kube: Kube, timeout_s: float = 20.0) -> Context:
    settings = OperatorSettings(
        prometheus_url="http://127.0.0.1:1", tick_seconds=30, reconcile_timeout_seconds=timeout_s
    )
    return Context(
        settings=settings,
        kube=kube,  # type: ignore[arg-type]
        metrics=OperatorMetrics.create(),
        latest_snapshot=lambda: None,
        clock=lambda: NOW,
    )


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def md(name: str, uid: str, created: str, variant: str = "fp8") -> dict[str, Any]:
    doc = md_serving_fp8(3)
    doc["metadata"].update(name=name, uid=uid, creationTimestamp=created)
    for v in doc["spec"]["variants"]:
        if v["name"] == "fp8":
            v["name"] = variant
    doc["status"]["activeVariant"] = variant
    doc["status"]["rollout"]["active"] = variant
    return doc


def run(ctx: Context, *names: str) -> None:
    async def go() -> None:
        await sync_cache(ctx, ["llm"])
        for name in names:
            await ctx.reconcile_key(("llm", name))

    asyncio.run(go())


def test_a_foreign_service_of_the_same_name_is_left_alone() -> None:
    kube = Kube([md_serving_fp8(3)], {"Service/assistant": ()})
    ctx = context(kube)
    run(ctx, "assistant", "assistant")
    assert kube.applied == []
    (status,) = kube.statuses  # the second reconcile had nothing new to say
    cond = condition(status, "ResourceConflict")
    assert (cond["status"], cond["reason"]) == ("True", "NotOwned")
    assert "Service/assistant exists and is not owned" in cond["message"]
    assert kube.events.count("ResourceConflict") == 1
    # the Service is removed: the next tick applies and clears the condition
    del kube.foreign["Service/assistant"]
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert "Service/assistant" in {object_key(m) for m in kube.applied}
    cleared = condition(kube.statuses[-1], "ResourceConflict")
    assert (cleared["status"], cleared["reason"]) == ("False", "NoConflict")


def test_an_object_of_another_modeldeployment_is_a_name_collision() -> None:
    other = (("ModelDeployment", "assistant-x", "u-2"),)
    kube = Kube([md_serving_fp8(3)], {"Deployment/assistant-fp8": other})
    ctx = context(kube)
    run(ctx, "assistant")
    assert kube.applied == []
    cond = condition(kube.statuses[-1], "ResourceConflict")
    assert cond["reason"] == "NameCollision" and cond["message"].startswith("name collision")


def test_colliding_names_in_the_cache_stop_the_later_one_only() -> None:
    first = md("a", "u-a", "2026-01-01T00:00:00Z", variant="b-c")
    later = md("a-b", "u-ab", "2026-01-02T00:00:00Z", variant="c")
    kube = Kube([later, first], {})
    ctx = context(kube)
    run(ctx, "a-b", "a")
    applied_by = {m["metadata"]["labels"]["paretoscale.io/modeldeployment"] for m in kube.applied}
    assert applied_by == {"a"}
    cond = condition(kube.by_name["a-b"][-1], "ResourceConflict")
    assert cond["reason"] == "NameCollision" and "a-b-c" in cond["message"]
    assert all(c["type"] != "ResourceConflict" for c in kube.by_name["a"][-1]["conditions"])


def test_resources_that_cannot_render_are_a_condition_not_a_traceback() -> None:
    bad = md_serving_fp8(3)
    bad["spec"]["template"] = {"resources": {"limits": {"nvidia.com/gpu": "x"}}}
    kube = Kube([bad], {})
    ctx = context(kube)
    run(ctx, "assistant")
    assert kube.applied == []
    cond = condition(kube.statuses[-1], "SpecValid")
    assert cond["status"] == "False" and "template.resources" in cond["message"]


def test_a_reconcile_that_raises_is_reported_once_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = md("good", "u-g", "2026-01-01T00:00:00Z")
    broken = md("broken", "u-b", "2026-01-01T00:00:00Z")
    real = reconcile_module.plan_changes

    def plan_changes(owner: Any, *args: Any) -> Any:
        if owner.name == "broken":
            raise ValueError("boom")
        return real(owner, *args)

    monkeypatch.setattr(reconcile_module, "plan_changes", plan_changes)
    kube = Kube([broken, good], {})
    ctx = context(kube)

    async def go() -> None:
        await sync_cache(ctx, ["llm"])
        await tick_once(ctx)
        await tick_once(ctx)

    asyncio.run(go())
    assert {m["metadata"]["name"] for m in kube.applied} >= {"good-fp8", "good"}
    cond = condition(kube.by_name["broken"][-1], "ReconcileError")
    assert (cond["status"], cond["reason"]) == ("True", "ReconcileFailed")
    assert "ValueError: boom" in cond["message"]
    assert kube.events.count("ReconcileError") == 1  # the second tick's is rate-limited
    assert len(kube.by_name["broken"]) == 1


def test_a_hung_reconcile_times_out_on_its_own_object() -> None:
    hung = md("hung", "u-h", "2026-01-01T00:00:00Z")
    good = md("good", "u-g", "2026-01-01T00:00:00Z")
    kube = Kube([hung, good], {})
    kube.hang.add("hung")
    ctx = context(kube, timeout_s=0.2)

    async def go() -> None:
        await sync_cache(ctx, ["llm"])
        try:
            await tick_once(ctx)
        finally:
            kube.release.set()  # let the blocked thread end before the loop closes

    asyncio.run(go())
    assert {m["metadata"]["name"] for m in kube.applied} >= {"good-fp8", "good"}
    cond = condition(kube.by_name["hung"][-1], "ReconcileError")
    assert (cond["status"], cond["reason"]) == ("True", "TimedOut")
    assert "ReconcileError" in kube.events
    assert "ReconcileError" not in [
        c["type"] for c in kube.by_name["good"][-1]["conditions"] if c["status"] == "True"
    ]
