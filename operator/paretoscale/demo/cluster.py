"""The demo's cluster (I/O): `hack/cluster up`/`down` of its own state dir, the CRD and the
chart's RBAC, a kubeconfig for the chart's ServiceAccount, and the few API calls the demo
makes itself (apply the ModelDeployment, find a serving pod, list the GPU nodes).

The operator runs as that ServiceAccount, so the demo also shows that the chart's RBAC
(rendered with `watchNamespaces: [demo]`, as for `paretoscale run -n demo`) is enough.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paretoscale.api.gpus import GPUS
from paretoscale.demo import DemoError
from paretoscale.sim.prices import FakeNode

OPERATOR_NAMESPACE = "paretoscale-system"
SERVICE_ACCOUNT = "paretoscale"
GROUP, VERSION, PLURAL = "paretoscale.io", "v1alpha1", "modeldeployments"
CRD = f"{PLURAL}.{GROUP}"
MARKER = ".paretoscale-cluster"  # hack/cluster's mark of a state dir


@dataclass(frozen=True)
class ClusterEnv:
    """What `hack/cluster up` printed."""

    state_dir: Path
    kubeconfig: str
    prometheus_url: str
    file_sd_dir: Path


def run_cmd(
    cmd: Sequence[str],
    what: str,
    *,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120,
) -> str:
    """Run a command to completion; its stdout, or DemoError with its stderr."""
    try:
        done = subprocess.run(list(cmd), input=input_text, capture_output=True, text=True,
                              env=dict(env) if env else None, timeout=timeout_s, check=False)  # fmt: skip
    except FileNotFoundError:
        raise DemoError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise DemoError(f"{what}: no answer from {cmd[0]} in {timeout_s:.0f}s") from None
    if done.returncode != 0:
        raise DemoError(f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()[-3000:]}")
    return done.stdout


def parse_env(text: str) -> dict[str, str]:
    """The `export NAME=VALUE` lines `hack/cluster up` prints."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


def has_cluster(state_dir: Path) -> bool:
    return (state_dir / MARKER).exists()


