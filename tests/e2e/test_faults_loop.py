"""Fault injection on the control loop (issue #11), on the real control plane: the operator
runs as a process whose API traffic goes through `ApiProxy` (operator_harness.py), a real
HTTP proxy in front of the real kube-apiserver that fails, stalls or watches requests.

Each test states its invariant:
- fault 1: SIGKILL right after an apply (or a status write) in every phase of a rollout ->
  after the restart only the active and the target variant have replicas, and the rollout
  completes;
- fault 2: status writes answered 500 for several ticks -> nothing is applied ahead of the
  status that records it, then the rollout resumes; its events and its switch count once;
- fault 7: the leader's API writes stall while a standby runs -> no write of the old leader
  reaches the API server once the standby holds the Lease (the proxy's log of forwarded
  writes); a wall-clock step is covered at unit level (tests/unit/controller/
  test_leadership.py: a real clock step cannot be made here);
- fault 11: a scale-down intent cleared, then a restart -> the stale intent does not come
  back and the stabilization window starts again;
- fault 14: the GPU pool exhausted mid-scale-up -> condition CapacityPending names the
  Pending pods; no switch, the serving variant keeps its replicas.
"""

from __future__ import annotations

import calendar
import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import test_operator as scenarios
from .operator_harness import ApiProxy, Cluster, OperatorProcess, wait
from .test_faults import only_active_and_target_run, running_variants
from .test_operator import FAST, assistant, stable_on

crds_installed = scenarios.crds_installed
kube = scenarios.kube

pytestmark = pytest.mark.e2e

TICK = "1"


@pytest.fixture
def proxy(cluster: Any, tmp_path: Path) -> Iterator[ApiProxy]:
    with ApiProxy(cluster.kubeconfig, tmp_path, "operator") as p:
        yield p


def operator_via(proxy: ApiProxy, namespace: str, tmp_path: Path, *extra: str) -> OperatorProcess:
    return OperatorProcess(proxy.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK, *extra)


def reasons(kube: Cluster, reason: str) -> list[str]:
    return [m for _, r, m in kube.events() if r == reason]


