"""The decision plans with the GPUs the cluster has free (controller/inventory.py), on the
local control plane: real nodes (KWOK), a real scheduler placing another workload's pods,
the operator as a subprocess watching nodes and pods.

Another workload takes every free H100 GPU: the assistant's decision moves to its L40S
variant, where without that workload it takes an H100 one. Then the workload goes, and the
decision comes back to H100 with no change to the ModelDeployment.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .operator_harness import Cluster, OperatorProcess, example, wait

pytestmark = pytest.mark.e2e

H100_LABEL = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
L40S_VARIANT = "w4a16-l40s"


@pytest.fixture(scope="module")
def crds_installed(cluster: Any) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for cmd in (
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(repo / "crds")],
        ["kubectl", "wait", "--for=condition=Established",
         "crd/modeldeployments.paretoscale.io", "--timeout=60s"],
    ):  # fmt: skip
        subprocess.run(cmd, check=True, env=env, capture_output=True)


def free_h100(core: Any) -> int:
    """H100 GPUs of Ready, schedulable nodes that no placed, unfinished pod requests (the
    whole cluster: earlier tests' pods may hold some)."""
    nodes = {
        n.metadata.name: int(n.status.allocatable.get("nvidia.com/gpu", "0"))
        for n in core.list_node(label_selector="nvidia.com/gpu.product=" + H100_LABEL[
            "nvidia.com/gpu.product"]).items
        if not n.spec.unschedulable
        and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    }  # fmt: skip
    used = 0
    for p in core.list_pod_for_all_namespaces().items:
        if p.spec.node_name in nodes and p.status.phase not in ("Succeeded", "Failed"):
            for c in p.spec.containers:
                used += int(((c.resources and c.resources.requests) or {}).get("nvidia.com/gpu", 0))
    return sum(nodes.values()) - used


def hog(namespace: str, replicas: int) -> dict[str, Any]:
    """Another team's workload: one H100 GPU per pod, no paretoscale labels."""
    labels = {"app": "hog"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hog", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": H100_LABEL,
                    "containers": [{
                        "name": "train", "image": "registry.example/train:1",
                        "resources": {"requests": {"nvidia.com/gpu": "1"},
                                      "limits": {"nvidia.com/gpu": "1"}},
                    }],
                },
            },
        },
    }  # fmt: skip


def decided(kube: Cluster) -> str | None:
    return (kube.status("assistant").get("decision") or {}).get("variant")


def test_the_decision_plans_with_the_gpus_other_workloads_leave(
    cluster: Any, k8s_client: Any, namespace: str, crds_installed: None, tmp_path: Path
) -> None:
    kube = Cluster(k8s_client, namespace)
    free = free_h100(kube.core)
    assert free > 0, "the local control plane has no free H100 GPU to take"
    kube.apps.create_namespaced_deployment(namespace, hog(namespace, free))

    def placed() -> bool:
        pods = kube.core.list_namespaced_pod(namespace, label_selector="app=hog").items
        return sum(1 for p in pods if p.spec.node_name) == free

    wait(placed, 120, f"{free} hog pods placed on H100 nodes")
    assert free_h100(kube.core) == 0

    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        doc = example("assistant-llama-8b.yaml", namespace, mode="Recommend")
        doc["spec"]["traffic"]["expectedRequestsPerSecond"] = 12
        kube.apply(doc)
        wait(lambda: decided(kube) == L40S_VARIANT, 60, f"a decision for {L40S_VARIANT}", op)
        frontier = {r["name"]: r for r in kube.status("assistant")["frontier"]}
        assert frontier[L40S_VARIANT]["replicas"] >= 1

        kube.apps.delete_namespaced_deployment("hog", namespace)
        wait(lambda: decided(kube) not in (None, L40S_VARIANT), 90, "a decision for H100", op)
        variants = {v["name"]: v["gpu"]["type"] for v in doc["spec"]["variants"]}
        assert variants[decided(kube) or ""] == "H100"
    finally:
        op.stop()
        with contextlib.suppress(Exception):  # already gone
            kube.apps.delete_namespaced_deployment("hog", namespace)
