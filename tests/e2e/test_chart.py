"""The Helm chart on the local control plane: the API server accepts what it renders, it
installs, its ServiceAccount can do what the operator does and cannot read Secrets, and the
real operator runs on exactly those permissions, with and without leader election.

KWOK fakes the operator's pod (no container runs). So the permissions are checked twice: by
the API server's verdicts (`kubectl auth can-i`, with a TokenRequest token of the chart's
ServiceAccount), and by running the real operator (`python -m paretoscale.cli run`) on this
host with that token and the environment the chart's Deployment gives its container: it must
roll a ModelDeployment out, switch, delete a removed variant, post Events, and never log a 403.
Two such processes with leader election share the chart's Lease: one acts, the other takes over
when the first is killed. The chart's CRDs are applied first, as `helm install` does; the
Prometheus Operator's kinds do not exist on this cluster, so the monitors stay off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.operator_harness import Cluster, OperatorProcess, example, free_port, wait
from tests.unit.test_chart import find_helm

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "paretoscale"
EXAMPLE = ROOT / "examples" / "assistant-llama-8b.yaml"
RELEASE = "paretoscale"  # the ServiceAccount, the Lease and the Deployment are named after it
LEASE_ROLE = f"{RELEASE}-leader-election"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
TIMEOUT_S = 180


class Kube:
    """kubectl and helm against one cluster, as one identity (the admin, or a token)."""

    def __init__(self, kubeconfig: str, helm: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.helm_binary = helm

    def _run(self, argv: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            env={**os.environ, "KUBECONFIG": self.kubeconfig},
        )

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self._run([KUBECTL, *args], stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.kubectl(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.helm_binary
        return self._run([self.helm_binary, *args], None)

    def can_i(self, verb: str, resource: str, *flags: str) -> bool:
        """`kubectl auth can-i`: exit 0 and "yes", or exit 1 and "no"."""
        result = self.kubectl("auth", "can-i", verb, resource, *flags)
        answer = result.stdout.strip()
        assert answer in ("yes", "no"), result.stderr
        return answer == "yes"


@pytest.fixture(scope="module")
def helm() -> str:
    found = find_helm()
    if found is None:
        pytest.skip("no helm binary: set PARETOSCALE_HELM or run `hack/cluster build`")
    return found


@pytest.fixture(scope="module")
def admin(cluster: Any, helm: str) -> Kube:
    """The cluster's admin, with the chart's CRDs applied and Established."""
    kube = Kube(cluster.kubeconfig, helm)
    crds = str(CHART / "crds")
    kube.ok("apply", "--server-side", "--force-conflicts", "-f", crds)
    kube.ok("wait", "--for", "condition=Established", "--timeout", "60s", "-f", crds)
    return kube


@pytest.fixture
def other_namespace(admin: Kube) -> Iterator[str]:
    """A second fresh namespace (the `namespace` fixture gives the first)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    admin.ok("create", "namespace", name)
    try:
        yield name
    finally:
        admin.kubectl("delete", "namespace", name, "--wait=false")


