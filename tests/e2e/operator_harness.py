"""Run the real operator (`paretoscale run`) as a process against the e2e cluster.

Each test starts its own operator restricted to its namespace, so tests can kill and restart
it without disturbing each other. Ports are chosen free; the process is always stopped.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from paretoscale.sim.bridge import free_loopback_port as free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "paretoscale.io", "v1alpha1", "modeldeployments"


class OperatorProcess:
    """`paretoscale run -n NAMESPACE` with its log in a file."""

    def __init__(self, kubeconfig: str, namespace: str, log_dir: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_dir / f"operator-{namespace}.log"
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        self.metrics_port, self.health_port = free_port(), free_port()
        cmd = [
            sys.executable,
            "-m",
            "paretoscale.cli",
            "run",
            "-n",
            self.namespace,
            "--kubeconfig",
            self.kubeconfig,
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            *self.extra,
        ]
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARETOSCALE_")}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies under the operator."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def example(name: str, namespace: str, **spec_changes: Any) -> dict[str, Any]:
    """An example ModelDeployment moved to `namespace`, with top-level spec fields replaced."""
    doc = yaml.safe_load((REPO_ROOT / "examples" / name).read_text())
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    doc["spec"].update(spec_changes)
    return dict(doc)


class Cluster:
    """Small typed helpers over the kubernetes client for the operator scenarios."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.ns = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def apply(self, doc: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns,
            PLURAL,
            doc["metadata"]["name"],
            doc,
            field_manager="e2e-gitops",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def md(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.md(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), {})

    def deployments(self) -> dict[str, Any]:
        return {d.metadata.name: d for d in self.apps.list_namespaced_deployment(self.ns).items}

    def replicas(self) -> dict[str, int]:
        return {n: d.spec.replicas for n, d in self.deployments().items()}

    def selector(self, service: str) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_service(service, self.ns).spec.selector)
        except Exception:
            return None

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e.type, e.reason, e.message or "")
            for e in self.core.list_namespaced_event(self.ns).items
        ]


def wait(cond: Any, timeout_s: float, what: str, op: OperatorProcess | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.5)
    tail = f"\noperator log:\n{op.log()}" if op else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}{tail}")
