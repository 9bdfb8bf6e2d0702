"""Fault injection on the real control plane (issue #11): each fault, then its invariant.

- `kubectl delete` of the serving Deployment, of the Service, `kubectl scale --replicas=0`:
  repaired within a tick or two (the operator compares with what its watches observe), and
  no `Scaled` event is posted for a repair;
- a restart with Prometheus down (and the serving Deployment deleted meanwhile, so it is
  missing when the operator starts): the serving Deployment keeps the replicas recorded in
  status, never 0;
- SIGKILL mid-rollout or between an apply and its status write, leaving a stray replica of a
  variant that is neither active nor target: after the restart that variant is at 0 and the
  rollout completes.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paretoscale.actuate.kube import Kube
from paretoscale.actuate.render import Owner, render_deployment
from paretoscale.api.manifest import parse_spec
from paretoscale.sim.bridge import free_loopback_port

from . import test_operator as scenarios
from .operator_harness import Cluster, OperatorProcess, wait
from .test_operator import FAST, assistant, stable_on

# The fixtures of the operator scenarios: CRDs installed, the namespace with the simulator
# bridge (KWOK pods turn Ready once their vLLM simulator answers).
crds_installed = scenarios.crds_installed
kube = scenarios.kube

pytestmark = pytest.mark.e2e

TICK = "1"
REPAIR_S = 15  # a tick is 1 s; the margin is for the API server and the watch, not the tick


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK).start()
    try:
        yield op
    finally:
        op.stop()


def kubectl(cluster: Any, *args: str) -> None:
    subprocess.run(
        ["kubectl", *args],
        env={"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        check=True,
        capture_output=True,
    )


def scaled_events(kube: Cluster) -> int:
    return sum(1 for _, reason, _ in kube.events() if reason == "Scaled")


def running_variants(kube: Cluster) -> set[str]:
    """Variants whose Deployment asks for replicas."""
    return {
        d.metadata.labels["paretoscale.io/variant"]
        for d in kube.deployments().values()
        if (d.spec.replicas or 0) > 0
    }


def only_active_and_target_run(kube: Cluster) -> bool:
    s = kube.status("assistant")
    allowed = {s.get("activeVariant"), (s.get("rollout") or {}).get("target")}
    return running_variants(kube) <= allowed


def stray_replica(k8s_client: Any, kube: Cluster, variant: str, replicas: int) -> None:
    """Apply a variant's Deployment as the operator renders it (owned by the
    ModelDeployment, same field manager): what a crashed operator would have left."""
    md = kube.md("assistant")
    spec = parse_spec(md["spec"], "assistant")
    v = next(x for x in spec.variants if x.name == variant)
    owner = Owner("assistant", kube.ns, md["metadata"]["uid"])
    Kube(k8s_client).apply(render_deployment(owner, spec, v, replicas))


def test_deleted_deployment_is_recreated(
    kube: Cluster, operator: OperatorProcess, cluster: Any
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    replicas = kube.replicas()["assistant-fp8"]
    assert replicas >= 1
    scaled = scaled_events(kube)
    kubectl(cluster, "delete", "deployment", "assistant-fp8", "-n", kube.ns, "--wait=true")
    wait(
        lambda: kube.replicas().get("assistant-fp8") == replicas,
        REPAIR_S,
        "assistant-fp8 recreated",
        operator,
    )
    time.sleep(3)  # a few more ticks: steady, nothing more to say
    assert kube.replicas()["assistant-fp8"] == replicas
    assert scaled_events(kube) == scaled
    assert stable_on(kube, "fp8")


def test_deleted_service_is_recreated(
    kube: Cluster, operator: OperatorProcess, cluster: Any
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    selector = kube.selector("assistant")
    assert selector is not None
    kubectl(cluster, "delete", "service", "assistant", "-n", kube.ns, "--wait=true")
    wait(lambda: kube.selector("assistant") == selector, REPAIR_S, "Service recreated", operator)


def test_manual_scale_to_zero_is_reverted(
    kube: Cluster, operator: OperatorProcess, cluster: Any
) -> None:
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    replicas = kube.replicas()["assistant-fp8"]
    scaled = scaled_events(kube)
    kubectl(cluster, "scale", "deployment/assistant-fp8", "--replicas=0", "-n", kube.ns)
    wait(
        lambda: kube.replicas()["assistant-fp8"] == replicas,
        REPAIR_S,
        f"assistant-fp8 back at {replicas}",
        operator,
    )
    time.sleep(3)
    assert kube.replicas()["assistant-fp8"] == replicas
    assert scaled_events(kube) == scaled


def test_restart_with_prometheus_down_keeps_the_serving_replicas(
    kube: Cluster, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    first = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK)
    first.start()
    try:
        kube.apply(assistant(kube.ns, 12))
        status = wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", first)
    finally:
        first.kill()
    replicas = status["replicas"]
    assert replicas >= 1 and kube.replicas()["assistant-fp8"] == replicas
    # While the operator is down, its serving Deployment disappears: at the restart it is
    # not in the cache, and Prometheus cannot say what the load is.
    kubectl(cluster, "delete", "deployment", "assistant-fp8", "-n", kube.ns, "--wait=true")
    dead = f"http://127.0.0.1:{free_loopback_port()}"
    op = OperatorProcess(
        cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK, "--prometheus-url", dead
    ).start()
    try:
        wait(
            lambda: kube.replicas().get("assistant-fp8") == replicas,
            30,
            f"assistant-fp8 recreated at {replicas}",
            op,
        )
        # metrics stay unavailable: hold means the recorded count, tick after tick
        wait(
            lambda: kube.condition("assistant", "MetricsAvailable").get("status") == "False",
            30,
            "MetricsAvailable=False",
            op,
        )
        for _ in range(5):
            assert kube.replicas()["assistant-fp8"] == replicas
            assert kube.status("assistant")["replicas"] == replicas
            time.sleep(1)
        # a manual scale to 0 while Prometheus is down is not adopted either
        kubectl(cluster, "scale", "deployment/assistant-fp8", "--replicas=0", "-n", kube.ns)
        wait(
            lambda: kube.replicas()["assistant-fp8"] == replicas,
            REPAIR_S,
            f"assistant-fp8 back at {replicas}",
            op,
        )
        assert stable_on(kube, "fp8")
    finally:
        op.stop()


def test_kill_between_apply_and_status_write_leaks_no_gpus(
    kube: Cluster, k8s_client: Any, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    """The operator applied a rollout target and died before writing the status: the status
    says Stable on fp8, the target's Deployment runs. After the restart it is scaled to 0."""
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK).start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        op.kill()
        stray_replica(k8s_client, kube, "w4a16-l40s", 1)
        assert running_variants(kube) == {"fp8", "w4a16-l40s"}
        assert stable_on(kube, "fp8")
        op.start()
        wait(
            lambda: kube.replicas().get("assistant-w4a16-l40s") == 0,
            30,
            "the half-started target at 0",
            op,
        )
        assert only_active_and_target_run(kube)
        assert kube.replicas()["assistant-fp8"] >= 1 and stable_on(kube, "fp8")
    finally:
        op.stop()


