"""The data-plane bridge without a cluster: which pods get a simulator (pure), and the
process lifecycle and target files with real simulator subprocesses and fake pod lists."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from paretoscale.api.accelerators import gpu_types
from paretoscale.sim.bridge import Bridge, desired_sims, gpu_type_for, target_labels
from paretoscale.sim.kube import PodInfo, sanitize_label, vllm_serve_args

H100 = "NVIDIA-H100-80GB-HBM3"
SERVE = ("vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--dtype", "bfloat16", "--port",
         "8000")  # fmt: skip


def pod(
    name: str,
    *,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    command: tuple[str, ...] = SERVE,
    node: str | None = "gpu-0",
    selector: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    uid: str | None = None,
) -> PodInfo:
    return PodInfo(
        namespace="demo", name=name, uid=uid or f"uid-{name}", phase=phase,
        labels=labels if labels is not None else {
            "paretoscale.io/modeldeployment": "llama", "paretoscale.io/variant": "bf16",
            "app.kubernetes.io/name": "vllm",
        },
        command=command, env=env or {}, node_name=node, node_selector=selector or {},
    )  # fmt: skip


NODES = {
    "gpu-0": {"nvidia.com/gpu.product": H100},
    "gpu-1": {"nvidia.com/gpu.product": "NVIDIA-L4"},
}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (SERVE, list(SERVE[1:])),
        (("/usr/local/bin/vllm", "serve", "m"), ["serve", "m"]),
        (("sh", "-c", "exec vllm serve m --port 1"), ["serve", "m", "--port", "1"]),
        (("serve", "m"), ["serve", "m"]),  # image entrypoint is vllm
        (("python", "app.py", "serve"), None),
        (("nginx",), None),
    ],
    ids=["vllm-serve", "abs-path", "shell", "args-only", "other-serve", "not-vllm"],
)
def test_vllm_serve_args(command: tuple[str, ...], expected: list[str] | None) -> None:
    assert vllm_serve_args(command) == expected


@pytest.mark.parametrize(
    ("key", "label"),
    [("paretoscale.io/modeldeployment", "modeldeployment"), ("paretoscale.io/variant", "variant"),
     ("app.kubernetes.io/name", "label_app_kubernetes_io_name"), ("tier", "label_tier")],
)  # fmt: skip
def test_label_sanitizing(key: str, label: str) -> None:
    assert sanitize_label(key) == label


def test_gpu_types_come_from_the_mapping_gke_labels_and_declared_types() -> None:
    acme = {
        "labelKey": "cloud.google.com/gke-accelerator",
        "labelValue": "acme-x1",
        "resource": "acme.com/gpu",
        "memoryGiB": 96,
        "memoryBandwidthTBps": 2.4,
        "bf16Tflops": 400,
        "precisions": ["bf16"],
    }
    gpus = gpu_types({"gpuTypes": {"acme-x1": acme}}, "types.yaml", "gke")
    nodes = {
        "gke-h200": {"cloud.google.com/gke-accelerator": "nvidia-h200-141gb"},
        "gke-acme": {"cloud.google.com/gke-accelerator": "acme-x1"},
    }
    pods = [
        pod("h200", node="gke-h200"),
        pod("acme", node="gke-acme"),
        pod("l4-selector", node=None, selector={"cloud.google.com/gke-accelerator": "nvidia-l4"}),
    ]
    wanted, warnings = desired_sims(pods, nodes, "H100", gpus)
    assert wanted["demo/h200"].gpu_type == "H200"
    assert wanted["demo/l4-selector"].gpu_type == "L4"
    assert gpu_type_for(pods[1], nodes, gpus) == "acme-x1"
    # The simulator has no figures for a declared type: it runs the default, and says so.
    assert wanted["demo/acme"].gpu_type == "H100"
    assert any("demo/acme: no simulator figures for acme-x1" in w for w in warnings)
    # With the NFD labels only, GKE-labelled nodes name no type.
    assert gpu_type_for(pods[0], nodes) is None


def test_desired_sims_table() -> None:
    pods = [
        pod("running"),
        pod("pending", phase="Pending"),
        pod("unlabelled-vllm", labels={}),
        pod("labelled-not-vllm", command=("nginx",)),
        pod("other", labels={}, command=("nginx",)),
        pod("l4", node="gpu-1"),
        pod("by-selector", node=None, selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}),
        pod("unknown-gpu", node="cpu-0"),
        pod("slow", env={"PARETOSCALE_SIM_SPEED": "0.8", "PARETOSCALE_SIM_STARTUP_DELAY_S": "5"}),
    ]
    wanted, warnings = desired_sims(pods, NODES, "H100")
    assert sorted(wanted) == ["demo/by-selector", "demo/l4", "demo/running", "demo/slow",
                              "demo/unknown-gpu", "demo/unlabelled-vllm"]  # fmt: skip
    assert wanted["demo/l4"].gpu_type == "L4"
    assert wanted["demo/by-selector"].gpu_type == "A100"
    assert wanted["demo/unknown-gpu"].gpu_type == "H100"
    assert wanted["demo/slow"].sim_flags == ("--sim-speed", "0.8", "--sim-startup-delay-s", "5")
    assert any("labelled-not-vllm" in w for w in warnings)
    assert any("unknown-gpu" in w for w in warnings)
    argv = wanted["demo/running"].argv("python", 1234)
    assert argv[:6] == ["python", "-m", "paretoscale.sim", "serve",
                        "meta-llama/Llama-3.1-8B-Instruct", "--dtype"]  # fmt: skip
    assert argv[argv.index("--port", 8) + 1] == "1234"  # ours comes after the pod's --port
    assert gpu_type_for(pod("x", node="gpu-0"), NODES) == "H100"
    assert target_labels(pod("x")) == {
        "namespace": "demo", "pod": "x", "modeldeployment": "llama", "variant": "bf16",
        "label_app_kubernetes_io_name": "vllm",
    }  # fmt: skip


def _wait_healthy(endpoint: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{endpoint}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{endpoint} never became healthy")


def test_bridge_runs_and_stops_simulators(tmp_path: Path) -> None:
    file_sd, state = tmp_path / "sd", tmp_path / "state"
    bridge = Bridge(None, file_sd, state_dir=state, api=object(), grace_s=5.0)
    pods = [pod("a"), pod("b", labels={"paretoscale.io/variant": "fp8"})]
    try:
        bridge.reconcile_once(pods, NODES)
        endpoints = bridge.endpoints()
        assert sorted(endpoints) == ["demo/a", "demo/b"]
        for endpoint in endpoints.values():
            _wait_healthy(endpoint)
        registry = json.loads((state / "endpoints.json").read_text())
        assert registry == endpoints
        groups = json.loads((file_sd / "paretoscale-sims.json").read_text())
        assert {g["labels"]["pod"]: g["targets"] for g in groups} == {
            "a": [endpoints["demo/a"]],
            "b": [endpoints["demo/b"]],
        }
        procs = dict((k, c.proc) for k, c in bridge._children.items())
        # pod b goes away, pod a is replaced by a new incarnation (new uid)
        bridge.reconcile_once([pod("a", uid="uid-a-2")], NODES)
        # SIGTERM at once; the idle simulators have nothing to drain and exit promptly
        assert procs["demo/b"].wait(10) is not None and procs["demo/a"].wait(10) is not None
        assert sorted(bridge.endpoints()) == ["demo/a"]
        new_a = bridge._children["demo/a"].proc
        # a pod that stops Running loses its simulator
        bridge.reconcile_once([pod("a", uid="uid-a-2", phase="Succeeded")], NODES)
        assert new_a.wait(10) is not None and bridge.endpoints() == {}
        bridge.reconcile_once([pod("c")], NODES)
        last = bridge._children["demo/c"].proc
    finally:
        bridge.stop()
    assert last.poll() is not None
    assert json.loads((file_sd / "paretoscale-sims.json").read_text()) == []
    assert json.loads((state / "endpoints.json").read_text()) == {}
    assert (state / "logs" / "demo_a.log").exists()


def test_a_gone_pod_serves_through_its_prestop_sleep_then_stops(tmp_path: Path) -> None:
    # A kubelet runs the preStop sleep before SIGTERM: the endpoint is gone at once, the
    # server keeps answering what was routed to it before the removal reached the router.
    bridge = Bridge(None, tmp_path, state_dir=tmp_path, api=object(), grace_s=5.0)
    leaving = replace(pod("a"), prestop_sleep_s=1.5)
    try:
        bridge.reconcile_once([leaving], NODES)
        endpoint = bridge.endpoints()["demo/a"]
        _wait_healthy(endpoint)
        proc = bridge._children["demo/a"].proc
        bridge.reconcile_once([], NODES)
        assert bridge.endpoints() == {}  # out of the files at once
        assert json.loads((tmp_path / "endpoints.json").read_text()) == {}
        with urllib.request.urlopen(f"http://{endpoint}/health", timeout=2) as r:
            assert r.status == 200  # still serving during the sleep
        assert proc.poll() is None
        time.sleep(1.6)
        bridge.reconcile_once([], NODES)  # the sleep is over: SIGTERM
        assert proc.wait(10) is not None
    finally:
        bridge.stop()
    assert proc.poll() is not None


def test_stop_ends_simulators_still_in_their_prestop_sleep(tmp_path: Path) -> None:
    bridge = Bridge(None, tmp_path, api=object(), grace_s=5.0)
    bridge.reconcile_once([replace(pod("a"), prestop_sleep_s=600.0)], NODES)
    proc = bridge._children["demo/a"].proc
    bridge.reconcile_once([], NODES)
    bridge.stop()  # does not wait out the sleep, leaks nothing
    assert proc.poll() is not None


def test_crashed_simulator_is_restarted_with_backoff(tmp_path: Path) -> None:
    bridge = Bridge(None, tmp_path, api=object())
    bad = pod("bad", command=("vllm", "serve", "meta-llama/Llama-3.1-70B-Instruct"), node="gpu-1")
    try:
        bridge.reconcile_once([bad], NODES)  # 70B on one L4 exits 1 (does not fit)
        first = bridge._children["demo/bad"].proc
        first.wait(timeout=30)
        assert first.returncode == 1
        bridge.reconcile_once([bad], NODES)
        second = bridge._children["demo/bad"]
        assert second.proc is not first and second.restarts == 1
        second.proc.wait(timeout=30)
        bridge.reconcile_once([bad], NODES)  # back-off: not yet
        assert bridge._children["demo/bad"] is second
        assert json.loads((tmp_path / "paretoscale-sims.json").read_text()) == []
    finally:
        bridge.stop()


def test_health_annotation_patches_only_what_is_stale() -> None:
    from dataclasses import replace

    from paretoscale.sim.bridge import HEALTH_ANNOTATION, health_patches

    loading = pod("a")  # simulator not answering yet, no annotation: mark it false
    ready = replace(pod("b"), annotations={HEALTH_ANNOTATION: "false"})  # now answers
    same = replace(pod("c"), annotations={HEALTH_ANNOTATION: "true"})  # nothing to do
    died = replace(pod("d"), annotations={HEALTH_ANNOTATION: "true"})  # stopped answering
    other = pod("e")  # no simulator for it: not touched
    healthy = {"demo/a": False, "demo/b": True, "demo/c": True, "demo/d": False}
    assert health_patches([loading, ready, same, died, other], healthy) == [
        ("demo", "a", "false"),
        ("demo", "b", "true"),
        ("demo", "d", "false"),
    ]


def test_error_rate_reaches_the_simulator_from_env_or_the_variants_args() -> None:
    """PARETOSCALE_SIM_ERROR_RATE (template env: every variant) becomes --sim-error-rate; a
    variant's own `--sim-error-rate=` in its vllm serve args (vllm.extraArgs) is passed
    through to its simulator, whose command line takes it as a simulator flag."""
    from paretoscale.sim.cli import split_sim_flags

    pods = [
        pod("env", env={"PARETOSCALE_SIM_ERROR_RATE": "0.25"}),
        pod("args", command=(*SERVE, "--sim-error-rate=0.5")),
    ]
    wanted, _ = desired_sims(pods, NODES, "H100")
    assert wanted["demo/env"].sim_flags == ("--sim-error-rate", "0.25")
    argv = wanted["demo/args"].argv("python", 1234)
    sim, _ = split_sim_flags(argv[4:])
    assert "--sim-error-rate=0.5" in sim


def test_pod_info_reads_the_prestop_sleep() -> None:
    from kubernetes import client

    from paretoscale.sim.kube import pod_info

    def v1pod(lifecycle: object) -> object:
        c = client.V1Container(name="vllm", command=list(SERVE), lifecycle=lifecycle)
        return client.V1Pod(
            metadata=client.V1ObjectMeta(namespace="demo", name="a", uid="u"),
            spec=client.V1PodSpec(containers=[c]),
            status=client.V1PodStatus(phase="Running"),
        )

    hook = client.V1Lifecycle(
        pre_stop=client.V1LifecycleHandler(sleep=client.V1SleepAction(seconds=5))
    )
    assert pod_info(v1pod(hook)).prestop_sleep_s == 5.0
    assert pod_info(v1pod(None)).prestop_sleep_s == 0.0
