"""The operator end to end on the real control plane: rollouts, Recommend, bad specs,
rollback, restart mid-switch, garbage collection. These scenarios run on priors alone (no
Prometheus), which is also how a new ModelDeployment starts; the metrics-driven scenarios
are in test_operator_live.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .operator_harness import Cluster, OperatorProcess, example, wait

pytestmark = pytest.mark.e2e

FAST = {
    "minDwellSeconds": 0,
    "switchMargin": 0.05,
    "readyTimeoutSeconds": 60,
    "verifySeconds": 2,
    "drainGraceSeconds": 2,
}


@pytest.fixture(scope="module")
def crds_installed(cluster: Any) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(repo / "crds")],
        check=True,
        env=env,
        capture_output=True,
    )
    subprocess.run(
        [
            "kubectl",
            "wait",
            "--for=condition=Established",
            "crd/modeldeployments.paretoscale.io",
            "--timeout=60s",
        ],
        check=True,
        env=env,
        capture_output=True,
    )


@pytest.fixture
def kube(
    k8s_client: Any, namespace: str, crds_installed: None, cluster: Any, tmp_path: Path
) -> Iterator[Cluster]:
    """The namespace's objects, with the simulator bridge running: KWOK pods of vLLM
    Deployments turn Ready only once their simulator answers /health, as vLLM's would."""
    from paretoscale.sim.bridge import Bridge

    sd = tmp_path / "file_sd"
    sd.mkdir()
    with Bridge(
        cluster.kubeconfig,
        sd,
        namespace=namespace,
        state_dir=tmp_path,
        file_sd_name=f"{namespace}.json",
    ):
        yield Cluster(k8s_client, namespace)


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        yield op
    finally:
        op.stop()


def assistant(ns: str, rate: float, **spec: Any) -> dict[str, Any]:
    traffic = {
        "minReplicas": 1,
        "maxReplicas": 16,
        "targetUtilization": 0.8,
        "expectedRequestsPerSecond": rate,
    }
    return example(
        "assistant-llama-8b.yaml", ns, **{"traffic": traffic, "rollout": dict(FAST), **spec}
    )


def stable_on(kube: Cluster, variant: str) -> Any:
    s = kube.status("assistant")
    return s.get("phase") == "Stable" and s.get("activeVariant") == variant and s


def drained(kube: Cluster, op: OperatorProcess) -> None:
    """The old variant reaches 0 replicas. The status records a step before the applies it
    leads to (controller/reconcile.py), so Stable can be read a moment before fp8's scale-down
    lands; the cluster must show it within a few seconds."""
    want = {"assistant-fp8": 0, "assistant-w4a16-l40s": 1}
    wait(lambda: kube.replicas() == want, 10, f"replicas {want}", op)


