"""The data plane on the local control plane: a Deployment whose pods run `vllm serve` on
KWOK fake H100 nodes, the bridge giving each Running pod a simulator on loopback, Prometheus
scraping them through file_sd, and the load generator sending traffic through the Service.

Asserts that what Prometheus computes from the simulators' vLLM metrics,
sum(rate(vllm:request_success_total[1m])), matches the rate the load generator achieved
within 5%, and that every pod got a share of the traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paretoscale.sim.bridge import Bridge
from paretoscale.sim.loadgen import LoadReport, PlannedRequest, ServiceTargets, run_load

pytestmark = pytest.mark.e2e

H100 = "NVIDIA-H100-80GB-HBM3"
RATE_RPS = 4.0
LOAD_S = 75.0  # 60 s of steady state for a 1-minute rate window, plus ramp
LABELS = {"paretoscale.io/modeldeployment": "llama", "paretoscale.io/variant": "bf16"}


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": H100},
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": "vllm",
                        "image": "vllm/vllm-openai:v0.11.0",
                        "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct",
                                    "--dtype", "bfloat16", "--port", "8000"],
                        "ports": [{"containerPort": 8000, "name": "http"}],
                        "env": [{"name": "PARETOSCALE_SIM_STARTUP_DELAY_S", "value": "1"}],
                        "resources": {"limits": {"nvidia.com/gpu": "1"},
                                      "requests": {"nvidia.com/gpu": "1"}},
                    }],
                },
            },
        },
    }  # fmt: skip


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": LABELS, "ports": [{"port": 8000, "targetPort": "http"}]},
    }


def _prom_query(url: str, query: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": query} | ({"time": f"{at:.3f}"} if at is not None else {})
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode(params)}",
                                timeout=10) as r:  # fmt: skip
        body = json.load(r)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.fixture
def bridge(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[Bridge]:
    if not cluster.file_sd_dir or not cluster.prometheus_url:
        pytest.skip("the cluster runs no Prometheus with a file_sd directory")
    with Bridge(cluster.kubeconfig, cluster.file_sd_dir, namespace=namespace,
                state_dir=tmp_path / "bridge", file_sd_name=f"sims-{namespace}.json") as b:  # fmt: skip
        yield b


def test_prometheus_sees_the_rate_the_load_generator_achieved(
    cluster: Any, k8s_client: Any, namespace: str, bridge: Bridge, tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:  # fmt: skip
    from kubernetes import client

    apps, core = client.AppsV1Api(k8s_client), client.CoreV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, _deployment("llama-bf16"))
    core.create_namespaced_service(namespace, _service("llama"))

    def running_pods() -> list[str]:
        pods = core.list_namespaced_pod(namespace, label_selector="paretoscale.io/variant=bf16")
        names = [p.metadata.name for p in pods.items if p.status.phase == "Running"]
        return names if len(names) == 2 else []

    pods = wait_for(running_pods, timeout_s=120, what="2 Running pods")

    def healthy() -> bool:
        endpoints = bridge.endpoints()
        if sorted(k.split("/", 1)[1] for k in endpoints) != sorted(pods):
            return False
        for ep in endpoints.values():
            try:
                with urllib.request.urlopen(f"http://{ep}/health", timeout=1):
                    pass
            except OSError:
                return False
        return True

    wait_for(healthy, timeout_s=60, what="a healthy simulator per pod")
    prom = cluster.prometheus_url
    wait_for(
        lambda: len(_prom_query(prom, f'up{{namespace="{namespace}"}} == 1')) == 2,
        timeout_s=90, what="Prometheus scraping both simulators",
    )  # fmt: skip

    plan = [PlannedRequest(i / RATE_RPS, 200, 40) for i in range(int(LOAD_S * RATE_RPS))]
    targets = ServiceTargets(cluster.kubeconfig, namespace, "llama", str(tmp_path / "bridge"))
    start = time.time()
    report: LoadReport = asyncio.run(run_load(plan, targets, concurrency=256))
    end = time.time()
    print(f"\n  load: {report.ok} ok, {report.errors} errors, {report.achieved_rps:.3f} req/s, "
          f"e2e p50 {report.e2e_p50_s:.2f} s, per target {report.per_target}")  # fmt: skip
    # Evaluate the 1-minute rate at the end of the load, once Prometheus has scraped past it.
    at = min(end, start + LOAD_S) - 2.0
    query = f'sum(rate(vllm:request_success_total{{namespace="{namespace}"}}[1m]))'
    time.sleep(15)
    result = _prom_query(prom, query, at=at)
    assert result, f"no samples for {query}"
    prom_rps = float(result[0]["value"][1])
    print(f"  Prometheus {query} = {prom_rps:.3f} req/s; load generator {report.achieved_rps:.3f}")
    assert prom_rps == pytest.approx(report.achieved_rps, rel=0.05)
    assert report.errors == 0, report.error_kinds
    assert len(report.per_target) == 2 and min(report.per_target.values()) > 0.3 * report.ok
    labels = _prom_query(prom, f'vllm:num_requests_running{{namespace="{namespace}"}}')
    assert {r["metric"]["variant"] for r in labels} == {"bf16"}
    assert {r["metric"]["modeldeployment"] for r in labels} == {"llama"}
    assert {r["metric"]["model_name"] for r in labels} == {"meta-llama/Llama-3.1-8B-Instruct"}
