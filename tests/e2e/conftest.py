"""Session fixtures for end-to-end tests on a real Kubernetes control plane.

Without PARETOSCALE_E2E_KUBECONFIG in the environment, the session starts its own cluster with
``hack/cluster`` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
KWOK fake GPU nodes, Prometheus) in a fresh state directory under pytest's tmp
path, and always tears it down at the end, also when tests fail or the run is
interrupted (try/finally, an atexit hook as a backup, and hack/cluster's
--watch-pid watcher for a SIGKILLed run). The binaries are
built on first use (tens of minutes cold, cached in ~/.cache/paretoscale/bin);
set ``PARETOSCALE_E2E=skip`` to skip instead of building when they are missing.

With PARETOSCALE_E2E_KUBECONFIG set, that cluster is used as it is (e.g. one from
``hack/cluster up`` or ``hack/kind-up.sh``); PROMETHEUS_URL and
PARETOSCALE_FILE_SD_DIR are taken from the environment when present. A KUBECONFIG that
happens to be set (a developer's real cluster) is never used by the tests.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pathlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from paretoscale.demo.cluster import parse_env  # reads `hack/cluster up`'s exports

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO_ROOT / "hack" / "cluster"
UP_TIMEOUT_S = 3600  # includes a cold build of the binaries
DOWN_TIMEOUT_S = 120


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where the e2e tests find the cluster they run against."""

    kubeconfig: str
    prometheus_url: str | None
    file_sd_dir: str | None
    state_dir: str
    # True when this session started the cluster (fake GPU nodes from hack/cluster).
    owned: bool = False


def _run_cluster(
    state_dir: pathlib.Path, *args: str, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SCRIPT), "--dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _down(state_dir: pathlib.Path) -> None:
    result = _run_cluster(state_dir, "down", timeout_s=DOWN_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"hack/cluster down failed for {state_dir}:\n{result.stderr[-4000:]}")


def _binaries_present() -> tuple[bool, str]:
    result = subprocess.run(
        [str(CLUSTER_SCRIPT), "build", "--check"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0, result.stdout.strip()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running cluster for the whole session: the given one, or our own."""
    kubeconfig = os.environ.get("PARETOSCALE_E2E_KUBECONFIG")
    if kubeconfig:
        yield Cluster(
            kubeconfig=kubeconfig,
            prometheus_url=os.environ.get("PROMETHEUS_URL") or None,
            file_sd_dir=os.environ.get("PARETOSCALE_FILE_SD_DIR") or None,
            state_dir=os.environ.get("PARETOSCALE_CLUSTER_DIR", ""),
        )
        return

    present, report = _binaries_present()
    if not present and os.environ.get("PARETOSCALE_E2E") == "skip":
        pytest.skip(
            "control-plane binaries are not built and PARETOSCALE_E2E=skip; "
            f"run hack/cluster build (or unset PARETOSCALE_E2E) to run e2e tests:\n{report}"
        )

    state_dir = tmp_path_factory.mktemp("cluster", numbered=True)
    # Backup for exits that skip the finally below (e.g. a second Ctrl-C); down is idempotent.
    atexit.register(_run_cluster, state_dir, "down", timeout_s=DOWN_TIMEOUT_S)
    try:
        # --watch-pid: the cluster also goes down if this process is killed outright.
        up = _run_cluster(state_dir, "up", "--watch-pid", str(os.getpid()), timeout_s=UP_TIMEOUT_S)
        if up.returncode != 0:
            # down removes the state dir; keep the components' logs for a look.
            kept = tmp_path_factory.mktemp("cluster-logs", numbered=True)
            if (state_dir / "logs").is_dir():
                shutil.copytree(state_dir / "logs", kept, dirs_exist_ok=True)
            pytest.fail(
                f"hack/cluster up failed (exit {up.returncode}); component logs kept in {kept}:\n"
                f"{up.stderr[-6000:]}",
                pytrace=False,
            )
        env = parse_env(up.stdout)
        yield Cluster(
            kubeconfig=env["KUBECONFIG"],
            prometheus_url=env.get("PROMETHEUS_URL"),
            file_sd_dir=env.get("PARETOSCALE_FILE_SD_DIR"),
            state_dir=str(state_dir),
            owned=True,
        )
    finally:
        _down(state_dir)


@pytest.fixture(scope="session")
def k8s_client(cluster: Cluster) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for the cluster."""
    kubernetes = pytest.importorskip(
        "kubernetes", reason="the python kubernetes client is required"
    )
    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        yield api_client
    finally:
        api_client.close()


def _wait_for(
    condition: Callable[[], Any],
    *,
    timeout_s: float = 60.0,
    interval_s: float = 0.5,
    what: str = "condition",
) -> Any:
    """Polls ``condition`` until it returns something truthy and returns that value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last value: {last!r})")


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    """``wait_for(condition, timeout_s=60, what=...)``: poll until truthy, return the value."""
    return _wait_for


@pytest.fixture
def namespace(k8s_client: Any) -> Iterator[str]:
    """A fresh namespace, deleted after the test.

    Its pods are force-deleted at once so the GPUs they held are free for the next
    test; the namespace itself finishes terminating in the background (the
    namespace controller takes 5-10s, which the next test need not wait for).
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(k8s_client)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"paretoscale-e2e": "true"})
        )
    )
    # The ServiceAccount admission plugin refuses pods until the controller-manager
    # has created the namespace's default ServiceAccount.
    _wait_for(
        lambda: _exists(lambda: core.read_namespaced_service_account("default", name)),
        what=f"serviceaccount {name}/default",
    )
    try:
        yield name
    finally:
        try:
            # Terminating first, so no controller can create pods in it any more.
            core.delete_namespace(name)
            core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise
        _wait_for(
            lambda: not core.list_namespaced_pod(name).items,
            timeout_s=60,
            what=f"pods of namespace {name} to be deleted",
        )


def _exists(read: Callable[[], Any]) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
