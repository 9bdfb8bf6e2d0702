"""The status write path of a reconcile, against a fake API that keeps one object with a
resourceVersion and logs every call in order: the intent (status) is written before the apply
it leads to; a write is conditional on the resourceVersion and a conflict re-reads, never
overwrites; a failing status write applies nothing and posts nothing, so events and switches
count once when it recovers; a field that became empty is gone from the stored status;
pods the scheduler cannot place are named in a condition."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from paretoscale.actuate.kube import StatusConflict
from paretoscale.config import OperatorSettings
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context
from paretoscale.controller.sync import sync_cache
from tests.unit.controller.test_reconcile import NOW, FakeKube, md_serving_fp8

KEY = ("llm", "assistant")
FAST = {"minDwellSeconds": 0, "switchMargin": 0.05, "readyTimeoutSeconds": 600}


class StoredKube(FakeKube):
    """One stored ModelDeployment: status writes replace its status at a resourceVersion."""

    def __init__(self, md: dict[str, Any]) -> None:
        md["metadata"]["resourceVersion"] = "1"
        super().__init__([md], {})
        self.calls: list[str] = []
        self.fail_status: int = 0  # status writes that fail with HTTP 500 before one works
        self.pending: list[tuple[str, str]] = []

    @property
    def stored(self) -> dict[str, Any]:
        return self.mds[0]

    def bump(self) -> None:
        meta = self.stored["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def apply(self, manifest: Mapping[str, Any]) -> None:
        self.calls.append(f"apply {manifest['kind']}/{manifest['metadata']['name']}")
        super().apply(manifest)

    def replace_status(
        self, namespace: str, name: str, status: Mapping[str, Any], version: str | None
    ) -> str:
        if self.fail_status > 0:
            self.fail_status -= 1
            raise client.ApiException(status=500, reason="Internal Server Error")
        if version != self.stored["metadata"]["resourceVersion"]:
            raise StatusConflict(f"{version} is not {self.stored['metadata']['resourceVersion']}")
        self.calls.append(f"status {(status.get('rollout') or {}).get('phase')}")
        self.stored["status"] = copy.deepcopy(dict(status))
        self.bump()
        super().replace_status(namespace, name, status, version)
        return str(self.stored["metadata"]["resourceVersion"])

    def list_modeldeployments(self, namespace: str | None, keep: Any = dict) -> list[Any]:
        return copy.deepcopy(self.mds)

    def read_modeldeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("read")
        return copy.deepcopy(self.stored)

    def pending_pods(self, namespace: str, selector: str) -> list[tuple[str, str]]:
        assert selector == "paretoscale.io/modeldeployment=assistant"
        return list(self.pending)


def switching_md(rate: float = 2) -> dict[str, Any]:
    """Stable on fp8 for long; at `rate` 2 req/s w4a16-l40s is better: a rollout starts."""
    md = md_serving_fp8(1)
    md["status"]["variantSince"] = "1970-01-01T00:00:00Z"
    md["spec"]["rollout"] = FAST
    md["spec"]["traffic"]["expectedRequestsPerSecond"] = rate
    return md


def started(kube: StoredKube) -> Context:
    """The operator on priors (no Prometheus), its cache listed."""
    ctx = Context(
        settings=OperatorSettings(tick_seconds=30),
        kube=kube,  # type: ignore[arg-type]
        metrics=OperatorMetrics.create(),
        latest_snapshot=lambda: None,
        clock=lambda: NOW,
    )
    asyncio.run(sync_cache(ctx, ["llm"]))
    return ctx


def reconcile(ctx: Context, kube: StoredKube) -> None:
    asyncio.run(ctx.reconcile_key(KEY))


def test_the_intent_is_written_before_the_apply_it_leads_to() -> None:
    kube = StoredKube(switching_md())
    ctx = started(kube)
    reconcile(ctx, kube)
    assert kube.calls[0] == "status Preparing"
    assert "apply Deployment/assistant-w4a16-l40s" in kube.calls[1:]
    assert kube.stored["status"]["rollout"]["target"] == "w4a16-l40s"


def test_writes_are_conditional_and_a_conflict_rereads_instead_of_overwriting() -> None:
    kube = StoredKube(switching_md())
    ctx = started(kube)
    reconcile(ctx, kube)  # written at "1"; the watch has not shown the write yet
    assert kube.stored["metadata"]["resourceVersion"] == "2"
    kube.calls.clear()
    kube.stored["status"]["rollout"]["message"] = "someone else"
    kube.bump()  # a write we did not make: our next write must not land on it
    ctx.clock = lambda: NOW + 1
    kube.stored["spec"]["traffic"]["expectedRequestsPerSecond"] = 3  # a new decision to write
    ctx.cache.mds[KEY]["spec"]["traffic"]["expectedRequestsPerSecond"] = 3
    reconcile(ctx, kube)
    assert kube.calls == ["read"], "a conflict applies nothing and re-reads"
    assert kube.stored["status"]["rollout"]["message"] == "someone else"
    assert ctx.cache.mds[KEY]["metadata"]["resourceVersion"] == "3"
    reconcile(ctx, kube)  # decides again from what is stored, at its resourceVersion
    assert kube.calls[1].startswith("status ")


def test_status_failing_for_ticks_applies_nothing_then_counts_events_once() -> None:
    kube = StoredKube(switching_md())
    kube.fail_status = 1_000  # each reconcile tries the step write, then the error condition
    ctx = started(kube)
    for i in range(3):
        ctx.clock = lambda i=i: NOW + i
        reconcile(ctx, kube)
    assert kube.applied == [] and "RolloutStarted" not in kube.events
    assert kube.events.count("ReconcileError") == 1  # rate-limited
    kube.fail_status = 0
    for i in range(3, 6):
        ctx.clock = lambda i=i: NOW + i
        reconcile(ctx, kube)
    assert kube.events.count("RolloutStarted") == 1
    assert kube.stored["status"]["rollout"]["phase"] == "Preparing"


def test_switch_is_counted_once_when_its_write_fails_first() -> None:
    md = switching_md()
    md["status"]["rollout"] = {
        "phase": "Draining",
        "active": "fp8",
        "target": "w4a16-l40s",
        "targetReplicas": 1,
        "startedAt": "1970-01-01T00:00:00Z",
        "phaseSince": "1970-01-01T00:00:00Z",
    }
    kube = StoredKube(md)
    ctx = started(kube)
    kube.fail_status = 2  # the step's write and the error condition's write fail
    reconcile(ctx, kube)
    for i in range(1, 4):
        ctx.clock = lambda i=i: NOW + i
        reconcile(ctx, kube)
    switches = ctx.metrics.switches.labels(
        namespace="llm", modeldeployment="assistant", outcome="completed"
    )
    assert switches._value.get() == 1
    assert kube.events.count("Switched") == 1
    assert [s["outcome"] for s in kube.stored["status"]["lastSwitches"]] == ["completed"]


def test_a_field_that_became_empty_is_gone_from_the_stored_status() -> None:
    md = md_serving_fp8(3)
    md["status"]["scaleDown"] = {"since": "1970-01-12T13:00:00Z", "replicas": 1}
    md["spec"]["traffic"]["expectedRequestsPerSecond"] = 40  # needs more than 3: no scale-down
    kube = StoredKube(md)
    ctx = started(kube)
    reconcile(ctx, kube)
    assert kube.statuses and "scaleDown" not in kube.stored["status"]


def test_pods_the_scheduler_cannot_place_are_named_and_cleared() -> None:
    dep = {
        "kind": "Deployment",
        "metadata": {
            "name": "assistant-fp8",
            "namespace": "llm",
            "labels": {
                "paretoscale.io/modeldeployment": "assistant",
                "paretoscale.io/variant": "fp8",
            },
        },
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 1},
    }
    kube = StoredKube(md_serving_fp8(3))
    kube.workloads = {"Deployment": [dep]}
    kube.pending = [("assistant-fp8-b", "0/8 nodes are available: 8 Insufficient nvidia.com/gpu.")]
    ctx = started(kube)
    reconcile(ctx, kube)
    cond = next(c for c in kube.stored["status"]["conditions"] if c["type"] == "CapacityPending")
    assert (cond["status"], cond["reason"]) == ("True", "Unschedulable")
    assert "assistant-fp8-b" in cond["message"] and "nvidia.com/gpu" in cond["message"]
    assert kube.stored["status"]["replicas"] == 3 and kube.stored["status"]["phase"] == "Stable"
    ready = {**dep, "status": {"readyReplicas": 3}}
    ctx.cache.put_workload("Deployment", ready, deleted=False)
    ctx.clock = lambda: NOW + 1
    reconcile(ctx, kube)
    cond = next(c for c in kube.stored["status"]["conditions"] if c["type"] == "CapacityPending")
    assert (cond["status"], cond["reason"]) == ("False", "AllScheduled")