def test_first_rollout_brings_up_the_best_variant(
    kube: Cluster, operator: OperatorProcess, cluster: Any
) -> None:
    kube.apply(assistant(kube.ns, 12))
    status = wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    assert kube.replicas() == {"assistant-fp8": 1}
    assert kube.selector("assistant") == {
        "paretoscale.io/modeldeployment": "assistant",
        "paretoscale.io/variant": "fp8",
    }
    wait(
        lambda: (kube.deployments()["assistant-fp8"].status.available_replicas or 0) >= 1,
        30,
        "fp8 available",
    )
    assert status["hourlyCost"] == "6.88" and status["decision"]["reasons"]
    row = next(r for r in status["frontier"] if r["name"] == "fp8")
    assert row["onFrontier"] and row["feasible"] and row["basis"] == "priors"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert (conds["MetricsAvailable"]["status"], conds["MetricsAvailable"]["reason"]) == (
        "False",
        "NoPrometheus",
    )
    reasons = {r for _, r, _ in kube.events()}
    assert {"RolloutStarted", "Switched"} <= reasons
    out = subprocess.run(
        ["kubectl", "get", "mdep", "-n", kube.ns],
        env={"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fp8" in out.splitlines()[1] and "6.88" in out and "Stable" in out


def test_spec_change_is_picked_up_at_once_and_switches(
    kube: Cluster, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    first = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", first)
    finally:
        first.stop()
    # A tick of an hour proves that what follows comes from the spec change, not the timer.
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "3600").start()
    try:
        wait(lambda: "cache synced" in op.log(), 30, "operator listed and watching", op)
        kube.apply(assistant(kube.ns, 2))  # load drops: the L40S INT4 variant is now best
        s = wait(
            lambda: (
                (st := kube.status("assistant")).get("rollout", {}).get("target") == "w4a16-l40s"
                and st
            ),
            20,
            "switch to w4a16-l40s started",
            op,
        )
        assert s["phase"] in ("Preparing", "Verifying")
        # the status records the step before the apply it leads to (see `drained`)
        wait(lambda: "assistant-w4a16-l40s" in kube.replicas(), 10, "the target's Deployment", op)
    finally:
        op.stop()


def test_switch_completes_and_drains_the_old_variant(
    kube: Cluster, operator: OperatorProcess
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    kube.apply(assistant(kube.ns, 2))
    status = wait(lambda: stable_on(kube, "w4a16-l40s"), 60, "Stable on w4a16-l40s", operator)
    drained(kube, operator)
    assert kube.selector("assistant")["paretoscale.io/variant"] == "w4a16-l40s"
    last = status["lastSwitches"][0]
    assert (last["from"], last["to"], last["outcome"]) == ("fp8", "w4a16-l40s", "completed")


def test_recommend_mode_creates_no_workload(kube: Cluster, operator: OperatorProcess) -> None:
    kube.apply(assistant(kube.ns, 12, mode="Recommend"))
    status = wait(
        lambda: kube.status("assistant").get("decision"), 30, "a recommendation", operator
    )
    assert status["variant"] == "fp8"
    assert kube.status("assistant")["targetVariant"] == "fp8"
    assert kube.replicas() == {} and kube.selector("assistant") is None
    assert any(r == "Recommendation" for _, r, _ in kube.events())
    # the operator never wrote the spec (GitOps owns it); the status names it as its manager
    fields = kube.md("assistant")["metadata"]["managedFields"]
    assert "paretoscale" not in {m["manager"] for m in fields if m.get("subresource") != "status"}
    assert {m["manager"] for m in fields if m.get("subresource") == "status"} == {"paretoscale"}


def test_invalid_spec_is_reported_and_nothing_is_touched(
    kube: Cluster, operator: OperatorProcess
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    before = kube.replicas()
    bad = assistant(kube.ns, 12)
    bad["spec"]["gpus"].append({"type": "A100", "usdPerHour": "1.85", "available": 8})
    bad["spec"]["variants"][1]["gpu"]["type"] = "A100"  # an FP8 checkpoint (by its name) on Ampere
    kube.apply(bad)  # CEL cannot see the checkpoint name, so the API server accepts it
    cond = wait(
        lambda: (c := kube.condition("assistant", "SpecValid")).get("status") == "False" and c,
        30,
        "SpecValid=False",
        operator,
    )
    assert (
        cond["reason"] == "InvalidSpec"
        and "FP8 weights need compute capability 8.9+" in cond["message"]
    )
    assert any(t == "Warning" and r == "InvalidSpec" for t, r, _ in kube.events())
    assert kube.replicas() == before and kube.status("assistant")["activeVariant"] == "fp8"


def test_target_that_never_gets_ready_is_rolled_back(
    kube: Cluster, operator: OperatorProcess
) -> None:
    kube.apply(assistant(kube.ns, 2))
    wait(lambda: stable_on(kube, "w4a16-l40s"), 60, "Stable on w4a16-l40s", operator)
    # A better variant on the same L40S nodes appears, but its replicas never finish loading
    # (the simulator's startup delay, an hour): its pods run and never turn Ready. (A type
    # with no node no longer serves: the GPU inventory keeps the decision off it.)
    doc = assistant(kube.ns, 2, rollout={**FAST, "readyTimeoutSeconds": 8, "minDwellSeconds": 0})
    l40s = dict(doc["spec"]["variants"][2])
    slow = {
        **l40s, "name": "w4a16-slow", "quality": l40s["quality"] + 0.03,
        "vllm": {**l40s["vllm"], "extraArgs": ["--sim-startup-delay-s=3600"]},
    }  # fmt: skip
    doc["spec"]["variants"].append(slow)
    kube.apply(doc)
    wait(
        lambda: kube.status("assistant").get("rollout", {}).get("target") == "w4a16-slow",
        20,
        "rollout to w4a16-slow started",
        operator,
    )
    degraded = wait(
        lambda: (c := kube.condition("assistant", "Degraded")).get("status") == "True" and c,
        40,
        "Degraded",
        operator,
    )
    assert degraded["reason"] == "RolledBack" and "not Ready after 8s" in degraded["message"]
    status = kube.status("assistant")
    assert status["activeVariant"] == "w4a16-l40s" and status["phase"] == "Stable"
    assert (
        kube.replicas()["assistant-w4a16-slow"] == 0
        and kube.replicas()["assistant-w4a16-l40s"] == 1
    )
    assert any(t == "Warning" and r == "RolledBack" for t, r, _ in kube.events())
    # and it is not retried at once
    frontier = {r["name"]: r for r in status["frontier"]}
    assert frontier["w4a16-slow"]["reason"].startswith("rolled back")


def test_restart_mid_switch_completes_it(
    kube: Cluster, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "1").start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        kube.apply(assistant(kube.ns, 2, rollout={**FAST, "verifySeconds": 15}))
        wait(lambda: kube.status("assistant").get("phase") == "Verifying", 30, "Verifying", op)
        op.kill()
        assert kube.status("assistant")["phase"] == "Verifying"
        op.start()
        status = wait(
            lambda: stable_on(kube, "w4a16-l40s"), 60, "Stable on w4a16-l40s after restart", op
        )
        assert status["lastSwitches"][0]["outcome"] == "completed"
        drained(kube, op)
    finally:
        op.stop()


def test_deleting_the_modeldeployment_removes_its_workloads(
    kube: Cluster, operator: OperatorProcess
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    kube.custom.delete_namespaced_custom_object(
        "paretoscale.io", "v1alpha1", kube.ns, "modeldeployments", "assistant"
    )
    wait(
        lambda: not kube.deployments() and kube.selector("assistant") is None,
        60,
        "garbage collection",
    )
