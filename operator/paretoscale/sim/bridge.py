"""The data-plane bridge for a cluster whose pods run no containers (KWOK): one simulator
process per Running vLLM pod, on a free loopback port, plus the files Prometheus and the load
generator read.

Every `poll_s` seconds the bridge lists pods (and nodes, for their GPU labels), computes the
simulators it wants (`desired_sims`, pure), starts the missing ones, stops the ones whose pod
went away or stopped Running, restarts crashed ones with back-off, and rewrites atomically
the files below. Stopping is what a kubelet does: a pod's simulator leaves the files at once
(its endpoint is gone) but keeps serving for the pod's preStop sleep, then gets SIGTERM
(it drains in-flight requests) and SIGKILL after `grace_s`. The files:
- `<file-sd-dir>/paretoscale-sims.json` (name configurable): Prometheus file_sd targets with labels namespace,
  pod, and the pod's labels (paretoscale.io/x -> x, others label_<sanitized>);
- `<state-dir>/endpoints.json`: "namespace/pod" -> "127.0.0.1:port".
A pod is simulated when it has the paretoscale.io/variant label or its container runs
`vllm serve`; a profiling pod (label paretoscale.io/profiling) gets its simulator and client
from sim/profiling_client.py instead, and is no Prometheus target. The GPU type comes from
its node's labels, else its nodeSelector, through the GPU type mapping (api/accelerators.py:
`--gpu-types-preset`, `--gpu-types-file`, as the operator's); a type the simulator has no figures for (not in the built-in table) is
simulated as `default_gpu`, with a warning; sim flags from the pod's env
(PARETOSCALE_SIM_SPEED, PARETOSCALE_SIM_STARTUP_DELAY_S, PARETOSCALE_SIM_ERROR_RATE, ...: every
variant, from spec.template.env) and from its `vllm serve` arguments (`--sim-*` flags there,
e.g. a variant's vllm.extraArgs `--sim-error-rate=0.5`, reach that variant's simulator only).

The `Bridge` owns its child processes and never leaks them: stop() on exit of the `with`
block, at interpreter exit (atexit), and children get SIGTERM if the bridge dies
(PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.gpus import GPUS
from paretoscale.cliargs import number
from paretoscale.config import read_gpu_types
from paretoscale.errors import SpecError
from paretoscale.sim.kube import (
    ENDPOINTS_FILE,
    PodInfo,
    api_client,
    is_vllm_pod,
    pod_info,
    sanitize_label,
    vllm_serve_args,
    write_json_atomic,
)
from paretoscale.sim.profiling_client import ProfilingRunner

FILE_SD_NAME = "paretoscale-sims.json"
# Set by the bridge to "true" once the pod's simulator answers /health ("false" before and
# after). KWOK's pod-ready stage for vLLM pods waits for it (hack/kubecp/kwok-stages.yaml), so
# a pod is Ready exactly when vLLM would be: not while it loads, not after it died.
HEALTH_ANNOTATION = "sim.paretoscale.io/healthy"
_ENV_FLAGS = {
    "PARETOSCALE_SIM_SPEED": "--sim-speed",
    "PARETOSCALE_SIM_STARTUP_DELAY_S": "--sim-startup-delay-s",
    "PARETOSCALE_SIM_TIME_SCALE": "--sim-time-scale",
    "PARETOSCALE_SIM_SPEC_ACCEPTANCE": "--sim-spec-acceptance",
    "PARETOSCALE_SIM_PARAMS_B": "--sim-params-b",
    "PARETOSCALE_SIM_ERROR_RATE": "--sim-error-rate",
}


@dataclass(frozen=True)
class SimSpec:
    """One simulator the bridge wants running (for one pod incarnation)."""

    key: str  # namespace/pod
    uid: str
    serve_args: tuple[str, ...]  # "serve MODEL ..." as in the pod
    gpu_type: str
    sim_flags: tuple[str, ...]
    labels: Mapping[str, str]  # Prometheus target labels
    prestop_sleep_s: float = 0.0  # served on after the pod went away, before SIGTERM

    def argv(self, python: str, port: int) -> list[str]:
        return [
            python, "-m", "paretoscale.sim", *self.serve_args, "--host", "127.0.0.1",
            "--port", str(port), "--sim-gpu", self.gpu_type,
            "--sim-seed", str(zlib.crc32(self.uid.encode()) % 100000), *self.sim_flags,
        ]  # fmt: skip


def gpu_type_for(
    pod: PodInfo, node_labels: Mapping[str, Mapping[str, str]], gpus: GpuTypes = BUILTIN
) -> str | None:
    """GPU type of a pod: the one whose label (in `gpus`) its node carries, else the one its
    nodeSelector asks for; None when neither names a type of the mapping."""
    if pod.node_name and pod.node_name in node_labels:
        found = gpus.type_of(node_labels[pod.node_name])
        if found is not None:
            return found
    return gpus.type_of(pod.node_selector)


def target_labels(pod: PodInfo) -> dict[str, str]:
    """Prometheus labels of a pod's scrape target."""
    labels = {sanitize_label(k): v for k, v in sorted(pod.labels.items())}
    labels.update(namespace=pod.namespace, pod=pod.name)
    return labels


