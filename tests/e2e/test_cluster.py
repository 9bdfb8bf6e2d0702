"""The local control plane does what the operator relies on.

Fake GPU nodes are Ready; the scheduler places GPU pods by product label and
counts `nvidia.com/gpu`; Deployments become Available; owner references are
garbage-collected; Prometheus picks up file_sd targets.
"""

from __future__ import annotations

import json
import pathlib
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

H100 = "NVIDIA-H100-80GB-HBM3"
GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"


def _client() -> Any:
    from kubernetes import client

    return client


def _gpu_deployment(name: str, *, replicas: int, gpus: int, product: str, owner: Any = None) -> Any:
    client = _client()
    labels = {"app": name}
    owner_references = None
    if owner is not None:
        owner_references = [
            client.V1OwnerReference(
                api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
            )
        ]
    container = client.V1Container(
        name="vllm",
        image="vllm/vllm-openai:v0.11.0",
        args=["--model", "meta-llama/Llama-3.1-8B-Instruct"],
        resources=client.V1ResourceRequirements(limits={GPU: str(gpus)}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels, owner_references=owner_references),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], node_selector={PRODUCT: product}),
            ),
        ),
    )


def _available(apps: Any, namespace: str, name: str, replicas: int) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    conditions = {c.type: c.status for c in deployment.status.conditions or []}
    return (
        conditions.get("Available") == "True"
        and (deployment.status.available_replicas or 0) == replicas
    )


def _gpu_nodes(core: Any, product: str) -> list[Any]:
    return [
        node
        for node in core.list_node(label_selector=f"{PRODUCT}={product}").items
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        and int((node.status.allocatable or {}).get(GPU, "0")) > 0
    ]


def test_server_reports_the_built_version(cluster, k8s_client):
    if not cluster.owned:
        pytest.skip(
            "the cluster was given through PARETOSCALE_E2E_KUBECONFIG; its version is not ours to check"
        )
    version = _client().VersionApi(k8s_client).get_code()
    assert (version.major, version.minor) == ("1", "34"), version
    assert version.git_version.startswith("v1.34."), version


def test_fake_gpu_nodes_are_ready(cluster, k8s_client):
    core = _client().CoreV1Api(k8s_client)
    products = {
        product: _gpu_nodes(core, product)
        for product in (H100, "NVIDIA-L40S", "NVIDIA-A100-SXM4-80GB")
    }
    assert products[H100], (
        "no Ready node labelled nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3 with GPUs"
    )
    if cluster.owned:
        # hack/cluster's default node set (hack/lib/nodes.sh).
        assert {product: len(nodes) for product, nodes in products.items()} == {
            H100: 4,
            "NVIDIA-L40S": 2,
            "NVIDIA-A100-SXM4-80GB": 2,
        }
        for nodes in products.values():
            for node in nodes:
                assert node.status.capacity[GPU] == "8"
                assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
                assert node.metadata.labels["nvidia.com/gpu.count"] == "8"


def test_gpu_deployment_is_scheduled_on_a_matching_node(k8s_client, namespace, wait_for):
    client = _client()
    apps, core = client.AppsV1Api(k8s_client), client.CoreV1Api(k8s_client)
    apps.create_namespaced_deployment(
        namespace, _gpu_deployment("h100-one", replicas=2, gpus=1, product=H100)
    )

    wait_for(
        lambda: _available(apps, namespace, "h100-one", 2), what="deployment h100-one Available"
    )

    h100_nodes = {node.metadata.name for node in _gpu_nodes(core, H100)}
    pods = core.list_namespaced_pod(namespace, label_selector="app=h100-one").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name in h100_nodes, (pod.metadata.name, pod.spec.node_name)
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip, f"pod {pod.metadata.name} has no IP"


def test_scheduler_counts_gpus(k8s_client, namespace, wait_for):
    """One whole-node pod per H100 node fits; one more stays Pending for lack of GPUs."""
    client = _client()
    apps, core = client.AppsV1Api(k8s_client), client.CoreV1Api(k8s_client)
    nodes = _gpu_nodes(core, H100)
    gpus_per_node = {int(node.status.allocatable[GPU]) for node in nodes}
    if len(gpus_per_node) != 1:
        pytest.skip(f"H100 nodes differ in GPU count: {gpus_per_node}")
    replicas = len(nodes) + 1
    apps.create_namespaced_deployment(
        namespace,
        _gpu_deployment("h100-full", replicas=replicas, gpus=gpus_per_node.pop(), product=H100),
    )

    def pending_for_gpus() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=h100-full").items
        running = [pod for pod in pods if pod.status.phase == "Running"]
        unschedulable = [
            pod
            for pod in pods
            for c in pod.status.conditions or []
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        ]
        return pods if len(running) == len(nodes) and len(unschedulable) == 1 else None

    pods = wait_for(pending_for_gpus, what=f"{len(nodes)} pods Running and 1 Unschedulable")
    assert len({pod.spec.node_name for pod in pods if pod.spec.node_name}) == len(nodes)
    message = next(
        c.message
        for pod in pods
        for c in pod.status.conditions or []
        if c.reason == "Unschedulable"
    )
    assert f"Insufficient {GPU}" in message, message


def test_owner_deletion_garbage_collects_the_deployment(k8s_client, namespace, wait_for):
    client = _client()
    apps, core = client.AppsV1Api(k8s_client), client.CoreV1Api(k8s_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"k": "v"})
    )
    apps.create_namespaced_deployment(
        namespace, _gpu_deployment("owned", replicas=1, gpus=1, product=H100, owner=owner)
    )
    wait_for(lambda: _available(apps, namespace, "owned", 1), what="deployment owned Available")

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def collected() -> bool:
        return (
            not apps.list_namespaced_deployment(namespace).items
            and not apps.list_namespaced_replica_set(namespace).items
            and not core.list_namespaced_pod(namespace).items
        )

    wait_for(collected, timeout_s=90, what="deployment, replicasets and pods garbage-collected")


def _prometheus_query(url: str, query: str) -> list[dict[str, Any]]:
    full = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(full, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_file_sd_targets(cluster, wait_for):
    if not (cluster.prometheus_url and cluster.file_sd_dir):
        pytest.skip(
            "no Prometheus with a file_sd dir in this cluster (PROMETHEUS_URL, PARETOSCALE_FILE_SD_DIR)"
        )
    run = uuid.uuid4().hex[:8]
    target = urllib.parse.urlparse(cluster.prometheus_url).netloc  # Prometheus scrapes itself.
    path = pathlib.Path(cluster.file_sd_dir) / f"e2e-{run}.json"
    path.write_text(json.dumps([{"targets": [target], "labels": {"e2e_run": run}}]))
    try:
        result = wait_for(
            lambda: _prometheus_query(cluster.prometheus_url, f'up{{e2e_run="{run}"}} == 1'),
            timeout_s=60,
            what="Prometheus to scrape the file_sd target",
        )
        assert result[0]["metric"]["job"] == "file_sd"
    finally:
        path.unlink()