def metric(op: OperatorProcess, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics").read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def is_apply(method: str, path: str) -> bool:
    return method == "PATCH" and any(
        f"/{k}/" in path for k in ("deployments", "services", "poddisruptionbudgets")
    )


# ------------------------------------------------------------------------------ fault 2 ---


def test_status_500s_for_ticks_then_the_rollout_resumes_counted_once(
    kube: Cluster, proxy: ApiProxy, namespace: str, tmp_path: Path
) -> None:
    """Invariant: while the status cannot be written nothing is applied for the rollout it
    would record; once it can, the rollout completes with one RolloutStarted, one Switched
    event, one lastSwitches entry and a switch counter of 1."""
    op = operator_via(proxy, namespace, tmp_path).start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        proxy.fail_status = 5  # the next 5 status writes fail with 500
        kube.apply(assistant(kube.ns, 2))  # w4a16-l40s is now better: a rollout
        wait(lambda: proxy.fail_status == 0, 60, "5 status writes refused", op)
        assert "assistant-w4a16-l40s" not in kube.deployments(), "applied before its intent"
        status = wait(lambda: stable_on(kube, "w4a16-l40s"), 90, "Stable on w4a16-l40s", op)
        time.sleep(3)  # a few more ticks: nothing repeats
        assert [(s["to"], s["outcome"]) for s in status["lastSwitches"]] == [
            ("w4a16-l40s", "completed"),
            ("fp8", "completed"),  # the first rollout
        ]
        assert len(reasons(kube, "RolloutStarted")) == 2  # the first rollout (to fp8), this one
        assert len(reasons(kube, "Switched")) == 2
        assert metric(op, "paretoscale_switches_total", outcome="completed") == 2
        assert only_active_and_target_run(kube)
    finally:
        op.stop()


# ------------------------------------------------------------------------------ fault 1 ---


class Killer:
    """SIGKILL the operator right after its first write of `kind` ("apply" or "status")
    that follows its status write of rollout phase `phase` (the proxy calls this after
    forwarding the write, before the operator sees the answer)."""

    def __init__(self, op: OperatorProcess, phase: str, kind: str) -> None:
        self.op, self.phase, self.kind = op, phase, kind
        self.armed = False  # the status of `phase` was written
        self.fired: str | None = None

    def __call__(self, method: str, path: str, body: bytes) -> None:
        if self.fired is not None:
            return
        status_write = path.endswith("/status") and "modeldeployments" in path
        if self.armed and (
            (self.kind == "apply" and is_apply(method, path))
            or (self.kind == "status" and status_write)
        ):
            self._kill(f"{method} {path}")
            return
        if status_write:
            doc = json.loads(body or b"{}")
            rollout = (doc.get("status") or {}).get("rollout") or {}
            phase = rollout.get("phase")
            done = phase == "Stable" and (doc.get("status") or {}).get("activeVariant") == (
                "w4a16-l40s"
            )
            if (phase == self.phase and self.phase != "Stable") or (
                self.phase == "Stable" and done
            ):
                self.armed = True
                if self.kind == "status":
                    self._kill(f"{method} {path} ({phase})")

    def _kill(self, what: str) -> None:
        self.fired = what
        if self.op.proc is not None:
            self.op.proc.send_signal(signal.SIGKILL)


@pytest.mark.parametrize(
    ("phase", "kind"),
    [
        ("Preparing", "apply"),  # the target's Deployment created
        ("Verifying", "apply"),  # the Service selects both
        ("Switching", "apply"),  # the Service moved to the target
        ("Draining", "status"),  # the drain recorded, nothing applied yet
        ("Stable", "apply"),  # the switch recorded; the old variant's scale-down applied
    ],
)
def test_sigkill_after_a_write_in_every_phase_completes_without_strays(
    kube: Cluster, proxy: ApiProxy, namespace: str, tmp_path: Path, phase: str, kind: str
) -> None:
    """Invariant: after a SIGKILL right after an apply (or a status write) in `phase`, the
    restarted operator leaves replicas only on the active and the target variant and the
    rollout to w4a16-l40s completes."""
    op = operator_via(proxy, namespace, tmp_path).start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        killer = Killer(op, phase, kind)
        proxy.after_write = killer
        kube.apply(assistant(kube.ns, 2, rollout={**FAST, "verifySeconds": 3}))
        wait(lambda: op.proc is not None and op.proc.poll() is not None, 90, "the kill", op)
        assert killer.fired is not None
        proxy.after_write = None
        op.start()
        wait(lambda: only_active_and_target_run(kube), 30, "only active and target run", op)
        status = wait(lambda: stable_on(kube, "w4a16-l40s"), 90, "Stable on w4a16-l40s", op)
        wait(lambda: running_variants(kube) == {"w4a16-l40s"}, 30, "fp8 scaled to 0", op)
        assert status["lastSwitches"][0]["outcome"] == "completed"
        for _ in range(3):
            assert only_active_and_target_run(kube)
            time.sleep(1)
    finally:
        op.stop()


# ------------------------------------------------------------------------------ fault 7 ---


def lease_holder(k8s_client: Any, namespace: str, name: str) -> str | None:
    from kubernetes import client

    try:
        lease = client.CoordinationV1Api(k8s_client).read_namespaced_lease(name, namespace)
    except client.ApiException:
        return None
    return lease.spec.holder_identity if lease.spec else None


def test_a_stalled_leader_makes_no_write_after_the_standby_takes_over(
    kube: Cluster, k8s_client: Any, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """Invariant: once the standby holds the Lease, no write of the old leader reaches the
    API server, also after its stall ends; the standby then acts."""
    lease = ["--leader-election", "--lease-name", "faults", "--lease-namespace", namespace]
    timings = [
        "--lease-duration-seconds",
        "6",
        "--lease-renew-deadline-seconds",
        "4",
        "--lease-retry-seconds",
        "1",
        "--api-timeout-seconds",
        "2",
    ]
    with (
        ApiProxy(cluster.kubeconfig, tmp_path, "a") as pa,
        ApiProxy(cluster.kubeconfig, tmp_path, "b") as pb,
    ):
        a = OperatorProcess(
            pa.kubeconfig, namespace, tmp_path / "a", "--tick-seconds", TICK, *lease, *timings
        )
        b = OperatorProcess(
            pb.kubeconfig, namespace, tmp_path / "b", "--tick-seconds", TICK, *lease, *timings
        )
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        try:
            a.start()
            assert a.proc is not None
            wait(
                lambda: f"-{a.proc.pid}-" in (lease_holder(k8s_client, namespace, "faults") or ""),
                60,
                "a holds the Lease",
                a,
            )
            b.start()
            kube.apply(assistant(kube.ns, 12))
            wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8 (a leads)", a)
            assert pa.forwarded_writes("/status") and not pb.forwarded_writes("/status")
            pa.stall_writes = True  # a's writes, its Lease renewals too, hang
            stalled_at, before = time.monotonic(), len(pa.forwarded_writes())
            kube.apply(assistant(kube.ns, 30))  # work for the leader: scale fp8 to 3
            assert b.proc is not None
            wait(
                lambda: f"-{b.proc.pid}-" in (lease_holder(k8s_client, namespace, "faults") or ""),
                60,
                "b holds the Lease",
                b,
            )
            took_over = min(t for t, _, path, code in pb.forwarded_writes("/leases/") if code < 300)
            time.sleep(2)
            pa.stall_writes = False  # a's API is back: it must still write nothing
            wait(lambda: kube.replicas().get("assistant-fp8") == 3, 60, "b scaled fp8 to 3", b)
            time.sleep(3)
            late = [w for w in pa.forwarded_writes() if w[0] >= took_over]
            print(
                f"stall -> b holds the Lease: {took_over - stalled_at:.1f}s; a's writes "
                f"forwarded after the stall: {len(pa.forwarded_writes()) - before}"
            )
            assert late == [], f"the old leader wrote after the takeover: {late}"
            wait(lambda: a.proc.poll() is not None, 30, "the old leader exits", a)
            assert "stepping down" in a.log(), a.log()
        finally:
            a.stop()
            b.stop()


# ----------------------------------------------------------------------------- fault 11 ---


def only_fp8(ns: str, rate: float, window_s: int) -> dict[str, Any]:
    doc = assistant(ns, rate)
    doc["spec"]["variants"] = [v for v in doc["spec"]["variants"] if v["name"] == "fp8"]
    doc["spec"]["traffic"]["scaleDownStabilizationSeconds"] = window_s
    return doc


def test_a_cleared_scale_down_intent_stays_cleared_after_a_restart(
    kube: Cluster, proxy: ApiProxy, namespace: str, tmp_path: Path
) -> None:
    """Invariant: a scale-down intent that was cleared is gone from the stored status; after
    a restart a new lower target waits out a whole window (replicas unchanged), never one
    counted from the stale intent."""
    window = 15
    op = operator_via(proxy, namespace, tmp_path).start()
    try:
        kube.apply(only_fp8(kube.ns, 50, window))
        wait(lambda: kube.replicas().get("assistant-fp8") == 4, 60, "fp8 at 4", op)
        kube.apply(only_fp8(kube.ns, 30, window))  # 3 would do: an intent, the window runs
        wait(lambda: "scaleDown" in kube.status("assistant"), 30, "a scale-down intent", op)
        kube.apply(only_fp8(kube.ns, 50, window))  # 4 needed again: the intent is cleared
        wait(lambda: "scaleDown" not in kube.status("assistant"), 30, "intent cleared", op)
    finally:
        op.kill()
    time.sleep(window + 2)  # the stale intent's window would be over by now
    assert "scaleDown" not in kube.status("assistant")
    restarted_at = time.time()
    op.start()
    try:
        kube.apply(only_fp8(kube.ns, 30, window))
        status = wait(lambda: kube.status("assistant").get("scaleDown"), 30, "a new intent", op)
        since = calendar.timegm(time.strptime(status["since"], "%Y-%m-%dT%H:%M:%SZ"))
        assert since >= int(restarted_at) - 1, "the window was counted from the stale intent"
        for _ in range(5):  # well inside the new window: nothing scaled down
            assert kube.replicas()["assistant-fp8"] == 4
            time.sleep(1)
        wait(lambda: kube.replicas()["assistant-fp8"] == 3, 60, "scaled down after the window", op)
    finally:
        op.stop()


# ----------------------------------------------------------------------------- fault 14 ---


def fill_gpus(kube: Cluster, template: Any, per_pod: int, pods: int) -> None:
    """A Deployment of `pods` pods holding `per_pod` GPUs each, on the nodes the template
    selects (another tenant using the pool)."""
    from kubernetes import client

    spec = template.spec.template.spec
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="gpu-filler"),
        spec=client.V1DeploymentSpec(
            replicas=pods,
            selector=client.V1LabelSelector(match_labels={"app": "gpu-filler"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "gpu-filler"}),
                spec=client.V1PodSpec(
                    node_selector=spec.node_selector,
                    tolerations=spec.tolerations,
                    containers=[
                        client.V1Container(
                            name="hold",
                            image="busybox",
                            resources=client.V1ResourceRequirements(
                                limits={"nvidia.com/gpu": str(per_pod)}
                            ),
                        )
                    ],
                ),
            ),
        ),
    )
    kube.apps.create_namespaced_deployment(kube.ns, body)