def desired_sims(
    pods: Sequence[PodInfo],
    node_labels: Mapping[str, Mapping[str, str]],
    default_gpu: str,
    gpus: GpuTypes = BUILTIN,
) -> tuple[dict[str, SimSpec], list[str]]:
    """The simulators to run for these pods (Running vLLM pods), and warnings."""
    wanted: dict[str, SimSpec] = {}
    warnings: list[str] = []
    for pod in pods:
        if pod.phase != "Running" or not is_vllm_pod(pod):
            continue
        serve = vllm_serve_args(pod.command)
        if serve is None:
            warnings.append(f"{pod.key}: labelled as a variant but runs no `vllm serve`; skipped")
            continue
        gpu = gpu_type_for(pod, node_labels, gpus)
        if gpu is None:
            keys = ", ".join(gpus.label_keys)
            warnings.append(f"{pod.key}: no GPU type label ({keys}); simulating {default_gpu}")
            gpu = default_gpu
        elif gpu not in GPUS:
            warnings.append(f"{pod.key}: no simulator figures for {gpu}; simulating {default_gpu}")
            gpu = default_gpu
        flags: list[str] = []
        for env, flag in _ENV_FLAGS.items():
            if pod.env.get(env):
                flags += [flag, pod.env[env]]
        wanted[pod.key] = SimSpec(pod.key, pod.uid, tuple(serve), gpu, tuple(flags),
                                  target_labels(pod), pod.prestop_sleep_s)  # fmt: skip
    return wanted, warnings


def health_patches(
    pods: Sequence[PodInfo], healthy: Mapping[str, bool]
) -> list[tuple[str, str, str]]:
    """(namespace, pod, "true"|"false") for every simulated pod whose annotation is stale."""
    out = []
    for pod in pods:
        if pod.key not in healthy:
            continue
        want = "true" if healthy[pod.key] else "false"
        if pod.annotations.get(HEALTH_ANNOTATION) != want:
            out.append((pod.namespace, pod.name, want))
    return out


