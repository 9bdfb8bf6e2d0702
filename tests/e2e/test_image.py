"""The operator image, built from operator/Dockerfile without Docker, runs the operator on the
local control plane as the chart's pod would.

`hack/image build` makes the image with buildah (vfs storage, chroot isolation) on a Debian base
made with debootstrap, since no registry is reachable; `hack/image run` runs the image's
entrypoint, environment and user in a chroot of its root filesystem (read-only, a tmpfs /tmp).
The operator gets what the kubelet would give the chart's container: the Deployment's
environment, the ServiceAccount's token and CA at /var/run/secrets/kubernetes.io/serviceaccount
and KUBERNETES_SERVICE_HOST/PORT (so the in-cluster login is used), and `args: [run]`; with
nothing but the chart's RBAC it must roll a ModelDeployment out. Only the metrics and health
ports are free ones of this host (the chroot shares its network).
"""

# The chart's fixtures are imported from test_chart and taken as parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.operator_harness import Cluster, free_port
from tests.e2e.test_chart import (  # noqa: F401 (fixtures, used by name)
    RELEASE,
    ChartOperator,
    Kube,
    admin,
    assistant,
    chart_environment,
    helm,
    installed,
    other_namespace,
    sims,
    stable_on,
    until,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
IMAGE = ROOT / "hack" / "image"
BUILD_TIMEOUT_S = 1800  # a cold build: debootstrap, then pip inside buildah
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
UID = 10001
COMPILERS = ("cc", "gcc", "c++", "g++", "clang", "tcc")


@dataclasses.dataclass(frozen=True)
class Image:
    name: str
    size: str
    rootfs: Path


def image_script(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IMAGE), *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture(scope="module")
def image() -> Image:
    """The image, built (or found up to date) by hack/image."""
    if os.geteuid() != 0:
        pytest.skip("hack/image needs root (buildah's vfs storage and chroot)")
    built = image_script("build", timeout_s=BUILD_TIMEOUT_S)
    assert built.returncode == 0, built.stderr[-6000:]
    name, size = built.stdout.strip().splitlines()[-1].split("\t")
    rootfs = image_script("rootfs")
    assert rootfs.returncode == 0, rootfs.stderr
    return Image(name, size, Path(rootfs.stdout.strip()))


def run_in_image(*args: str) -> subprocess.CompletedProcess[str]:
    return image_script("run", *args)


def test_image_runs_as_uid_10001_on_a_read_only_root_without_compilers(
    image: Image, tmp_path: Path
) -> None:
    assert image.name.startswith("localhost/paretoscale:") and image.size
    # No compiler on any PATH directory, and no GCC back end (cc1) anywhere under /usr/lib.
    for directory in ("usr/local/bin", "usr/bin", "bin", "usr/local/sbin", "usr/sbin", "sbin"):
        for compiler in COMPILERS:
            assert not (image.rootfs / directory / compiler).exists(), f"/{directory}/{compiler}"
    assert not list((image.rootfs / "usr" / "lib").glob("gcc/*/*/cc1"))
    assert (image.rootfs / "opt" / "venv" / "bin" / "paretoscale").is_file()

    identity = run_in_image("--entrypoint", "/usr/bin/id", "--", "-u")
    assert identity.returncode == 0, identity.stderr
    assert identity.stdout.strip() == str(UID)
    # The root filesystem is read-only, /tmp is writable (as the chart mounts them).
    root = run_in_image("--entrypoint", "/bin/sh", "--", "-c", "touch /opt/x")
    assert root.returncode != 0 and "Read-only file system" in root.stderr, root
    tmp = run_in_image("--entrypoint", "/bin/sh", "--", "-c", "touch /tmp/x && echo $HOME")
    assert tmp.returncode == 0 and tmp.stdout.strip() == "/tmp", tmp
    # A volume lands inside the image's root, through its symlinks (/var/run -> /run), read-only.
    (tmp_path / "hello").write_text("hello")
    tmp_path.chmod(0o755)
    target = f"/var/run/paretoscale-e2e-{uuid.uuid4().hex[:8]}"
    read = run_in_image(
        "-v", f"{tmp_path}:{target}", "--entrypoint", "/bin/sh", "--",
        "-c", f"cat {target}/hello && ! touch {target}/x 2>/dev/null",
    )  # fmt: skip
    assert read.returncode == 0 and read.stdout == "hello", read
    assert not Path("/run", target.rsplit("/", 1)[1]).exists(), "a volume escaped to the host"
    # The entrypoint is the installed console script.
    usage = run_in_image("--", "run", "--help")
    assert usage.returncode == 0 and "--tick-seconds" in usage.stdout, usage


def service_account_mount(kube: Kube, namespace: str, directory: Path) -> tuple[str, int]:
    """What the kubelet projects into the chart's pod: a token of the chart's ServiceAccount,
    the cluster CA and the namespace. Returns the API server's host and port (the Service
    address a pod would get in KUBERNETES_SERVICE_HOST/PORT)."""
    token = kube.ok("create", "token", RELEASE, "--namespace", namespace, "--duration", "10m")
    config = json.loads(kube.ok("config", "view", "--raw", "--minify", "-o", "json"))
    (cluster,) = config["clusters"]
    directory.mkdir(parents=True)
    (directory / "token").write_text(token.strip())
    ca = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    (directory / "ca.crt").write_bytes(ca)
    (directory / "namespace").write_text(namespace)
    server = urllib.parse.urlsplit(cluster["cluster"]["server"])
    assert server.hostname and server.port, server
    return server.hostname, server.port


class ImageOperator(ChartOperator):
    """The operator as the chart's container runs it, from the image (hack/image run)."""

    def __init__(
        self, namespace: str, log_dir: Path, environment: dict[str, str], volume: str
    ) -> None:
        super().__init__("", namespace, log_dir, environment)
        self.volume = volume

    def start(self) -> ImageOperator:
        self.metrics_port, self.health_port = free_port(), free_port()
        environment = self.environment | {
            "PARETOSCALE_METRICS_PORT": str(self.metrics_port),
            "PARETOSCALE_HEALTH_PORT": str(self.health_port),
            "PARETOSCALE_TICK_SECONDS": "1",
        }
        argv = [str(IMAGE), "run", "-v", self.volume]
        for name, value in sorted(environment.items()):
            argv += ["-e", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            # No ARGs: the image's CMD, `run`, as the chart's `args: [run]`.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self


@pytest.fixture
def image_operators() -> Iterator[list[ImageOperator]]:
    started: list[ImageOperator] = []
    try:
        yield started
    finally:
        for op in started:
            op.stop()


def proc_uids(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [row for row in status.splitlines() if row.startswith("Uid:")]
    return [int(n) for n in line.split()[1:]]


def test_operator_from_the_image_rolls_out_on_the_chart_rbac(
    image: Image,
    admin: Kube,
    namespace: str,
    other_namespace: str,
    installed: Any,
    tmp_path: Path,
    k8s_client: Any,
    image_operators: list[ImageOperator],
    sims: None,
) -> None:
    installed("--set-json", f"watchNamespaces={json.dumps([other_namespace])}", wait=False)
    host, port = service_account_mount(admin, namespace, tmp_path / "serviceaccount")
    environment = chart_environment(admin, namespace) | {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
    }
    op = ImageOperator(
        other_namespace,
        tmp_path / "op",
        environment,
        f"{tmp_path / 'serviceaccount'}:{SERVICE_ACCOUNT_DIR}",
    ).start()
    image_operators.append(op)
    kube = Cluster(k8s_client, other_namespace)

    kube.apply(assistant(other_namespace, 12))
    until(lambda: stable_on(kube, "fp8"), 120, "Stable on fp8", op)
    assert kube.replicas() == {"assistant-fp8": 1}
    status = kube.status("assistant")
    assert status.get("decision"), status
    assert op.proc is not None and op.proc.poll() is None, op.log()
    # It is the image's process: its root is the image's root filesystem, it runs as uid 10001,
    # and it answers the chart's liveness probe.
    assert os.readlink(f"/proc/{op.pid}/root") == str(image.rootfs)
    assert proc_uids(op.pid) == [UID] * 4
    assert op.healthz() == 200
    assert not op.denied(), "\n".join(op.denied())
