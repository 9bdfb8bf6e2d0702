"""Any accelerator, end to end: a GPU type declared only in the operator's GPU type mapping,
on KWOK nodes labelled the GKE way, gets its pods scheduled there.

The nodes are added for the test (as hack/lib/nodes.sh adds the default ones: annotation
kwok.x-k8s.io/node=fake, the GPU count as capacity and allocatable) and deleted after it.
The operator runs as `paretoscale run --gpu-types-preset gke --gpu-types-file F`; the
scheduler, not the test, decides where the pods go.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .operator_harness import Cluster, OperatorProcess, example, wait

pytestmark = pytest.mark.e2e

GKE_LABEL = "cloud.google.com/gke-accelerator"
GPUS_PER_NODE = 8
ACME = {
    "labelKey": GKE_LABEL,
    "labelValue": "acme-x1",
    "resource": "acme.com/gpu",
    "memoryGiB": 96,
    "memoryBandwidthTBps": 2.4,
    "bf16Tflops": 400,
    "precisions": ["bf16", "fp16", "int8", "int4"],
}


@pytest.fixture(scope="module")
def crds_installed(cluster: Any) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for cmd in (
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(repo / "crds")],
        [
            "kubectl",
            "wait",
            "--for=condition=Established",
            "crd/modeldeployments.paretoscale.io",
            "--timeout=60s",
        ],
    ):
        subprocess.run(cmd, check=True, env=env, capture_output=True)


def _node(name: str, labels: dict[str, str], resource: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                **labels,
            },
        },
        "spec": {},
        "status": {
            "capacity": {"cpu": "96", "memory": "1024Gi", "pods": "110", resource: "8"},
            "allocatable": {"cpu": "96", "memory": "1024Gi", "pods": "110", resource: "8"},
        },
    }


@pytest.fixture
def gke_nodes(k8s_client: Any) -> Iterator[dict[str, set[str]]]:
    """Two KWOK nodes per GPU type, labelled as GKE labels nodes: two of the made-up acme-x1
    (resource acme.com/gpu), two H200 (nvidia-h200-141gb, nvidia.com/gpu). Ready before the
    test; deleted after it."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_client)
    tag = uuid.uuid4().hex[:6]
    kinds = {
        "acme-x1": ({GKE_LABEL: "acme-x1"}, "acme.com/gpu"),
        "H200": ({GKE_LABEL: "nvidia-h200-141gb"}, "nvidia.com/gpu"),
    }
    names: dict[str, set[str]] = {}
    try:
        for gpu_type, (labels, resource) in kinds.items():
            names[gpu_type] = set()
            for i in range(2):
                name = f"gke-{gpu_type.lower()}-{tag}-{i}"
                core.create_node(_node(name, labels, resource))
                names[gpu_type].add(name)
                # The API server drops status on create; set it as kubectl replace --subresource.
                core.patch_node_status(name, {"status": _node(name, labels, resource)["status"]})

        def ready() -> bool:
            nodes = [core.read_node(n) for s in names.values() for n in s]
            return all(
                any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                for n in nodes
            )

        wait(ready, 60, "the GKE-labelled KWOK nodes to be Ready")
        yield names
    finally:
        for s in names.values():
            for n in s:
                core.delete_node(n)


@pytest.fixture
def gpu_types_file(tmp_path: Path) -> Path:
    path = tmp_path / "gpu-types.yaml"
    path.write_text(yaml.safe_dump({"gpuTypes": {"acme-x1": ACME}}))
    return path


def _model(ns: str, gpu_type: str, usd: str) -> dict[str, Any]:
    """The assistant example with one variant, on `gpu_type`."""
    doc = example("assistant-llama-8b.yaml", ns)
    variant = dict(doc["spec"]["variants"][0])
    variant["gpu"] = {"type": gpu_type, "count": 1}
    doc["spec"]["variants"] = [variant]
    doc["spec"]["gpus"] = [{"type": gpu_type, "usdPerHour": usd, "available": 16}]
    doc["spec"]["traffic"] = {
        "minReplicas": 2,
        "maxReplicas": 4,
        "targetUtilization": 0.8,
        "expectedRequestsPerSecond": 1,
    }
    return doc


def _pods_on(kube: Cluster, nodes: set[str], count: int) -> list[Any] | None:
    pods = kube.core.list_namespaced_pod(kube.ns, label_selector="paretoscale.io/variant").items
    placed = [p for p in pods if p.spec.node_name]
    return placed if len(placed) >= count else None


@pytest.mark.parametrize("gpu_type", ["acme-x1", "H200"])
def test_pods_of_a_mapped_gpu_type_schedule_on_its_gke_labelled_nodes(
    cluster: Any,
    k8s_client: Any,
    namespace: str,
    crds_installed: None,
    gke_nodes: dict[str, set[str]],
    gpu_types_file: Path,
    tmp_path: Path,
    gpu_type: str,
) -> None:
    kube = Cluster(k8s_client, namespace)
    op = OperatorProcess(
        cluster.kubeconfig,
        namespace,
        tmp_path,
        "--tick-seconds",
        "1",
        "--gpu-types-preset",
        "gke",
        "--gpu-types-file",
        str(gpu_types_file),
    ).start()
    try:
        kube.apply(_model(namespace, gpu_type, "3.10"))
        pods = wait(lambda: _pods_on(kube, gke_nodes[gpu_type], 2), 90, "2 placed pods", op)
        for pod in pods:
            assert pod.spec.node_name in gke_nodes[gpu_type], (pod.metadata.name, pod.spec)
        dep = next(iter(kube.deployments().values()))
        pod_spec = dep.spec.template.spec
        resource = ACME["resource"] if gpu_type == "acme-x1" else "nvidia.com/gpu"
        label = "acme-x1" if gpu_type == "acme-x1" else "nvidia-h200-141gb"
        assert pod_spec.node_selector == {GKE_LABEL: label}
        assert pod_spec.containers[0].resources.requests[resource] == "1"
        assert kube.condition("assistant", "SpecValid").get("status") != "False"
    finally:
        op.stop()


def test_a_gpu_type_outside_the_mapping_is_reported_on_the_object(
    cluster: Any, k8s_client: Any, namespace: str, crds_installed: None, tmp_path: Path
) -> None:
    """Without the file, acme-x1 is unknown: the API server accepts the object (the CRD does
    not fix the GPU types), the operator reports it and creates nothing."""
    kube = Cluster(k8s_client, namespace)
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        kube.apply(_model(namespace, "acme-x1", "3.10"))

        def reported() -> dict[str, Any] | None:
            for c in kube.status("assistant").get("conditions", []):
                if c["type"] == "SpecValid" and c["status"] == "False":
                    return dict(c)
            return None

        cond = wait(reported, 60, "condition SpecValid False", op)
        assert "unknown GPU type 'acme-x1'" in cond["message"]
        assert "--gpu-types-file" in cond["message"] and "gpuTypes" in cond["message"]
        assert kube.deployments() == {}
    finally:
        op.stop()
