"""Fault injection on verification (issue #11, faults 5 and 6): verification is fail-closed.

On the real control plane with the real Prometheus of `hack/cluster`, vLLM simulators behind
the KWOK pods (the bridge), real HTTP load through the Service, and the operator as a process:

- fault 5a, the latency query fails while the target is verified (a proxy in front of the real
  Prometheus answers 503 to the e2e histogram query): no switch; Verifying times out and rolls
  back, saying the latency is missing;
- fault 5b, the target answers HTTP 500 to half its requests (the simulator's
  `--sim-error-rate`, passed as the variant's vllm.extraArgs): no switch; rolled back at once
  on its error ratio;
- fault 6, Prometheus answers but has no vLLM series for the ModelDeployment (its simulators
  are not scraped) while a target is verified: Verifying times out and rolls back with the
  reason in the status and the Degraded condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from paretoscale.sim.bridge import Bridge, free_loopback_port
from paretoscale.sim.loadgen import ServiceTargets, constant_rate_arrivals, plan_poisson, run_load

from . import test_operator as scenarios
from .operator_harness import Cluster, OperatorProcess, wait
from .test_operator import FAST, assistant, stable_on
from .test_operator_live import MANIFEST

# The fixtures of the operator scenarios: CRDs installed; `kube`, the namespace with a bridge
# whose simulators no Prometheus scrapes.
crds_installed = scenarios.crds_installed
kube = scenarios.kube

pytestmark = pytest.mark.e2e

LATENCY_METRIC = "vllm:e2e_request_latency_seconds_bucket"
# Verifying lasts at least VERIFY_S; without a successful analysis it rolls back at DEADLINE_S.
VERIFY_S, DEADLINE_S = 5, 45
ROLLOUT = {**FAST, "verifySeconds": VERIFY_S, "verifyTimeoutSeconds": DEADLINE_S}


class PrometheusFaults:
    """An HTTP proxy to the real Prometheus that, while `fail_latency` is set, answers 503
    to any query of the latency histogram (what a Prometheus overloaded by that query, or a
    rule that broke it, answers): every other query gets Prometheus's own answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail_latency = threading.Event()
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy.forward(self, self.rfile.read(length))

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        asked = urllib.parse.unquote_plus(h.path + (body or b"").decode())
        if self.fail_latency.is_set() and LATENCY_METRIC in asked:
            self.failed += 1
            self.reply(h, 503, b'{"status":"error","errorType":"unavailable","error":"injected"}')
            return
        headers = {"Content-Type": h.headers.get("Content-Type", "")} if body else {}
        req = urllib.request.Request(self.upstream + h.path, body, headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                self.reply(h, r.status, r.read())
        except urllib.error.HTTPError as e:
            self.reply(h, e.code, e.read())

    @staticmethod
    def reply(h: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Load:
    """Poisson requests at `rate` req/s through the Service (the bridge's endpoints), in a
    thread of its own until stop()."""

    def __init__(self, cluster: Any, namespace: str, state_dir: str, rate: float) -> None:
        rng = np.random.default_rng(11)
        self.plan = plan_poisson(constant_rate_arrivals(rate, 900.0, rng), (200, 20), rng)
        self.targets = ServiceTargets(cluster.kubeconfig, namespace, "assistant", state_dir)
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self.task = asyncio.current_task()
            await run_load(self.plan, self.targets, stream=False, timeout_s=30.0)

        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(main())

    def stop(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(15)


class Selectors:
    """Every Service selector seen, polled in the background: proves what the Service did
    between two looks of the test."""

    def __init__(self, kube: Cluster) -> None:
        self.kube, self.seen = kube, [kube.selector("assistant")]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(0.3):
            self.seen.append(self.kube.selector("assistant"))

    def variants(self) -> set[str | None]:
        self.done.set()
        self.thread.join(5)
        return {(s or {}).get("paretoscale.io/variant") for s in self.seen}


def manifest(namespace: str, h100_usd: str, fp8_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """The live scenario's two variants (profiles measured on the simulator) with quality
    worth little, so the cheaper one serves: the L40S variant at an H100 price of $12.29,
    FP8 on H100 at $0.50. `fp8_args`: extra `vllm serve` arguments of the FP8 variant."""
    doc: dict[str, Any] = yaml.safe_load(MANIFEST)
    doc["metadata"]["namespace"] = namespace
    spec = doc["spec"]
    spec["value"] = {"perQualityPoint": "0.10", "calibrationFactor": 0.30}
    spec["gpus"][0]["usdPerHour"] = h100_usd
    spec["rollout"] = dict(ROLLOUT)
    fp8 = next(v for v in spec["variants"] if v["name"] == "fp8")
    fp8["vllm"]["extraArgs"] = list(fp8_args)
    return doc


@pytest.fixture
def scraped(
    cluster: Any, namespace: str, k8s_client: Any, crds_installed: None, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """The namespace with simulators the cluster's Prometheus scrapes, and the operator
    reading that Prometheus through the fault proxy."""
    if not (cluster.prometheus_url and cluster.file_sd_dir):
        pytest.skip("this cluster has no Prometheus with a file_sd folder (hack/cluster up has)")
    proxy = PrometheusFaults(cluster.prometheus_url)
    op = OperatorProcess(
        cluster.kubeconfig, namespace, tmp_path,
        "--prometheus-url", proxy.url, "--tick-seconds", "2",
        "--rate-window", "30s", "--stale-after-seconds", "20",
    )  # fmt: skip
    try:
        with Bridge(cluster.kubeconfig, Path(cluster.file_sd_dir), namespace=namespace,
                    state_dir=tmp_path, file_sd_name=f"sims-{namespace}.json"):  # fmt: skip
            op.start()
            yield {"kube": Cluster(k8s_client, namespace), "op": op, "proxy": proxy,
                   "state_dir": str(tmp_path)}  # fmt: skip
    finally:
        op.stop()
        proxy.close()


def rolled_back_from_fp8(kube: Cluster, op: OperatorProcess, within_s: float) -> dict[str, Any]:
    """Wait for the rollout to fp8 to end; it must have rolled back: the status as it is."""
    status = wait(
        lambda: (
            (s := kube.status("assistant")).get("lastSwitches") and s["phase"] == "Stable" and s
        ),
        within_s,
        "the rollout to fp8 to end",
        op,
    )
    last = status["lastSwitches"][0]
    assert (last["from"], last["to"], last["outcome"]) == ("w4a16-l40s", "fp8", "rolledBack")
    assert status["activeVariant"] == "w4a16-l40s"
    return dict(status)


def serving_l40s_under_load(live: dict[str, Any], cluster: Any, fp8_args: tuple[str, ...]) -> Load:
    """First rollout to the L40S variant, then 3 req/s through the Service until the
    operator reads them live; the caller stops the load."""
    kube, op = live["kube"], live["op"]
    kube.apply(manifest(kube.ns, "12.29", fp8_args))
    wait(lambda: stable_on(kube, "w4a16-l40s"), 90, "first rollout to w4a16-l40s", op)
    load = Load(cluster, kube.ns, live["state_dir"], 3.0)
    wait(
        lambda: (kube.status("assistant").get("observed") or {}).get("basis") == "live",
        90,
        "live metrics",
        op,
    )
    return load


def test_latency_query_failing_during_verification_rolls_back(
    scraped: dict[str, Any], cluster: Any
) -> None:
    """Invariant: a target whose latency cannot be read is never switched to; Verifying
    ends at its deadline with a rollback whose reason says the latency is missing."""
    kube, op, proxy = scraped["kube"], scraped["op"], scraped["proxy"]
    load = serving_l40s_under_load(scraped, cluster, ())
    try:
        kube.apply(manifest(kube.ns, "0.50"))  # FP8 on H100 is now the cheaper variant
        wait(lambda: kube.status("assistant").get("rollout", {}).get("target") == "fp8", 30,
             "rollout to fp8 started", op)  # fmt: skip
        proxy.fail_latency.set()
        selectors = Selectors(kube)
        status = rolled_back_from_fp8(kube, op, DEADLINE_S + 90)
        assert "fp8" not in selectors.variants(), "the Service moved to fp8"
    finally:
        load.stop()
    reason = status["lastSwitches"][0]["reason"]
    assert "verification timed out" in reason and "latency missing" in reason, reason
    assert proxy.failed > 0
    degraded = kube.condition("assistant", "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolledBack"
    # the status records the rollback before the scale-down it leads to
    wait(lambda: kube.replicas().get("assistant-fp8") == 0, 10, "fp8 scaled to 0", op)
    assert not any(r == "Switched" and "-> fp8" in m for _, r, m in kube.events())


def test_target_answering_500_rolls_back(scraped: dict[str, Any], cluster: Any) -> None:
    """Invariant: a target that fails more than 5% of its requests with HTTP 500 is never
    switched to; it is rolled back as soon as the failures show, before the deadline."""
    kube, op = scraped["kube"], scraped["op"]
    load = serving_l40s_under_load(scraped, cluster, ("--sim-error-rate=0.5",))
    try:
        kube.apply(manifest(kube.ns, "0.50", ("--sim-error-rate=0.5",)))
        wait(lambda: kube.status("assistant").get("rollout", {}).get("target") == "fp8", 30,
             "rollout to fp8 started", op)  # fmt: skip
        selectors = Selectors(kube)
        status = rolled_back_from_fp8(kube, op, DEADLINE_S + 30)
        assert "fp8" not in selectors.variants(), "the Service moved to fp8"
    finally:
        load.stop()
    reason = status["lastSwitches"][0]["reason"]
    assert "verification failed" in reason and "requests failed" in reason, reason
    # the status records the rollback before the scale-down it leads to
    wait(lambda: kube.replicas().get("assistant-fp8") == 0, 10, "fp8 scaled to 0", op)
    assert kube.selector("assistant")["paretoscale.io/variant"] == "w4a16-l40s"


def test_prometheus_without_vllm_series_times_out_verification(
    kube: Cluster, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """Invariant: when Prometheus answers but has no vLLM series for the ModelDeployment,
    Verifying does not wait forever: at its deadline it rolls back, and the status and the
    Degraded condition say why (no metrics)."""
    if not cluster.prometheus_url:
        pytest.skip("this cluster has no Prometheus")
    rollout = {**FAST, "verifySeconds": 20, "verifyTimeoutSeconds": 30}
    # On priors (no Prometheus): Stable on fp8, then a lower load starts a rollout.
    first = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1")
    first.start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", first)
        kube.apply(assistant(kube.ns, 2, rollout=rollout))
        wait(lambda: kube.status("assistant").get("phase") == "Verifying", 30, "Verifying", first)
    finally:
        first.kill()
    # Restarted on the cluster's Prometheus, which scrapes no simulator of this namespace.
    op = OperatorProcess(
        cluster.kubeconfig, namespace, tmp_path,
        "--tick-seconds", "1", "--prometheus-url", cluster.prometheus_url,
    )  # fmt: skip
    op.start()
    try:
        selectors = Selectors(kube)
        status = wait(
            lambda: (s := kube.status("assistant")).get("phase") == "Stable" and s,
            60,
            "the rollout to end",
            op,
        )
        assert "w4a16-l40s" not in selectors.variants(), "the Service moved to the target"
        # the status records the rollback before the scale-down it leads to
        wait(lambda: kube.replicas().get("assistant-w4a16-l40s") == 0, 10, "target at 0", op)
    finally:
        op.stop()
    last = status["lastSwitches"][0]
    assert (last["from"], last["to"], last["outcome"]) == ("fp8", "w4a16-l40s", "rolledBack")
    assert "verification timed out after 30s: no metrics" in last["reason"], last["reason"]
    assert "no vllm:request_success_total series" in last["reason"]
    assert status["activeVariant"] == "fp8"
    degraded = kube.condition("assistant", "Degraded")
    assert degraded["reason"] == "RolledBack" and "no metrics" in degraded["message"]
    metrics = kube.condition("assistant", "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("False", "MetricsUnavailable")
    assert kube.replicas()["assistant-w4a16-l40s"] == 0