def _answers_health(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
            return bool(r.status == 200)
    except Exception:
        return False


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Child:
    spec: SimSpec
    port: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None
    restarts: int = 0
    restart_at: float = 0.0


class Bridge:
    """Keeps one simulator per Running vLLM pod. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        kubeconfig: str | None,
        file_sd_dir: str | Path,
        *,
        namespace: str | None = None,
        state_dir: str | Path | None = None,
        poll_s: float = 1.0,
        grace_s: float = 30.0,
        default_gpu: str = "H100",
        gpu_types: GpuTypes = BUILTIN,
        python: str = sys.executable,
        api: Any = None,
        file_sd_name: str = FILE_SD_NAME,
    ) -> None:
        self.file_sd_path = Path(file_sd_dir) / file_sd_name
        self.state_dir = Path(state_dir) if state_dir else None
        self.namespace = namespace
        self.poll_s, self.grace_s = poll_s, grace_s
        self.default_gpu, self.python = default_gpu, python
        self.gpu_types = gpu_types
        self._api = api if api is not None else api_client(kubeconfig)
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._dying: list[tuple[_Child, float]] = []  # SIGTERM sent; SIGKILL at the time
        self._leaving: list[tuple[_Child, float]] = []  # in preStop; SIGTERM at the time
        self._profiling = ProfilingRunner(
            self._api, namespace=namespace, default_gpu=default_gpu, gpu_types=gpu_types,
            python=python, state_dir=self.state_dir,
        )  # fmt: skip

    # ----- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    def start(self) -> None:
        atexit.register(self.stop)
        self._write_files()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sim-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, stop every simulator, empty the target files. Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.poll_s + 30)
        self._thread = None
        with self._lock:
            children = [*self._children.values(), *(c for c, _ in self._leaving)]
            self._children.clear()
            self._leaving = []
        self._terminate(children)
        self._profiling.stop()
        self._write_files()
        atexit.unregister(self.stop)

    def endpoints(self) -> dict[str, str]:
        """The simulators running now: "namespace/pod" -> "127.0.0.1:port"."""
        with self._lock:
            return {k: f"127.0.0.1:{c.port}" for k, c in self._children.items()}

    # ----- reconcile -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception as exc:  # the API may be briefly unreachable; keep going
                print(f"WARNING bridge: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._stop.wait(self.poll_s)

    def _list(self) -> tuple[list[PodInfo], dict[str, dict[str, str]]]:
        from kubernetes import client

        core: Any = client.CoreV1Api(self._api)
        pods: list[Any]
        if self.namespace:
            pods = core.list_namespaced_pod(self.namespace).items
        else:
            pods = core.list_pod_for_all_namespaces().items
        nodes = {n.metadata.name: dict(n.metadata.labels or {}) for n in core.list_node().items}
        return [pod_info(p) for p in pods], nodes

    def reconcile_once(
        self,
        pods: Sequence[PodInfo] | None = None,
        node_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """One pass: list (unless given), start/stop/restart simulators, rewrite files."""
        if pods is None or node_labels is None:
            pods, node_labels = self._list()
            self._profiling.poll(node_labels)  # profiling pods: sim/profiling_client.py
        wanted, warnings = desired_sims(pods, node_labels, self.default_gpu, self.gpu_types)
        for w in warnings:
            if w not in self._warned:
                self._warned.add(w)
                print(f"WARNING bridge: {w}", file=sys.stderr)
        to_stop: list[_Child] = []
        with self._lock:
            for key, child in list(self._children.items()):
                spec = wanted.get(key)
                if spec is None or spec.uid != child.spec.uid:
                    to_stop.append(child)
                    del self._children[key]
        now = time.monotonic()
        self._leaving += [(c, now + c.spec.prestop_sleep_s) for c in to_stop]
        self._reap()
        with self._lock:
            for key, spec in wanted.items():
                current = self._children.get(key)
                if current is None:
                    self._children[key] = self._spawn(spec)
                elif current.proc.poll() is not None and now >= current.restart_at:
                    code = current.proc.returncode
                    print(f"WARNING bridge: simulator for {key} exited ({code}); restarting",
                          file=sys.stderr)  # fmt: skip
                    restarted = self._spawn(spec, current.restarts + 1)
                    restarted.restart_at = now + min(60.0, 2.0**restarted.restarts)
                    self._children[key] = restarted
        self._write_files()
        self._publish_health(pods)

    def _publish_health(self, pods: Sequence[PodInfo]) -> None:
        with self._lock:
            ports = {k: c.port for k, c in self._children.items() if c.proc.poll() is None}
        healthy = {k: _answers_health(p) for k, p in ports.items()}
        for ns, name, value in health_patches(pods, healthy):
            from kubernetes import client

            try:
                client.CoreV1Api(self._api).patch_namespaced_pod(
                    name, ns, {"metadata": {"annotations": {HEALTH_ANNOTATION: value}}}
                )
            except Exception as exc:  # the pod may be going away; next pass retries
                print(f"WARNING bridge: annotating {ns}/{name}: {exc}", file=sys.stderr)

    def _spawn(self, spec: SimSpec, restarts: int = 0) -> _Child:
        port = free_loopback_port()
        log: IO[bytes] | None = None
        if self.state_dir is not None:
            (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
            log = open(self.state_dir / "logs" / f"{spec.key.replace('/', '_')}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            spec.argv(self.python, port), stdin=subprocess.DEVNULL,
            stdout=log if log else subprocess.DEVNULL, stderr=subprocess.STDOUT if log else None,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
        return _Child(spec, port, proc, log, restarts)

    def _reap(self) -> None:
        """SIGTERM what ended its preStop sleep (it drains in-flight requests meanwhile);
        close what finished draining; SIGKILL what outlived the grace period."""
        now = time.monotonic()
        due = [c for c, at in self._leaving if at <= now]
        self._leaving = [(c, at) for c, at in self._leaving if at > now]
        self._terminate(due, wait=False)
        keep = []
        for child, deadline in self._dying:
            if child.proc.poll() is None and now < deadline:
                keep.append((child, deadline))
                continue
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
            if child.log is not None:
                child.log.close()
        self._dying = keep

    def _terminate(self, children: Sequence[_Child], wait: bool = True) -> None:
        """SIGTERM (the simulator drains in-flight requests), then SIGKILL after grace_s.
        With wait=False, return at once and let later passes reap them."""
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        if not wait:
            self._dying += [(c, time.monotonic() + self.grace_s) for c in children]
            return
        children = [*children, *(c for c, _ in self._dying)]
        self._dying = []
        deadline = time.monotonic() + self.grace_s
        for child in children:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            if child.log is not None:
                child.log.close()

    def _write_files(self) -> None:
        with self._lock:
            live = {k: c for k, c in self._children.items() if c.proc.poll() is None}
        groups = [
            {"targets": [f"127.0.0.1:{c.port}"], "labels": dict(c.spec.labels)}
            for _, c in sorted(live.items())
        ]
        write_json_atomic(self.file_sd_path, groups)
        if self.state_dir is not None:
            registry = {k: f"127.0.0.1:{c.port}" for k, c in sorted(live.items())}
            write_json_atomic(self.state_dir / ENDPOINTS_FILE, registry)


def main(argv: Sequence[str]) -> int:
    """`paretoscale sim bridge`: run until SIGTERM/SIGINT, then stop every simulator."""
    p = argparse.ArgumentParser(prog="paretoscale sim bridge")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--file-sd-dir", required=True)
    p.add_argument("--namespace", help="watch one namespace (default: all)")
    p.add_argument("--state-dir", help="where endpoints.json and simulator logs go")
    p.add_argument("--poll-s", type=number(0, 3600, lo_open=True), default=1.0)
    p.add_argument("--gpu-types-file", help="the operator's GPU type mapping (YAML gpuTypes)")
    p.add_argument("--gpu-types-preset", choices=["nfd", "gke"], default="nfd")
    ns = p.parse_args(list(argv))
    try:
        gpu_types = read_gpu_types(ns.gpu_types_file, ns.gpu_types_preset)
    except SpecError as e:
        p.error(str(e))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Bridge(ns.kubeconfig, ns.file_sd_dir, namespace=ns.namespace, state_dir=ns.state_dir,
                poll_s=ns.poll_s, gpu_types=gpu_types):  # fmt: skip
        stop.wait()
    return 0
