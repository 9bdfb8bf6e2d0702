"""controller/inventory.py: the GPUs the cluster's nodes and pods leave a ModelDeployment."""

from __future__ import annotations

import itertools
from typing import Any

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.controller.inventory import Inventory

SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": "m",
        "value": {"perQualityPoint": "0.40"},
        "slo": {"latency": "e2e", "percentile": 95, "seconds": 8},
        "gpus": [
            {"type": "H100", "usdPerHour": "6.88", "available": 16},
            {"type": "L40S", "usdPerHour": "1.86", "available": 8},
        ],
        "variants": [
            {"name": "a", "quality": 0.8, "gpu": {"type": "H100"}, "vllm": {"model": "m"},
             "profile": [{"requestsPerSecond": 1, "latencySeconds": 1}]},
        ],
    }
)  # fmt: skip


def node(name: str, product: str, gpus: str, ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product}},
        "spec": spec,
        "status": {
            "allocatable": {"nvidia.com/gpu": gpus, "cpu": "64"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


SERIAL = itertools.count()


def pod(node_name: str, gpus: int, md: str = "other", phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": f"p{next(SERIAL)}", "namespace": "ns",
                     "labels": {"paretoscale.io/modeldeployment": md}},
        "spec": {"nodeName": node_name,
                 "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }  # fmt: skip


def gpus_available(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, int]:
    inv = Inventory(synced=True)
    for n in nodes:
        inv.put_node(n, deleted=False)
    for p in pods:
        inv.put_pod(p, deleted=False)
    out = inv.available(SPEC, ("ns", "me"))
    assert out is not None
    return out


H100 = "NVIDIA-H100-80GB-HBM3"


def test_allocatable_of_ready_nodes_of_the_type_minus_other_pods() -> None:
    nodes = [
        node("h1", H100, "8"),
        node("h2", H100, "8"),
        node("h3", H100, "8", ready=False),  # not Ready: its GPUs do not count
        node("h4", H100, "8", unschedulable=True),  # cordoned
        node("l1", "NVIDIA-L40S", "4"),
    ]
    pods = [
        pod("h1", 3),  # another workload: taken
        pod("h2", 2, md="me"),  # this ModelDeployment's own replica: still its to hold
        pod("h2", 1, phase="Succeeded"),  # finished: holds nothing
        pod("h3", 4),  # on a node that does not count
        pod("l1", 4),
    ]
    assert gpus_available(nodes, pods) == {"H100": 13, "L40S": 0}


def test_a_type_no_node_carries_is_zero_and_requests_never_go_below_zero() -> None:
    assert gpus_available([node("h1", H100, "2")], [pod("h1", 4)]) == {
        "H100": 0,
        "L40S": 0,
    }


def test_own_replicas_on_a_cordoned_node_are_still_held() -> None:
    """Cordoning stops new pods, not running ones: what this ModelDeployment runs there it
    still holds; another workload's pods there free nothing."""
    nodes = [node("h1", H100, "8", unschedulable=True), node("h2", H100, "8")]
    pods = [pod("h1", 4, md="me"), pod("h1", 4), pod("h2", 8)]
    assert gpus_available(nodes, pods)["H100"] == 4


def test_changes_and_deletions_are_seen_and_nothing_before_the_listing() -> None:
    inv = Inventory()
    assert inv.available(SPEC, ("ns", "me")) is None  # not listed yet: unknown, not 0
    inv.synced = True
    inv.put_node(node("h1", H100, "8"), deleted=False)
    hog = pod("h1", 6)
    inv.put_pod(hog, deleted=False)
    assert inv.available(SPEC, ("ns", "me")) == {"H100": 2, "L40S": 0}
    inv.put_pod({**hog, "status": {"phase": "Succeeded"}}, deleted=False)
    assert inv.available(SPEC, ("ns", "me")) == {"H100": 8, "L40S": 0}
    inv.put_pod(hog, deleted=False)
    inv.put_pod(hog, deleted=True)
    inv.put_node(node("h1", H100, "8"), deleted=True)
    assert inv.available(SPEC, ("ns", "me")) == {"H100": 0, "L40S": 0}
    cpu_only = {**pod("h1", 0), "spec": {"nodeName": "h1", "containers": [{}]}}
    inv.put_pod(cpu_only, deleted=False)
    assert not inv.pods  # a pod without GPUs is not kept