def test_an_exhausted_gpu_pool_names_the_pending_pods_and_moves_nothing_else(
    kube: Cluster, proxy: ApiProxy, namespace: str, tmp_path: Path
) -> None:
    """Invariant: pods the scheduler cannot place are named in CapacityPending; no switch
    starts and the serving variant is not scaled down while they wait; the condition
    clears once the pool has room. With the GPU inventory (the default) the operator asks
    for no replicas beyond the free GPUs and moves to a variant that fits
    (tests/e2e/test_inventory.py); Pending pods then come only from what it cannot see
    (another namespace's pods in namespace scope, a race with another scheduler), which
    this test stands in for by running without it."""
    op = operator_via(proxy, namespace, tmp_path, "--no-gpu-inventory").start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        fill_gpus(kube, kube.deployments()["assistant-fp8"], per_pod=7, pods=4)
        wait(
            lambda: (
                sum(
                    1
                    for p in kube.core.list_namespaced_pod(
                        kube.ns, label_selector="app=gpu-filler"
                    ).items
                    if p.spec.node_name
                )
                == 4
            ),
            60,
            "the filler holds 28 of 32 H100 GPUs",
            op,
        )
        switches = kube.status("assistant").get("lastSwitches", [])
        kube.apply(assistant(kube.ns, 80))  # fp8 x 7: 3 more fit, 3 cannot

        def all_pending_named() -> Any:
            pending = {
                p.metadata.name
                for p in kube.core.list_namespaced_pod(
                    kube.ns, label_selector="paretoscale.io/modeldeployment=assistant"
                ).items
                if p.status.phase == "Pending" and not p.spec.node_name
            }
            c = kube.condition("assistant", "CapacityPending")
            named = c.get("status") == "True" and all(n in c["message"] for n in pending)
            return len(pending) == 3 and named and c

        cond = wait(all_pending_named, 60, "CapacityPending=True naming the 3 Pending pods", op)
        assert cond["reason"] == "Unschedulable"
        for _ in range(5):
            status = kube.status("assistant")
            assert status["phase"] == "Stable" and status["activeVariant"] == "fp8"
            assert status.get("lastSwitches", []) == switches
            assert kube.replicas() == {"assistant-fp8": 7, "gpu-filler": 4}
            time.sleep(1)
        kube.apps.delete_namespaced_deployment("gpu-filler", kube.ns)
        wait(
            lambda: kube.condition("assistant", "CapacityPending").get("status") == "False",
            60,
            "CapacityPending=False once the pool has room",
            op,
        )
    finally:
        op.stop()