def template(admin: Kube, namespace: str, *flags: str) -> str:
    result = admin.helm("template", RELEASE, str(CHART), "--namespace", namespace, *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def installed(admin: Kube, namespace: str) -> Iterator[Any]:
    """`install(*flags, wait=True)`: helm install the chart into `namespace` (with --wait:
    until the operator's fake pods are Ready); uninstalled afterwards."""
    releases: list[str] = []

    def install(*flags: str, wait: bool = True) -> str:
        waiting = ["--wait", "--timeout", "120s"] if wait else []
        result = admin.helm(
            "install", RELEASE, str(CHART), "--namespace", namespace, *waiting, *flags
        )
        assert result.returncode == 0, result.stderr
        releases.append(RELEASE)
        return result.stdout

    try:
        yield install
    finally:
        for release in releases:
            admin.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s")


def as_service_account(admin: Kube, namespace: str, tmp_path: Path) -> Kube:
    """kubectl with a TokenRequest token of the chart's ServiceAccount, and nothing else."""
    token = admin.ok("create", "token", RELEASE, "--namespace", namespace, "--duration", "10m")
    config = json.loads(admin.ok("config", "view", "--raw", "--minify", "-o", "json"))
    (cluster,) = config["clusters"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "sa", "user": {"token": token.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
        "current-context": "sa",
    }
    path = tmp_path / "service-account.kubeconfig"
    path.write_text(json.dumps(kubeconfig))
    path.chmod(0o600)
    return Kube(str(path))


def example_in(namespace: str) -> str:
    """The assistant example as YAML, moved to `namespace`."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["mode"] = "Recommend"
    return yaml.safe_dump(doc)


HA = ["--set", "leaderElection.enabled=true", "--set", "replicaCount=2"]
SCOPES = {
    "cluster": lambda ns, other: [],
    "cluster-leader-election": lambda ns, other: HA,
    "namespaces": lambda ns, other: ["--set-json", f"watchNamespaces={json.dumps([ns, other])}"],
    "namespaces-leader-election": lambda ns, other: [
        "--set-json", f"watchNamespaces={json.dumps([other])}", *HA,
    ],
}  # fmt: skip


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
def test_rendered_chart_passes_server_side_dry_run(
    admin: Kube, namespace: str, other_namespace: str, scope: Any
) -> None:
    flags = [
        *scope(namespace, other_namespace),
        "--set", "prometheus.url=https://prometheus.monitoring.svc:9090",
        "--set", "prometheus.auth.type=serviceAccountToken",
        "--set", "prometheus.auth.serviceAccountToken.audience=prometheus",
        "--set-json", 'priceFallback={"H100": 2.69}',
        "--set-json", 'queries={"requests_per_second": "sum(rate(vllm:request_success_total[2m]))"}',
    ]  # fmt: skip
    rendered = template(admin, namespace, *flags)
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    out = admin.ok("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=rendered)
    assert out.count("(server dry run)") == len(objects), out


def lease_can_i(sa: Kube, verb: str, namespace: str, name: str | None = None) -> bool:
    resource = "leases.coordination.k8s.io" + (f"/{name}" if name else "")
    return sa.can_i(verb, resource, "-n", namespace)


def test_install_cluster_scope_grants_what_the_operator_does_and_no_secrets(
    admin: Kube, namespace: str, other_namespace: str, installed: Any, tmp_path: Path
) -> None:
    notes = installed(*HA)
    assert "kubectl get mdep -A" in notes and "Recommend" in notes
    assert f"get lease {RELEASE}" in notes
    deployment = json.loads(admin.ok("get", "deployment", RELEASE, "-n", namespace, "-o", "json"))
    assert deployment["status"].get("availableReplicas") == 2, deployment["status"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"

    subject = f"system:serviceaccount:{namespace}:{RELEASE}"
    assert not admin.can_i("list", "secrets", f"--as={subject}", "--all-namespaces")
    assert not admin.can_i("get", "secrets", f"--as={subject}", "-n", namespace)

    sa = as_service_account(admin, namespace, tmp_path)
    assert sa.ok("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}") == subject
    for ns in (namespace, other_namespace):
        assert not sa.can_i("list", "secrets", "-n", ns)
        assert not sa.can_i("watch", "secrets", "-n", ns)
        assert sa.can_i("watch", "modeldeployments.paretoscale.io", "-n", ns)
        assert sa.can_i(
            "update", "modeldeployments.paretoscale.io", "--subresource=status", "-n", ns
        )
        assert sa.can_i("create", "deployments.apps", "-n", ns)
        assert sa.can_i("delete", "deployments.apps", "-n", ns)
        assert sa.can_i("patch", "poddisruptionbudgets.policy", "-n", ns)
        assert sa.can_i("delete", "poddisruptionbudgets.policy", "-n", ns)
        assert sa.can_i("create", "events", "-n", ns)
        # The operator lists and watches pods (to name Pending ones; the GPU inventory) and
        # nodes (the inventory), but never writes them,
        # and never writes a spec it serves.
        assert sa.can_i("list", "pods", "-n", ns) and sa.can_i("watch", "pods", "-n", ns)
        assert not sa.can_i("create", "pods", "-n", ns)
        assert not sa.can_i("delete", "pods", "-n", ns)
        assert sa.can_i("watch", "nodes") and not sa.can_i("patch", "nodes")
        assert not sa.can_i("patch", "modeldeployments.paretoscale.io", "-n", ns)
        assert not sa.can_i("delete", "modeldeployments.paretoscale.io", "-n", ns)
    # Cluster-wide, kopf reads no Namespaces.
    assert not sa.can_i("list", "namespaces")
    assert sa.can_i("watch", "customresourcedefinitions.apiextensions.k8s.io")
    assert not sa.can_i("create", "clusterroles.rbac.authorization.k8s.io")
    # Its own Lease in the release namespace, and no other.
    assert lease_can_i(sa, "create", namespace)
    assert lease_can_i(sa, "get", namespace, RELEASE)
    assert lease_can_i(sa, "update", namespace, RELEASE)
    assert not lease_can_i(sa, "update", namespace, "kube-controller-manager")
    assert not lease_can_i(sa, "delete", namespace, RELEASE)
    assert not lease_can_i(sa, "create", other_namespace)
    assert not lease_can_i(sa, "update", "kube-system", "kube-scheduler")

    # Not only the verdicts: real requests with the token.
    denied = sa.kubectl("get", "secrets", "-n", namespace)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr, denied.stderr
    admin.ok("apply", "-f", "-", stdin=example_in(other_namespace))
    # The operator replaces the status at the resourceVersion it read (actuate/kube.py).
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    sa_api = k8s_config.new_client_from_config(config_file=str(sa.kubeconfig))
    custom = k8s.CustomObjectsApi(sa_api)
    md = custom.get_namespaced_custom_object(
        "paretoscale.io", "v1alpha1", other_namespace, "modeldeployments", "assistant"
    )
    custom.replace_namespaced_custom_object_status(
        "paretoscale.io", "v1alpha1", other_namespace, "modeldeployments", "assistant",
        {
            "apiVersion": "paretoscale.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": "assistant",
                "namespace": other_namespace,
                "resourceVersion": md["metadata"]["resourceVersion"],
            },
            "status": {"phase": "Stable", "activeVariant": "fp8"},
        },
    )  # fmt: skip
    status = json.loads(admin.ok("get", "mdep", "assistant", "-n", other_namespace, "-o", "json"))
    assert status["status"]["activeVariant"] == "fp8"
    sa.ok(
        "create", "deployment", "probe", "--image=registry.k8s.io/pause:3.10",
        "-n", other_namespace, "--dry-run=server",
    )  # fmt: skip


def test_install_namespace_scope_is_confined_to_the_watched_namespaces(
    admin: Kube, namespace: str, other_namespace: str, installed: Any, tmp_path: Path
) -> None:
    installed("--set-json", f"watchNamespaces={json.dumps([other_namespace])}", *HA)
    role = json.loads(admin.ok("get", "role", LEASE_ROLE, "-n", namespace, "-o", "json"))
    assert {g for rule in role["rules"] for g in rule["apiGroups"]} == {"coordination.k8s.io"}

    sa = as_service_account(admin, namespace, tmp_path)
    # The watched namespace: what the operator does, nothing more.
    assert sa.can_i(
        "update", "modeldeployments.paretoscale.io", "--subresource=status", "-n", other_namespace
    )
    assert sa.can_i("create", "deployments.apps", "-n", other_namespace)
    assert sa.can_i("create", "poddisruptionbudgets.policy", "-n", other_namespace)
    assert not sa.can_i("list", "secrets", "-n", other_namespace)
    assert sa.can_i("list", "pods", "-n", other_namespace)
    assert sa.can_i("watch", "pods", "-n", other_namespace)  # the GPU inventory
    assert not sa.can_i("delete", "pods", "-n", other_namespace)
    assert not lease_can_i(sa, "create", other_namespace)
    # Anywhere else, including the release's own namespace: nothing namespaced but the Lease.
    for ns in (namespace, "default"):
        assert not sa.can_i(
            "update", "modeldeployments.paretoscale.io", "--subresource=status", "-n", ns
        )
        assert not sa.can_i("create", "deployments.apps", "-n", ns)
        assert not sa.can_i("create", "poddisruptionbudgets.policy", "-n", ns)
        assert not sa.can_i("list", "secrets", "-n", ns)
    assert not sa.can_i("list", "modeldeployments.paretoscale.io", "--all-namespaces")
    assert lease_can_i(sa, "create", namespace) and lease_can_i(sa, "update", namespace, RELEASE)
    assert not lease_can_i(sa, "create", "default")
    # The cluster-scoped reads kopf needs: CRDs, and Namespaces when it is not cluster-wide.
    assert sa.can_i("watch", "customresourcedefinitions.apiextensions.k8s.io")
    assert sa.can_i("list", "namespaces") and sa.can_i("watch", "namespaces")
    assert not sa.can_i("delete", "namespaces")


# ------------------------------------------------- the real operator on the chart's RBAC --------

FAST = {
    "minDwellSeconds": 0,
    "switchMargin": 0.05,
    "readyTimeoutSeconds": 60,
    "verifySeconds": 2,
    "drainGraceSeconds": 2,
}
# A denied request as kopf, the kubernetes client or our own warnings print it.
DENIED = re.compile(r"forbidden|[(=:]\s*403\b|not enough permissions", re.IGNORECASE)


def chart_environment(admin: Kube, namespace: str) -> dict[str, str]:
    """The PARETOSCALE_* environment of the installed Deployment's container, with the
    downward API resolved as the kubelet would for a pod in `namespace`."""
    deployment = json.loads(admin.ok("get", "deployment", RELEASE, "-n", namespace, "-o", "json"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    pod_fields = {"metadata.namespace": namespace}
    out = {}
    for var in container.get("env", []):
        if "value" in var:
            out[var["name"]] = var["value"]
        else:
            out[var["name"]] = pod_fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
    assert all(name.startswith("PARETOSCALE_") for name in out), out
    return out


class ChartOperator(OperatorProcess):
    """`paretoscale run -n NAMESPACE` as the chart runs it: the container's environment and a
    token of the chart's ServiceAccount (nothing of this test's own environment); only the
    metrics and health ports are free ones of this host."""

    def __init__(
        self, kubeconfig: str, namespace: str, log_dir: Path, environment: dict[str, str]
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(kubeconfig, namespace, log_dir, "--tick-seconds", "1")
        self.environment = environment

    def start(self) -> ChartOperator:
        self.metrics_port, self.health_port = free_port(), free_port()
        cmd = [
            sys.executable, "-m", "paretoscale.cli", "run", "-n", self.namespace,
            "--kubeconfig", self.kubeconfig,
            "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port),
            *self.extra,
        ]  # fmt: skip
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PARETOSCALE_") and k != "KUBECONFIG"
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=inherited | self.environment
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def full_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def denied(self) -> list[str]:
        return [line for line in self.full_log().splitlines() if DENIED.search(line)]

    def healthz(self) -> int | None:
        """The HTTP status of /healthz (what the chart's liveness probe asks), None if closed."""
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None


@pytest.fixture
def sims(cluster: Any, other_namespace: str, tmp_path: Path) -> Iterator[None]:
    """The simulator bridge for the watched namespace: vLLM pods turn Ready only once their
    simulator answers /health, as vLLM's would (hack/kubecp/kwok-stages-vllm.yaml)."""
    from paretoscale.sim.bridge import Bridge

    sd = tmp_path / "file_sd"
    sd.mkdir(exist_ok=True)
    with Bridge(cluster.kubeconfig, sd, namespace=other_namespace, state_dir=tmp_path):
        yield


@pytest.fixture
def operators() -> Iterator[list[ChartOperator]]:
    """Operator processes a test starts; all stopped afterwards."""
    started: list[ChartOperator] = []
    try:
        yield started
    finally:
        for op in started:
            op.stop()


def until(cond: Any, timeout_s: float, what: str, *ops: ChartOperator) -> Any:
    """`wait` for `cond`, failing at once, with the line, when an operator logs a denial."""

    def checked() -> Any:
        for op in ops:
            if denied := op.denied():
                pytest.fail(f"operator denied while waiting for {what}:\n" + "\n".join(denied))
        return cond()

    return wait(checked, timeout_s, what, ops[0] if ops else None)


def assistant(namespace: str, rate: float) -> dict[str, Any]:
    """The assistant example at `rate` req/s, with a rollout fast enough for a test."""
    doc = example("assistant-llama-8b.yaml", namespace, rollout=dict(FAST))
    doc["spec"]["traffic"]["expectedRequestsPerSecond"] = rate
    return doc


def stable_on(kube: Cluster, variant: str) -> Any:
    s = kube.status("assistant")
    return s.get("phase") == "Stable" and s.get("activeVariant") == variant and s


def test_operator_runs_on_the_chart_service_account_without_a_403(
    admin: Kube,
    namespace: str,
    other_namespace: str,
    installed: Any,
    tmp_path: Path,
    k8s_client: Any,
    operators: list[ChartOperator],
    sims: None,
) -> None:
    """Everything the operator does, with nothing but the chart's RBAC (namespace scope)."""
    installed("--set-json", f"watchNamespaces={json.dumps([other_namespace])}", wait=False)
    sa = as_service_account(admin, namespace, tmp_path)
    assert not sa.can_i("list", "secrets", "-n", other_namespace)
    environment = chart_environment(admin, namespace)
    assert "PARETOSCALE_LEADER_ELECTION" not in environment
    op = ChartOperator(sa.kubeconfig, other_namespace, tmp_path / "op", environment).start()
    operators.append(op)
    kube = Cluster(k8s_client, other_namespace)

    # First rollout: the Deployment and the Service are created (server-side apply), status
    # patched, Events posted.
    kube.apply(assistant(other_namespace, 12))
    until(lambda: stable_on(kube, "fp8"), 90, "Stable on fp8", op)
    assert kube.replicas() == {"assistant-fp8": 1}
    assert kube.selector("assistant") == {
        "paretoscale.io/modeldeployment": "assistant",
        "paretoscale.io/variant": "fp8",
    }
    # A switch: a second Deployment, the Service's selector moves, the old one scales to zero.
    kube.apply(assistant(other_namespace, 2))
    until(lambda: stable_on(kube, "w4a16-l40s"), 90, "Stable on w4a16-l40s", op)
    # The old variant leaves the spec: its Deployment is deleted.
    doc = assistant(other_namespace, 2)
    doc["spec"]["variants"] = [v for v in doc["spec"]["variants"] if v["name"] != "fp8"]
    kube.apply(doc)
    until(lambda: "assistant-fp8" not in kube.deployments(), 60, "assistant-fp8 deleted", op)
    assert kube.replicas() == {"assistant-w4a16-l40s": 1}
    # Each variant's PodDisruptionBudget is applied beside its Deployment and deleted with it.
    from kubernetes import client as k8s

    policy = k8s.PolicyV1Api(k8s_client)

    def pdbs() -> set[str]:
        items = policy.list_namespaced_pod_disruption_budget(other_namespace).items
        return {p.metadata.name for p in items}

    until(lambda: pdbs() == {"assistant-w4a16-l40s"}, 30, "only the w4a16-l40s PDB left", op)
    assert {"RolloutStarted", "Switched"} <= {r for _, r, _ in kube.events()}
    assert op.proc is not None and op.proc.poll() is None, op.log()
    assert not op.denied(), "\n".join(op.denied())
    # Nothing but the status subresource was written to the ModelDeployment.
    managers = {
        m["manager"]
        for m in kube.md("assistant")["metadata"]["managedFields"]
        if m.get("subresource") != "status"
    }
    assert "paretoscale" not in managers and not kube.md("assistant")["metadata"].get("finalizers")


def lease(admin: Kube, namespace: str) -> dict[str, Any]:
    found = admin.kubectl("get", "lease", RELEASE, "-n", namespace, "-o", "json")
    return dict(json.loads(found.stdout)) if found.returncode == 0 else {}


def holder(admin: Kube, namespace: str) -> str:
    return str(lease(admin, namespace).get("spec", {}).get("holderIdentity") or "")


def holds(op: ChartOperator, identity: str) -> bool:
    """The operator's identity is HOSTNAME-PID-NONCE (controller/startup.py)."""
    return re.search(rf"-{op.pid}-[0-9a-f]+$", identity) is not None


def test_leader_election_one_replica_acts_and_another_takes_over(
    admin: Kube,
    namespace: str,
    other_namespace: str,
    installed: Any,
    tmp_path: Path,
    k8s_client: Any,
    operators: list[ChartOperator],
    sims: None,
) -> None:
    installed("--set-json", f"watchNamespaces={json.dumps([other_namespace])}", *HA, wait=False)
    sa = as_service_account(admin, namespace, tmp_path)
    environment = chart_environment(admin, namespace)
    assert environment["PARETOSCALE_LEADER_ELECTION"] == "true"
    assert environment["PARETOSCALE_LEASE_NAME"] == RELEASE
    assert environment["PARETOSCALE_LEASE_NAMESPACE"] == namespace
    for name in ("a", "b"):
        op = ChartOperator(sa.kubeconfig, other_namespace, tmp_path / name, environment)
        operators.append(op.start())
    kube = Cluster(k8s_client, other_namespace)

    identity = until(lambda: holder(admin, namespace), 30, "a Lease holder", *operators)
    (leader,) = [op for op in operators if holds(op, identity)]
    (follower,) = [op for op in operators if op is not leader]
    kube.apply(assistant(other_namespace, 12))
    until(lambda: stable_on(kube, "fp8"), 90, "Stable on fp8", leader, follower)
    # The leader renews; the follower waits without acting (it never listed the cache).
    renewed = lease(admin, namespace)["spec"]["renewTime"]
    until(
        lambda: lease(admin, namespace)["spec"]["renewTime"] != renewed,
        15,
        "the leader to renew",
        leader,
        follower,
    )
    assert holder(admin, namespace) == identity
    assert "cache synced" in leader.full_log() and "holds lease" in leader.full_log()
    assert "cache synced" not in follower.full_log(), follower.log()
    assert "holds lease" not in follower.full_log(), follower.log()
    assert follower.proc is not None and follower.proc.poll() is None, follower.log()

    # The leader dies without a word: the follower takes the Lease over once it expires
    # (15 s after the last renewal) and acts.
    transitions = lease(admin, namespace)["spec"].get("leaseTransitions") or 0
    # (lease 15 s + retry 5 s: the 30 s wait below is the deadline for the takeover)
    leader.kill()
    new_identity = until(
        lambda: (h := holder(admin, namespace)) != identity and h, 30, "a new holder", follower
    )
    assert holds(follower, new_identity), new_identity
    assert (lease(admin, namespace)["spec"].get("leaseTransitions") or 0) > transitions
    kube.apply(assistant(other_namespace, 2))
    until(lambda: stable_on(kube, "w4a16-l40s"), 90, "the new leader switches", follower)
    for op in operators:
        assert not op.denied(), "\n".join(op.denied())


def test_standby_replica_answers_the_liveness_probe(
    admin: Kube, namespace: str, installed: Any, tmp_path: Path, operators: list[ChartOperator]
) -> None:
    installed("--set-json", f"watchNamespaces={json.dumps([namespace])}", *HA, wait=False)
    # Another replica holds the Lease for the next hour.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    admin.ok(
        "create", "-f", "-",
        stdin=json.dumps({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": RELEASE, "namespace": namespace},
            "spec": {
                "holderIdentity": "another-replica", "leaseDurationSeconds": 3600,
                "acquireTime": now, "renewTime": now,
            },
        }),
    )  # fmt: skip
    sa = as_service_account(admin, namespace, tmp_path)
    op = ChartOperator(
        sa.kubeconfig, namespace, tmp_path / "standby", chart_environment(admin, namespace)
    )
    operators.append(op.start())
    wait(lambda: "settings" in op.full_log(), 30, "the operator started", op)
    # Generous next to the chart's probe (initialDelaySeconds 10, then every 20 s).
    status = wait(lambda: op.healthz(), 15, "/healthz to answer", op)
    assert status == 200