def up(script: Path, state_dir: Path, watch_pid: int | None) -> ClusterEnv:
    """`hack/cluster --dir STATE up`, its log on our stderr. Builds the binaries only when
    they are missing (`build --check`), so a cached build is used as it is."""
    check = subprocess.run([str(script), "build", "--check"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    args = [str(script), "--dir", str(state_dir), "up"]
    if check.returncode == 0:
        args.append("--no-build")
    else:
        print("[demo] the control-plane binaries are not built yet: building them from Go "
              "modules (tens of minutes, once; cached in ~/.cache/paretoscale/bin)",
              file=sys.stderr, flush=True)  # fmt: skip
    if watch_pid is not None:  # down by itself should `watch_pid` be killed outright
        args += ["--watch-pid", str(watch_pid)]
    done = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise DemoError(f"hack/cluster up failed (exit {done.returncode}); its log is above")
    env = parse_env(done.stdout)
    if "PROMETHEUS_URL" not in env or "PARETOSCALE_FILE_SD_DIR" not in env:
        raise DemoError("hack/cluster up started no Prometheus; the demo needs it")
    return ClusterEnv(state_dir, env["KUBECONFIG"], env["PROMETHEUS_URL"],
                      Path(env["PARETOSCALE_FILE_SD_DIR"]))  # fmt: skip


def down(script: Path, state_dir: Path) -> None:
    """`hack/cluster --dir STATE down`, in a session of its own so that another Ctrl-C cannot
    cut it short; complains on stderr if it failed."""
    done = subprocess.run([str(script), "--dir", str(state_dir), "down"], capture_output=True,
                          text=True, check=False, timeout=180, start_new_session=True)  # fmt: skip
    if done.returncode != 0:
        print(f"[demo] hack/cluster down failed (exit {done.returncode}):\n{done.stderr[-2000:]}",
              file=sys.stderr, flush=True)  # fmt: skip


def helm_binary() -> str:
    """hack/demo passes the one hack/cluster builds (PARETOSCALE_DEMO_HELM); else the newest
    in the binary cache."""
    given = os.environ.get("PARETOSCALE_DEMO_HELM")
    if given and Path(given).is_file():
        return given
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = Path(os.environ.get("PARETOSCALE_CACHE_DIR") or xdg / "paretoscale")
    bin_root = Path(os.environ.get("PARETOSCALE_BIN_DIR") or cache / "bin")
    found = sorted(bin_root.glob("helm-*/helm"))
    if not found:
        raise DemoError(f"no helm binary under {bin_root}: run hack/cluster build")
    return str(found[-1])


def _kubectl_env(env: ClusterEnv) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": env.kubeconfig}


def apply_yaml(env: ClusterEnv, text: str, what: str) -> None:
    run_cmd(["kubectl", "apply", "--server-side", "-f", "-"], what, input_text=text,
            env=_kubectl_env(env))  # fmt: skip


def install_chart_parts(chart: Path, env: ClusterEnv, namespace: str) -> None:
    """The CRD (the chart's crds/), the namespaces, and the chart's ServiceAccount and RBAC
    for an operator that watches `namespace` only."""
    kenv = _kubectl_env(env)
    run_cmd(["kubectl", "apply", "--server-side", "-f", str(chart / "crds")],
            "installing the CRD", env=kenv)  # fmt: skip
    run_cmd(["kubectl", "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s"],
            "waiting for the CRD", env=kenv)  # fmt: skip
    for ns in (OPERATOR_NAMESPACE, namespace):
        apply_yaml(env, yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}}), f"creating namespace {ns}")  # fmt: skip
    rbac = run_cmd(
        [helm_binary(), "template", "paretoscale", str(chart), "-n", OPERATOR_NAMESPACE,
         "--set", f"watchNamespaces={{{namespace}}}",
         "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
        "helm template (the chart's RBAC)",
    )  # fmt: skip
    apply_yaml(env, rbac, "applying the chart's RBAC")


def service_account_kubeconfig(env: ClusterEnv, path: Path) -> str:
    """A kubeconfig like the admin's, authenticated as the chart's ServiceAccount (a
    TokenRequest token valid 24 h); its path."""
    token = run_cmd(["kubectl", "create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE,
                     "--duration=24h"], "a token for the operator's ServiceAccount",
                    env=_kubectl_env(env)).strip()  # fmt: skip
    config = yaml.safe_load(Path(env.kubeconfig).read_text())
    for user in config.get("users") or []:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)


def apply_manifest(api: Any, manifest: Mapping[str, Any]) -> None:
    """Server-side apply of a ModelDeployment (as GitOps would)."""
    from kubernetes import client

    meta = manifest["metadata"]
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, meta["namespace"], PLURAL, meta["name"],
        dict(manifest), field_manager="paretoscale-demo", force=True,
        _content_type="application/apply-patch+yaml",
    )  # fmt: skip


def serving_endpoint(api: Any, namespace: str, service: str, bridge_state: Path) -> str | None:
    """The loopback address of a Ready pod behind the Service whose simulator answers
    /health (the bridge's endpoints.json maps pods to simulators)."""
    from paretoscale.sim.kube import read_endpoints, service_ready_pods

    registry = read_endpoints(bridge_state)
    for pod in service_ready_pods(api, namespace, service):
        address = registry.get(f"{namespace}/{pod}")
        if address is None:
            continue
        try:
            with urllib.request.urlopen(f"http://{address}/health", timeout=1) as r:
                if r.status == 200:
                    return address
        except OSError:
            continue
    return None


def gpu_nodes(api: Any) -> list[FakeNode]:
    """The cluster's GPU nodes, as the price exporter's FakeNodes (GPU type by the node's
    nvidia.com/gpu.product label)."""
    from kubernetes import client

    by_product = {g.label_value: g.type for g in GPUS.values()}
    core: Any = client.CoreV1Api(api)
    nodes = []
    for n in core.list_node().items:
        product = (n.metadata.labels or {}).get("nvidia.com/gpu.product")
        if product in by_product:
            nodes.append(FakeNode(str(n.metadata.name), by_product[product]))
    return nodes