def test_kill_mid_rollout_with_a_stray_variant_completes_without_it(
    kube: Cluster, k8s_client: Any, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", TICK).start()
    try:
        kube.apply(assistant(kube.ns, 12))
        wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", op)
        kube.apply(assistant(kube.ns, 2, rollout={**FAST, "verifySeconds": 15}))
        wait(lambda: kube.status("assistant").get("phase") == "Verifying", 30, "Verifying", op)
        op.kill()
        stray_replica(k8s_client, kube, "bf16", 1)  # neither active (fp8) nor target
        assert "bf16" in running_variants(kube)
        op.start()
        wait(lambda: kube.replicas().get("assistant-bf16") == 0, 30, "bf16 at 0", op)
        status = wait(
            lambda: stable_on(kube, "w4a16-l40s"), 60, "Stable on w4a16-l40s after restart", op
        )
        assert status["lastSwitches"][0]["outcome"] == "completed"
        assert running_variants(kube) == {"w4a16-l40s"}
        assert only_active_and_target_run(kube)
    finally:
        op.stop()


def deleted_mid_rollout(
    kube: Cluster, operator: OperatorProcess, cluster: Any, *delete: str
) -> tuple[set[str], set[str]]:
    """Roll assistant from fp8 towards w4a16-l40s, run `kubectl delete ...` in Verifying, wait
    until the ModelDeployment and its Deployments are gone; returns the uids of the
    Deployments before the deletion and of every one seen during it."""
    kube.apply(assistant(kube.ns, 12))
    wait(lambda: stable_on(kube, "fp8"), 60, "Stable on fp8", operator)
    kube.apply(assistant(kube.ns, 2, rollout={**FAST, "verifySeconds": 60}))
    wait(lambda: kube.status("assistant").get("phase") == "Verifying", 30, "Verifying", operator)
    before = {d.metadata.uid for d in kube.deployments().values()}
    assert len(before) == 2
    kubectl(cluster, "delete", *delete, "--wait=false")
    seen: set[str] = set()

    def all_gone() -> bool:
        deps = kube.deployments()
        seen.update(d.metadata.uid for d in deps.values())
        mds = kube.custom.list_namespaced_custom_object(
            "paretoscale.io", "v1alpha1", kube.ns, "modeldeployments"
        )["items"]
        return not deps and not mds

    wait(all_gone, 90, "the ModelDeployment and its Deployments deleted", operator)
    return before, seen


@pytest.mark.parametrize("cascade", ["foreground", "background"])
def test_deletion_mid_rollout_recreates_nothing(
    kube: Cluster, operator: OperatorProcess, cluster: Any, cascade: str
) -> None:
    """Foreground deletion removes the Deployments before the ModelDeployment: an operator
    that re-created them would race the garbage collector (no apply after deletionTimestamp);
    background deletion removes them after it."""
    before, seen = deleted_mid_rollout(
        kube, operator, cluster, "mdep", "assistant", "-n", kube.ns, f"--cascade={cascade}"
    )
    assert seen <= before, "a Deployment was re-created during the deletion"


def test_namespace_deletion_mid_rollout_recreates_nothing_and_the_operator_goes_on(
    kube: Cluster, operator: OperatorProcess, cluster: Any
) -> None:
    """Deleting the namespace mid-rollout: the namespace controller deletes the
    ModelDeployment and its Deployments; the operator re-creates none of them (no apply after
    deletionTimestamp, and the API refuses new objects in a terminating namespace) and keeps
    running and healthy rather than failing in a loop."""
    import urllib.request

    before, seen = deleted_mid_rollout(kube, operator, cluster, "namespace", kube.ns)
    assert seen <= before, "a Deployment was re-created during the namespace deletion"
    time.sleep(3)  # a few more 1 s ticks over the vanished object
    assert operator.proc is not None and operator.proc.poll() is None, operator.log()
    health = f"http://127.0.0.1:{operator.health_port}/healthz"
    assert urllib.request.urlopen(health, timeout=5).status == 200, operator.log()
