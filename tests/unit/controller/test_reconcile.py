"""The shell around tick(), with a fake Kubernetes API: nothing acts before the cache has
listed; after a restart with Prometheus down and the serving Deployment missing, it is
recreated at the replicas recorded in status (never 0); objects are compared with what the
cache observes, so a steady tick makes no call and a deleted Service comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from paretoscale.actuate.plan import object_key, observed_of
from paretoscale.config import OperatorSettings
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context
from paretoscale.controller.sync import sync_cache

ROOT = Path(__file__).parents[3]
NOW = 1_000_000.0


class FakeKube:
    """Records writes; the listing shows `workloads` (kind -> bodies) and `mds`."""

    def __init__(self, mds: list[dict[str, Any]], workloads: dict[str, list[dict[str, Any]]]):
        self.mds, self.workloads = mds, workloads
        self.applied: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.events: list[str] = []

    def list_modeldeployments(self, namespace: str | None, keep: Any = dict) -> list[Any]:
        return [keep(m) for m in self.mds]

    def list_workloads(self, kind: str, namespace: str | None, selector: str) -> list[Any]:
        assert selector == "app.kubernetes.io/managed-by=paretoscale"
        return self.workloads.get(kind, [])

    def apply(self, manifest: Mapping[str, Any]) -> None:
        self.applied.append(dict(manifest))

    def owners(self, kind: str, namespace: str, name: str) -> Any:
        """Objects not in the listing do not exist."""
        return None

    def delete_deployment(self, namespace: str, name: str) -> None:
        raise AssertionError(f"unexpected delete of {name}")

    def post_event(self, obj: Any, type_: str, reason: str, message: str, at: Any = None) -> None:
        self.events.append(reason)

    def replace_status(
        self, namespace: str, name: str, status: Mapping[str, Any], version: str | None
    ) -> str:
        self.statuses.append(dict(status))
        return f"written-{len(self.statuses)}"

    def pending_pods(self, namespace: str, selector: str) -> list[tuple[str, str]]:
        return []

    def read_modeldeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((m for m in self.mds if m["metadata"]["name"] == name), None)


def md_serving_fp8(replicas: int) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "assistant-llama-8b.yaml").read_text())
    doc["metadata"].update(uid="u-1", generation=1)
    doc["status"] = {
        "phase": "Stable",
        "activeVariant": "fp8",
        "replicas": replicas,
        "variantSince": "2001-09-09T01:00:00Z",
        "rollout": {"phase": "Stable", "active": "fp8"},
    }
    return dict(doc)


def context(kube: FakeKube) -> Context:
    settings = OperatorSettings(prometheus_url="http://127.0.0.1:1", tick_seconds=30)
    return Context(
        settings=settings,
        kube=kube,  # type: ignore[arg-type]
        metrics=OperatorMetrics.create(),
        latest_snapshot=lambda: None,  # Prometheus down: no snapshot
        clock=lambda: NOW,
    )


def deployments(applied: list[dict[str, Any]]) -> dict[str, int]:
    return {
        m["metadata"]["name"]: m["spec"]["replicas"] for m in applied if m["kind"] == "Deployment"
    }


def test_nothing_acts_before_the_cache_has_listed() -> None:
    kube = FakeKube([md_serving_fp8(3)], {})
    ctx = context(kube)
    ctx.cache.put_md(kube.mds[0])  # a watch event delivered the ModelDeployment first
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert kube.applied == [] and kube.statuses == []


def test_restart_with_prometheus_down_and_the_deployment_missing_keeps_its_replicas() -> None:
    kube = FakeKube([md_serving_fp8(3)], {})  # the serving Deployment is gone
    ctx = context(kube)

    async def run() -> None:
        await sync_cache(ctx, ["llm"])
        await ctx.reconcile_key(("llm", "assistant"))

    asyncio.run(run())
    assert deployments(kube.applied) == {"assistant-fp8": 3}
    assert "Scaled" not in kube.events


def test_steady_cluster_gets_no_call_and_a_deleted_service_comes_back() -> None:
    kube = FakeKube([md_serving_fp8(3)], {})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    first = list(kube.applied)
    assert {object_key(m) for m in first} == {
        "Deployment/assistant-fp8",
        "PodDisruptionBudget/assistant-fp8",
        "Service/assistant",
    }
    for m in first:  # the watch reports them as applied
        ctx.cache.put_workload(m["kind"], m, deleted=False)
    kube.applied.clear()
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert kube.applied == []
    svc = next(m for m in first if m["kind"] == "Service")
    ctx.cache.put_workload("Service", svc, deleted=True)  # kubectl delete service
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert [object_key(m) for m in kube.applied] == ["Service/assistant"]


def test_the_listing_fills_facts_and_observed_objects() -> None:
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
        "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"readyReplicas": 1},
    }
    kube = FakeKube([md_serving_fp8(2)], {"Deployment": [dep]})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    assert ctx.cache.synced
    key = ("llm", "assistant")
    assert ctx.cache.facts(key)["fp8"].desired == 2 and ctx.cache.facts(key)["fp8"].ready == 1
    assert ctx.cache.observed(key) == {"Deployment/assistant-fp8": observed_of(dep)}


def test_a_modeldeployment_being_deleted_gets_nothing_applied() -> None:
    """Foreground deletion removes the Deployments first: re-creating them would race the
    garbage collector."""
    md = md_serving_fp8(3)
    md["metadata"]["deletionTimestamp"] = "2001-09-09T01:46:40Z"
    kube = FakeKube([md], {})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert kube.applied == [] and kube.statuses == []


def md_on_acme() -> dict[str, Any]:
    """The assistant example with its L40S variant moved to acme-x1, a made-up GPU type."""
    doc = yaml.safe_load(
        (ROOT / "examples" / "assistant-llama-8b.yaml").read_text().replace("L40S", "acme-x1")
    )
    doc["metadata"].update(uid="u-2", generation=1)
    doc["spec"]["variants"] = [v for v in doc["spec"]["variants"] if v["gpu"]["type"] != "H100"]
    doc["spec"]["gpus"] = [g for g in doc["spec"]["gpus"] if g["type"] != "H100"]
    return dict(doc)


def test_a_gpu_type_outside_the_mapping_is_an_invalid_spec_and_inside_it_is_rendered() -> None:
    from paretoscale.api.accelerators import gpu_types

    kube = FakeKube([md_on_acme()], {})
    ctx = context(kube)
    asyncio.run(sync_cache(ctx, ["llm"]))
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    assert kube.applied == [] and kube.events == ["InvalidSpec"]
    (valid,) = [c for c in kube.statuses[-1]["conditions"] if c["type"] == "SpecValid"]
    assert valid["status"] == "False"
    assert "unknown GPU type 'acme-x1'" in valid["message"]
    assert "--gpu-types-file" in valid["message"]

    acme = {
        "labelKey": "cloud.google.com/gke-accelerator",
        "labelValue": "acme-x1",
        "resource": "acme.com/gpu",
        "memoryGiB": 48,
        "memoryBandwidthTBps": 0.9,
        "bf16Tflops": 360,
        "computeCapability": "8.9",
    }
    kube = FakeKube([md_on_acme()], {})
    ctx = context(kube)
    ctx.gpu_types = gpu_types({"gpuTypes": {"acme-x1": acme}}, "types.yaml", "gke")
    asyncio.run(sync_cache(ctx, ["llm"]))
    asyncio.run(ctx.reconcile_key(("llm", "assistant")))
    (dep,) = [m for m in kube.applied if m["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "acme-x1"}
    assert pod["containers"][0]["resources"]["requests"]["acme.com/gpu"] == 1
