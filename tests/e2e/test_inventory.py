"""The decision plans with the GPUs the cluster has free (controller/inventory.py), on the
local control plane: real nodes (KWOK), the operator as a subprocess watching nodes and pods.

The H100 nodes stop taking pods: the assistant's decision moves to its L40S variant, where
before it took an H100 one; they take pods again, and the decision comes back to H100 with
no change to the ModelDeployment.
"""

from __future__ import annotations

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


def h100_nodes(core: Any) -> list[str]:
    label = ",".join(f"{k}={v}" for k, v in H100_LABEL.items())
    return [n.metadata.name for n in core.list_node(label_selector=label).items]


def cordon(core: Any, nodes: list[str], on: bool) -> None:
    for name in nodes:
        core.patch_node(name, {"spec": {"unschedulable": on}})


def decided(kube: Cluster) -> str | None:
    return (kube.status("assistant").get("decision") or {}).get("variant")


def test_the_decision_plans_with_the_gpus_the_cluster_has_free(
    cluster: Any, k8s_client: Any, namespace: str, crds_installed: None, tmp_path: Path
) -> None:
    """Every H100 node is cordoned (no new pod lands there): the decision moves to the L40S
    variant; uncordoned, it comes back to H100. The nodes are what the operator reads here:
    other workloads' pods in other namespaces are out of a namespace-scoped operator's sight
    (the unit tests of controller/inventory.py cover what pods hold)."""
    kube = Cluster(k8s_client, namespace)
    nodes = h100_nodes(kube.core)
    assert nodes, "the local control plane has no H100 node"
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        doc = example("assistant-llama-8b.yaml", namespace, mode="Recommend")
        doc["spec"]["traffic"]["expectedRequestsPerSecond"] = 12
        kube.apply(doc)
        variants = {v["name"]: v["gpu"]["type"] for v in doc["spec"]["variants"]}
        wait(lambda: variants.get(decided(kube) or "") == "H100", 60, "a decision for H100", op)

        cordon(kube.core, nodes, True)
        wait(lambda: decided(kube) == L40S_VARIANT, 60, f"a decision for {L40S_VARIANT}", op)
        observed = kube.status("assistant")["observed"]
        assert observed["gpusAvailable"]["H100"] == 0, observed
        frontier = {r["name"]: r for r in kube.status("assistant")["frontier"]}
        assert frontier[L40S_VARIANT]["replicas"] >= 1

        cordon(kube.core, nodes, False)
        wait(lambda: variants.get(decided(kube) or "") == "H100", 90, "back on H100", op)
    finally:
        op.stop()
        cordon(kube.core, nodes, False)
