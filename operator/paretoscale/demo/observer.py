"""What the demo reads from the cluster for each Sample (I/O): the ModelDeployment's status,
its Deployments' pods, and from Prometheus the simulators' latency histogram and requests.

Prometheus totals since the start use max_over_time over every series (a counter's last
value, as each simulator starts from zero), summed: pods that went away still count, and
nothing is extrapolated as increase() would.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from paretoscale.api.gpus import GPUS
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.demo.cluster import GROUP, PLURAL, VERSION
from paretoscale.demo.sample import Sample
from paretoscale.demo.schedule import DemoDay

MD_LABEL = "paretoscale.io/modeldeployment"
VARIANT_LABEL = "paretoscale.io/variant"
GPU_PRODUCT = "label_nvidia_com_gpu_product"


class Observer:
    """Reads one ModelDeployment's world; `sample()` puts it together."""

    def __init__(
        self, api: Any, prometheus_url: str, namespace: str, name: str, spec: ModelDeploymentSpec
    ) -> None:
        from kubernetes import client

        self.custom: Any = client.CustomObjectsApi(api)
        self.apps: Any = client.AppsV1Api(api)
        self.prom = prometheus_url.rstrip("/")
        self.namespace, self.name = namespace, name
        self.gpu_of = {v.name: (v.gpu.type, v.gpu.count) for v in spec.variants}
        self.since = time.monotonic()
        self._selector = f'namespace="{namespace}",modeldeployment="{name}"'

    def status(self) -> dict[str, Any]:
        md = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return dict(md.get("status") or {})

    def pods(self) -> tuple[dict[str, int], dict[str, int]]:
        """(pods that exist, pods Ready) per variant, from the variants' Deployments."""
        existing: dict[str, int] = {}
        ready: dict[str, int] = {}
        deployments = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"{MD_LABEL}={self.name}"
        ).items
        for d in deployments:
            variant = (d.metadata.labels or {}).get(VARIANT_LABEL)
            if variant and d.status is not None:
                existing[variant] = int(d.status.replicas or 0)
                ready[variant] = int(d.status.ready_replicas or 0)
        return existing, ready

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prom}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {body}")
        return list(body["data"]["result"])

    def _since(self) -> str:
        return f"{math.ceil(time.monotonic() - self.since) + 30}s"

    def e2e_buckets(self) -> dict[float, float]:
        """Cumulative e2e latency histogram of every simulator since the start."""
        rows = self.query(
            "sum by (le) (max_over_time(vllm:e2e_request_latency_seconds_bucket"
            f"{{{self._selector}}}[{self._since()}]))"
        )
        return {float(r["metric"]["le"]): float(r["value"][1]) for r in rows}

    def requests_by_variant(self) -> dict[str, float]:
        """Requests each variant finished since the start."""
        rows = self.query(
            "sum by (variant) (max_over_time(vllm:request_success_total"
            f"{{{self._selector}}}[{self._since()}]))"
        )
        return {r["metric"].get("variant", "?"): float(r["value"][1]) for r in rows}

    def gpu_price(self, gpu_type: str) -> float | None:
        """USD per GPU-hour of a GPU type as the operator's default query reads it."""
        rows = self.query(
            f"avg by ({GPU_PRODUCT}) (node_gpu_hourly_cost * on (node) "
            f"group_left ({GPU_PRODUCT}) kube_node_labels)"
        )
        product = GPUS[gpu_type].label_value
        for r in rows:
            if r["metric"].get(GPU_PRODUCT) == product:
                return float(r["value"][1])
        return None

    def sample(self, wall_s: float, day: DemoDay, prices: Mapping[str, float]) -> Sample:
        """Everything a Sample holds, now; `prices` are the ones published now. A histogram
        Prometheus could not give is left empty (the next sample carries it)."""
        status = self.status()
        existing, ready = self.pods()
        known = {v: n for v, n in existing.items() if v in self.gpu_of}
        gpus = sum(n * self.gpu_of[v][1] for v, n in known.items())
        usd = sum(n * self.gpu_of[v][1] * prices.get(self.gpu_of[v][0], 0.0)
                  for v, n in known.items())  # fmt: skip
        try:
            buckets = self.e2e_buckets()
        except (OSError, RuntimeError, ValueError, KeyError):
            buckets = {}
        decision = status.get("decision") or {}
        observed = (status.get("observed") or {}).get("requestsPerSecond")
        rollout = status.get("rollout") or {}
        phase = str(status.get("phase") or rollout.get("phase") or "-")
        summary = ""
        if decision:
            summary = f"{decision['variant']} x {decision['replicas']} ({decision['action']})"
        return Sample(
            wall_s=wall_s,
            day_s=day.day_s(wall_s),
            offered_rps=day.rate_at(min(wall_s, day.day_wall_s - 1e-9)),
            observed_rps=float(observed) if observed is not None else None,
            phase=phase,
            active=status.get("activeVariant"),
            target=rollout.get("target") if phase != "Stable" else None,
            replicas=existing,
            ready=ready,
            gpus=gpus,
            usd_per_hour=usd,
            prices=dict(prices),
            decision=summary,
            reason="; ".join(decision.get("reasons") or []),
            e2e_buckets=buckets,
        )
