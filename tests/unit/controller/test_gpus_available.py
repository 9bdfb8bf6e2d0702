"""controller/observing.py's gpus_available: what the cluster's nodes and pods leave."""

from __future__ import annotations

from typing import Any

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.controller.observing import gpus_available

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


def pod(node_name: str, gpus: int, md: str = "other", phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"paretoscale.io/modeldeployment": md}},
        "spec": {"nodeName": node_name,
                 "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }  # fmt: skip


def mine(p: Any) -> bool:
    return bool(p["metadata"]["labels"].get("paretoscale.io/modeldeployment") == "me")


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
    assert gpus_available(SPEC, nodes, pods, mine) == {"H100": 13, "L40S": 0}


def test_a_type_no_node_carries_is_zero_and_requests_never_go_below_zero() -> None:
    assert gpus_available(SPEC, [node("h1", H100, "2")], [pod("h1", 4)], mine) == {
        "H100": 0,
        "L40S": 0,
    }
