"""Kubernetes reads the data plane needs (I/O, synchronous client): pods to simulate, and
which pods a Service currently routes to. Also the registry file the bridge writes and the
load generator reads (`<state-dir>/endpoints.json`: "namespace/pod" -> "127.0.0.1:port").
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENDPOINTS_FILE = "endpoints.json"
VARIANT_LABEL = "paretoscale.io/variant"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class PodInfo:
    """What the bridge needs from a pod."""

    namespace: str
    name: str
    uid: str
    phase: str
    labels: Mapping[str, str]
    command: tuple[str, ...]  # the first container's command + args
    env: Mapping[str, str]
    node_name: str | None
    node_selector: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    prestop_sleep_s: float = 0.0  # the first container's preStop sleep action, if any

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def api_client(kubeconfig: str | None) -> Any:
    """A kubernetes ApiClient for `kubeconfig` (None: in-cluster, then ~/.kube/config)."""
    from kubernetes import client, config

    cfg: Any = config  # the client's config helpers are untyped
    if kubeconfig:
        return cfg.new_client_from_config(config_file=kubeconfig)
    try:
        cfg.load_incluster_config()
    except cfg.ConfigException:
        return cfg.new_client_from_config()
    return client.ApiClient()


def pod_info(pod: Any) -> PodInfo:
    """Flatten a V1Pod."""
    spec, meta = pod.spec, pod.metadata
    container = spec.containers[0] if spec and spec.containers else None
    command = tuple((container.command or []) + (container.args or [])) if container else ()
    env = {e.name: e.value or "" for e in (container.env or [])} if container else {}
    return PodInfo(
        namespace=meta.namespace, name=meta.name, uid=meta.uid or "",
        phase=(pod.status.phase if pod.status else None) or "Unknown",
        labels=dict(meta.labels or {}), command=command, env=env,
        node_name=spec.node_name if spec else None,
        node_selector=dict((spec.node_selector or {}) if spec else {}),
        annotations=dict(meta.annotations or {}),
        prestop_sleep_s=_prestop_sleep_s(container),
    )  # fmt: skip


def _prestop_sleep_s(container: Any) -> float:
    """The seconds of a container's `lifecycle.preStop.sleep` action (0 without one)."""
    hook = container.lifecycle.pre_stop if container and container.lifecycle else None
    sleep = getattr(hook, "sleep", None) if hook else None
    return float(sleep.seconds) if sleep and sleep.seconds else 0.0


def vllm_serve_args(command: tuple[str, ...]) -> list[str] | None:
    """The `serve ...` part of a container command that runs vLLM, or None.

    Accepts `vllm serve ...`, `/usr/bin/vllm serve ...`, `sh -c "vllm serve ..."` and args
    that start with `serve` (an image whose entrypoint is vllm)."""
    tokens = list(command)
    if len(tokens) >= 3 and tokens[0].endswith("sh") and tokens[1] == "-c":
        import shlex

        tokens = shlex.split(tokens[2])
    for i, token in enumerate(tokens):
        if token == "serve" and (i == 0 or tokens[i - 1].rsplit("/", 1)[-1] == "vllm"):
            return tokens[i:]
    return None


def is_vllm_pod(pod: PodInfo) -> bool:
    """A pod the bridge simulates: labelled with a variant, or running `vllm serve`."""
    return VARIANT_LABEL in pod.labels or vllm_serve_args(pod.command) is not None


def sanitize_label(name: str) -> str:
    """A Kubernetes label key as a Prometheus label name: paretoscale.io/x -> x; others
    label_<key with non [a-zA-Z0-9_] replaced by _>."""
    if name.startswith("paretoscale.io/"):
        return re.sub(r"[^a-zA-Z0-9_]", "_", name.split("/", 1)[1])
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to `path` via a temporary file in the same directory and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_endpoints(state_dir: str | Path) -> dict[str, str]:
    """The bridge's registry: "namespace/pod" -> "127.0.0.1:port" ({} if not written yet)."""
    try:
        with open(Path(state_dir) / ENDPOINTS_FILE) as f:
            data = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def service_ready_pods(api: Any, namespace: str, service: str) -> list[str]:
    """Names of the pods a Service routes to now: the ready endpoints of its EndpointSlices;
    if it has none yet (no endpoint controller), the Running+Ready pods its selector picks."""
    from kubernetes import client

    discovery: Any = client.DiscoveryV1Api(api)
    slices: list[Any] = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    names: list[str] = []
    for sl in slices:
        for ep in sl.endpoints or []:
            ready = ep.conditions is None or ep.conditions.ready is not False
            if ready and ep.target_ref is not None and ep.target_ref.kind == "Pod":
                names.append(str(ep.target_ref.name))
    if slices:
        return sorted(set(names))
    core: Any = client.CoreV1Api(api)
    svc: Any = core.read_namespaced_service(service, namespace)
    selector = svc.spec.selector or {}
    if not selector:
        return []
    label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=label_selector).items
    out: list[str] = []
    for pod in pods:
        conditions = (pod.status.conditions or []) if pod.status else []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if pod.status and pod.status.phase == "Running" and ready:
            out.append(str(pod.metadata.name))
    return sorted(out)
