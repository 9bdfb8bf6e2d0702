"""The Helm chart (charts/paretoscale) and the operator image (operator/Dockerfile).

Without a cluster: `helm lint --strict`, `helm template` for both scopes and with the monitors
on, RBAC that is exactly what the operator does (no Secrets, no wildcards), the environment the
Deployment sets parses into OperatorSettings, the values schema refuses bad values, the chart's
CRDs are the generated ones and valid for the API server, and the Dockerfile defaults to a
pinned base and runs as the chart's user. tests/e2e/test_chart.py installs the chart into the
local cluster; tests/e2e/test_image.py builds the Dockerfile (hack/image) and runs the operator
from it.

helm is found through PARETOSCALE_HELM, else the newest complete
~/.cache/paretoscale/bin/helm-*/helm that `hack/cluster build` installs, else PATH; the tests
that need it are skipped, saying so, only when there is none.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.config import OperatorSettings

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "paretoscale"
GENERATED_CRD = ROOT / "crds" / "modeldeployments.paretoscale.io.yaml"
CHART_CRD = CHART / "crds" / "modeldeployments.paretoscale.io.yaml"
DOCKERFILE = ROOT / "operator" / "Dockerfile"
RELEASE, NAMESPACE = "paretoscale", "ps-system"
HELM_TIMEOUT_S = 60


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))


def find_helm() -> str | None:
    """The helm binary to test with: $PARETOSCALE_HELM, the hack/cluster cache, or PATH."""
    explicit = os.environ.get("PARETOSCALE_HELM")
    if explicit:
        return explicit
    cache = Path(
        os.environ.get("PARETOSCALE_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paretoscale"
    )
    bin_root = Path(os.environ.get("PARETOSCALE_BIN_DIR") or cache / "bin")
    built = [
        p
        for p in bin_root.glob("helm-*/helm")
        if (p.parent / ".complete").exists() and os.access(p, os.X_OK)
    ]
    if built:
        return str(max(built, key=_version_key))
    return shutil.which("helm")


@pytest.fixture(scope="module")
def helm() -> str:
    found = find_helm()
    if found is None:
        pytest.skip(
            "no helm binary: set PARETOSCALE_HELM, or run `hack/cluster build` (installs "
            "~/.cache/paretoscale/bin/helm-<version>/helm), or put helm on PATH"
        )
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=False
    )


def set_flags(values: dict[str, Any]) -> list[str]:
    """`--set-json key=json` flags for a flat mapping of dotted keys to values."""
    flags = []
    for key, value in values.items():
        flags += ["--set-json", f"{key}={json.dumps(value)}"]
    return flags


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="module")
def render(helm: str) -> Render:
    """`render(key=value, ...)`: the chart's objects from `helm template` with those values."""

    def _render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = run_helm(
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            *set_flags(values or {}),
        )
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


def one(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: Iterable[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return sorted((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs)


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (only,) = pod["containers"]
    return dict(only)


def env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"] if "value" in e}


def env_names(docs: list[dict[str, Any]]) -> set[str]:
    """Every variable the container gets, with a value or from the downward API."""
    return {e["name"] for e in container(docs)["env"]}


def downward_api(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Variables from a fieldRef, name -> field path."""
    return {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container(docs)["env"]
        if "fieldRef" in e.get("valueFrom", {})
    }


FULL_VALUES: dict[str, Any] = {
    "watchNamespaces": ["team-a", "team-b"],
    "leaderElection.enabled": True,
    "replicaCount": 2,
    "prometheus.url": "https://prometheus.monitoring.svc:9090",
    "prometheus.auth.type": "serviceAccountToken",
    "prometheus.auth.serviceAccountToken.audience": "prometheus",
    "prometheus.ca.configMapName": "prometheus-ca",
    "tickSeconds": 15,
    "defaultMode": "Recommend",
    "priceFallback": {"H100": 2.69, "L40S": 1.86},
    "queries": {"requests_per_second": "sum by (namespace) (rate(vllm:request_success_total[2m]))"},
    "podMonitor.enabled": True,
    "metrics.serviceMonitor.enabled": True,
    "nodeSelector": {"pool": "system"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {}},
    "podAnnotations": {"example.com/team": "platform"},
}


# ----------------------------------------------------------------------------- CRDs --------


def test_chart_crd_is_the_generated_crd() -> None:
    """Helm installs crds/ verbatim; the chart's copy must be byte-identical to crds/."""
    if os.environ.get("PARETOSCALE_UPDATE_GOLDEN"):
        shutil.copyfile(GENERATED_CRD, CHART_CRD)
    assert CHART_CRD.read_bytes() == GENERATED_CRD.read_bytes(), (
        "charts/paretoscale/crds/ is stale: cp crds/modeldeployments.paretoscale.io.yaml "
        "charts/paretoscale/crds/ (or run the unit tests with PARETOSCALE_UPDATE_GOLDEN=1)"
    )


def test_chart_crds_are_only_ours() -> None:
    """HA is a Lease (leader election), not kopf peering: no kopf.dev CRDs any more."""
    names = sorted(p.name for p in (CHART / "crds").iterdir())
    assert names == ["modeldeployments.paretoscale.io.yaml"]


# JSONSchemaProps of apiextensions.k8s.io/v1 (OpenAPI v3.0, not JSON Schema 2020-12): the keys
# a CRD schema may use, and those that must be booleans there.
SCHEMA_KEYS = {
    "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required", "items",
    "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "nullable",
    "example", "externalDocs",
}  # fmt: skip
BOOLEAN_KEYS = {
    "exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "nullable",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
}  # fmt: skip
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def _schema_problems(node: dict[str, Any], path: str) -> Iterator[str]:
    for key, value in node.items():
        where = f"{path}.{key}"
        if key not in SCHEMA_KEYS and not key.startswith("x-kubernetes-"):
            yield f"{where}: not a JSONSchemaProps field"
        elif key in BOOLEAN_KEYS and not isinstance(value, bool):
            yield f"{where}: must be a boolean in apiextensions/v1, got {value!r}"
        elif key == "type" and value not in TYPES:
            yield f"{where}: unknown type {value!r}"
        elif key == "properties":
            for name, child in value.items():
                yield from _schema_problems(child, f"{where}.{name}")
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            yield from _schema_problems(value, where)
        elif key in ("allOf", "oneOf", "anyOf"):
            for i, child in enumerate(value):
                yield from _schema_problems(child, f"{where}[{i}]")


@pytest.mark.parametrize("path", [CHART_CRD], ids=lambda p: p.name)
def test_chart_crds_are_valid_apiextensions_v1(path: Path) -> None:
    """The API server decodes crds/ strictly: e.g. exclusiveMinimum is a boolean there."""
    problems: list[str] = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        assert (
            doc["apiVersion"] == "apiextensions.k8s.io/v1"
            and doc["kind"] == "CustomResourceDefinition"
        )
        for version in doc["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            problems += _schema_problems(schema, f"{doc['metadata']['name']}/{version['name']}")
    assert not problems, "CRD schema rejected by the API server:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------- lint --------


@pytest.mark.parametrize("values", [{}, FULL_VALUES], ids=["defaults", "everything-on"])
def test_helm_lint_strict_is_clean(helm: str, values: dict[str, Any]) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *set_flags(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_chart_versions_match_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2" and chart["name"] == "paretoscale"
    assert chart["appVersion"] == project["version"], "the default image tag is the appVersion"


# -------------------------------------------------------------------------- objects --------


def test_cluster_scope_objects(render: Render) -> None:
    docs = render()
    cluster_name = f"{NAMESPACE}-{RELEASE}"
    assert kinds(docs) == [
        ("ClusterRole", cluster_name, None),
        ("ClusterRoleBinding", cluster_name, None),
        ("Deployment", RELEASE, NAMESPACE),
        ("Service", f"{RELEASE}-metrics", NAMESPACE),
        ("ServiceAccount", RELEASE, NAMESPACE),
    ]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_name,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}
    ]
    assert env(docs)["PARETOSCALE_NAMESPACES"] == "[]"


def test_namespace_scope_objects(render: Render) -> None:
    docs = render({"watchNamespaces": ["team-a", "team-b"]})
    cluster_name = f"{NAMESPACE}-{RELEASE}"
    assert kinds(docs) == [
        ("ClusterRole", cluster_name, None),
        ("ClusterRoleBinding", cluster_name, None),
        ("Deployment", RELEASE, NAMESPACE),
        ("Role", RELEASE, "team-a"),
        ("Role", RELEASE, "team-b"),
        ("RoleBinding", RELEASE, "team-a"),
        ("RoleBinding", RELEASE, "team-b"),
        ("Service", f"{RELEASE}-metrics", NAMESPACE),
        ("ServiceAccount", RELEASE, NAMESPACE),
    ]
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] == RELEASE
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}
        ]
    assert json.loads(env(docs)["PARETOSCALE_NAMESPACES"]) == ["team-a", "team-b"]


def test_deployment_runs_the_operator_safely(render: Render) -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(docs)
    assert c["image"] == "ghcr.io/paretoscale/paretoscale:0.1.0"
    assert c["args"] == ["run"]
    assert pod["serviceAccountName"] == RELEASE
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9090, "health": 8080}
    probe = c["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == "health"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"tmp": "/tmp"} and "emptyDir" in volumes["tmp"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    # Standalone: one replica, never two at once during an upgrade, no leader election.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not {"PARETOSCALE_LEADER_ELECTION", "POD_ID"} & env_names(docs)


def test_pod_placement_and_annotations(render: Render) -> None:
    docs = render(FULL_VALUES)
    template = one(docs, "Deployment")["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == FULL_VALUES["nodeSelector"]
    assert pod["tolerations"] == FULL_VALUES["tolerations"]
    assert pod["affinity"] == FULL_VALUES["affinity"]
    assert template["metadata"]["annotations"]["example.com/team"] == "platform"


def test_environment_parses_into_operator_settings(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every PARETOSCALE_* variable the chart sets means what the values say to the operator."""
    docs = render(FULL_VALUES)
    variables = env(docs)
    # What the kubelet fills in from the downward API: the pod's namespace is the release's.
    pod_fields = {"metadata.namespace": NAMESPACE}
    from_pod = {name: pod_fields[path] for name, path in downward_api(docs).items()}
    assert from_pod == {"PARETOSCALE_LEASE_NAMESPACE": NAMESPACE}
    variables |= from_pod
    assert set(variables) == env_names(docs), "every variable has a value or a known fieldRef"
    assert all(name.startswith("PARETOSCALE_") for name in variables)
    for name in [n for n in os.environ if n.startswith("PARETOSCALE_")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.namespaces == ["team-a", "team-b"]
    assert settings.leader_election is True
    assert (settings.lease_namespace, settings.lease_name) == (NAMESPACE, RELEASE)
    assert settings.prometheus_url == "https://prometheus.monitoring.svc:9090"
    assert settings.prometheus_bearer_token_file == "/var/run/secrets/paretoscale/prometheus/token"
    assert settings.prometheus_ca_file == "/etc/paretoscale/prometheus-ca/ca.crt"
    assert settings.tick_seconds == 15
    assert settings.default_mode == "Recommend"
    assert settings.price_fallback == {"H100": 2.69, "L40S": 1.86}
    assert settings.queries_file == "/etc/paretoscale/queries/queries.yaml"
    assert (settings.metrics_port, settings.health_port) == (9090, 8080)
    # Every variable set is a field of OperatorSettings (extra="ignore" would hide a typo).
    fields = {f"PARETOSCALE_{name.upper()}" for name in OperatorSettings.model_fields}
    assert set(variables) <= fields, set(variables) - fields


def test_defaults_leave_optional_settings_unset(render: Render) -> None:
    variables = env_names(render())
    for name in (
        "PARETOSCALE_PROMETHEUS_URL",
        "PARETOSCALE_PROMETHEUS_BEARER_TOKEN_FILE",
        "PARETOSCALE_PROMETHEUS_CA_FILE",
        "PARETOSCALE_DEFAULT_MODE",
        "PARETOSCALE_PRICE_FALLBACK",
        "PARETOSCALE_QUERIES_FILE",
        "PARETOSCALE_LEADER_ELECTION",
        "PARETOSCALE_LEASE_NAME",
        "PARETOSCALE_LEASE_NAMESPACE",
    ):
        assert name not in variables


def _file_mounts(docs: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Volume name -> (mount path, volume) for the operator container."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {
        m["name"]: (m["mountPath"], volumes[m["name"]]) for m in container(docs)["volumeMounts"]
    }


def test_prometheus_token_from_projected_service_account_token(render: Render) -> None:
    docs = render(
        {
            "prometheus.auth.type": "serviceAccountToken",
            "prometheus.auth.serviceAccountToken.audience": "prometheus",
        }
    )
    path, volume = _file_mounts(docs)["prometheus-token"]
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == "prometheus" and token["expirationSeconds"] == 3600
    assert env(docs)["PARETOSCALE_PROMETHEUS_BEARER_TOKEN_FILE"] == f"{path}/{token['path']}"


def test_prometheus_token_from_a_user_secret_mounted_by_the_kubelet(render: Render) -> None:
    docs = render({"prometheus.auth.type": "secret", "prometheus.auth.secret.name": "prom-token"})
    path, volume = _file_mounts(docs)["prometheus-token"]
    assert volume["secret"]["secretName"] == "prom-token"
    (item,) = volume["secret"]["items"]
    assert item["key"] == "token"
    assert env(docs)["PARETOSCALE_PROMETHEUS_BEARER_TOKEN_FILE"] == f"{path}/{item['path']}"
    assert not [d for d in docs if d["kind"] == "Secret"], (
        "the chart never creates or reads Secrets"
    )


def test_query_overrides_become_a_mounted_configmap(render: Render) -> None:
    queries = {"requests_per_second": "sum(rate(vllm:request_success_total[{window}]))"}
    docs = render({"queries": queries})
    configmap = one(docs, "ConfigMap", f"{RELEASE}-queries")
    path, volume = _file_mounts(docs)["queries"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    file = env(docs)["PARETOSCALE_QUERIES_FILE"]
    assert Path(file).parent == Path(path)
    assert yaml.safe_load(configmap["data"][Path(file).name]) == queries
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/queries"])


ACME_X1 = {
    "labelKey": "cloud.google.com/gke-accelerator",
    "labelValue": "acme-x1",
    "resource": "acme.com/gpu",
    "memoryGiB": 96,
    "memoryBandwidthTBps": 2.4,
    "bf16Tflops": 400,
    "precisions": ["bf16", "fp16"],
}


def test_gpu_types_become_a_mounted_file_the_operator_reads(render: Render, tmp_path: Path) -> None:
    from paretoscale.config import read_gpu_types

    docs = render({"gpuTypes": {"acme-x1": ACME_X1}, "gpuTypesPreset": "gke"})
    configmap = one(docs, "ConfigMap", f"{RELEASE}-gpu-types")
    path, volume = _file_mounts(docs)["gpu-types"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    variables = env(docs)
    file = variables["PARETOSCALE_GPU_TYPES_FILE"]
    assert Path(file).parent == Path(path)
    assert variables["PARETOSCALE_GPU_TYPES_PRESET"] == "gke"
    local = tmp_path / Path(file).name
    local.write_text(configmap["data"][Path(file).name])
    gpus = read_gpu_types(str(local), "gke")
    assert gpus.get("acme-x1").resource == "acme.com/gpu"
    assert gpus.get("H100").label_value == "nvidia-h100-80gb"
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/gpu-types"])


def test_gpu_types_default_to_the_built_in_table_labelled_by_nfd(render: Render) -> None:
    docs = render()
    assert "PARETOSCALE_GPU_TYPES_FILE" not in env_names(docs)
    assert env(docs)["PARETOSCALE_GPU_TYPES_PRESET"] == "nfd"
    assert not [d for d in docs if d["metadata"]["name"].endswith("-gpu-types")]


def test_values_schema_refuses_a_bad_gpu_type_entry(helm: str) -> None:
    for flags in (
        ["--set", "gpuTypes.x1.colour=red"],
        ["--set", "gpuTypesPreset=aws"],
        ["--set-json", 'gpuTypes.x1={"precisions": ["fp4"]}'],
    ):
        result = run_helm(helm, "template", RELEASE, str(CHART), *flags)
        assert result.returncode != 0 and "gpuTypes" in result.stderr, flags


# ----------------------------------------------------------------------------- RBAC --------

# What the operator does (operator/paretoscale/actuate/kube.py, controller/handlers.py,
# controller/leader.py) and what kopf needs to watch. tests/e2e/test_chart.py runs the real
# operator with these grants and fails on any 403.
NAMESPACED_RULES = {
    # kopf watches; the operator never writes spec or metadata (no finalizer, no annotations).
    ("paretoscale.io", "modeldeployments"): {"get", "list", "watch"},
    ("paretoscale.io", "modeldeployments/status"): {"update"},
    # list: to name Pending pods (CapacityPending); watch: the GPU inventory's placed pods.
    ("", "pods"): {"list", "watch"},
    # OwnerReferencesPermissionEnforcement: owner references with blockOwnerDeletion.
    ("paretoscale.io", "modeldeployments/finalizers"): {"update"},
    # get: before creating an object, whether one of that name exists that it does not own.
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch"},
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "events"): {"create"},
    # In-cluster profiling (controller/profiling.py): the Job, its results ConfigMap, and
    # its ServiceAccount + Role limited to that ConfigMap.
    ("batch", "jobs"): {"get", "create", "patch", "delete"},
    ("", "configmaps"): {"get", "create", "update", "patch"},
    ("", "serviceaccounts"): {"get", "create", "patch", "delete"},
    ("rbac.authorization.k8s.io", "roles"): {"get", "create", "patch", "delete"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"get", "create", "patch", "delete"},
}
CRD_READS = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
# kopf lists and watches Namespaces only when it is not cluster-wide.
NAMESPACE_READS = {("", "namespaces"): {"list", "watch"}}
# The GPU inventory (gpuInventory.enabled, the default; controller/inventory.py).
INVENTORY_READS = {("", "nodes"): {"list", "watch"}}
LEASE_ROLE = f"{RELEASE}-leader-election"


def lease_grants(name: str) -> dict[tuple[str, ...], set[str]]:
    return {
        ("coordination.k8s.io", "leases"): {"create"},
        ("coordination.k8s.io", "leases", name): {"get", "update"},
    }


def grants(role: dict[str, Any]) -> dict[tuple[str, ...], set[str]]:
    """(group, resource) -> verbs; (group, resource, name) for rules limited to resourceNames."""
    out: dict[tuple[str, ...], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("nonResourceURLs"), rule
        names = rule.get("resourceNames") or [None]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for name in names:
                    key = (group, resource) if name is None else (group, resource, name)
                    out.setdefault(key, set()).update(rule["verbs"])
    return out


RBAC_CASES = {
    "cluster": {},
    "cluster-leader-election": {"leaderElection.enabled": True, "replicaCount": 2},
    "namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaces-leader-election": {
        "watchNamespaces": ["team-a"],
        "leaderElection.enabled": True,
        "replicaCount": 2,
    },
}


@pytest.mark.parametrize("values", RBAC_CASES.values(), ids=RBAC_CASES.keys())
def test_rbac_has_no_secrets_and_no_wildcards(render: Render, values: dict[str, Any]) -> None:
    roles = [d for d in render(values) if d["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert not any("*" in item for item in rule[field]), (role["metadata"], rule)
            assert not {"secrets", "secrets/status"} & set(rule["resources"]), rule
            if "pods" in rule["resources"]:  # Pending pods' names, placed pods' GPUs: no writes
                assert rule["resources"] == ["pods"] and rule["verbs"] == ["list", "watch"], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
            assert "kopf.dev" not in rule["apiGroups"], "no kopf peering"
            if rule.get("resourceNames"):
                assert rule["resources"] == ["leases"], "resourceNames only pin the Lease"


@pytest.mark.parametrize("values", RBAC_CASES.values(), ids=RBAC_CASES.keys())
def test_rbac_never_writes_modeldeployments_themselves(
    render: Render, values: dict[str, Any]
) -> None:
    """GitOps owns spec and metadata: no patch/update/delete on the main resource."""
    for role in [d for d in render(values) if d["kind"] in ("Role", "ClusterRole")]:
        verbs = grants(role).get(("paretoscale.io", "modeldeployments"), set())
        assert verbs <= {"get", "list", "watch"}, role["metadata"]


def test_rbac_cluster_scope_is_exactly_what_the_operator_uses(render: Render) -> None:
    """Cluster-wide kopf never reads Namespaces."""
    docs = render()
    assert grants(one(docs, "ClusterRole")) == NAMESPACED_RULES | CRD_READS | INVENTORY_READS
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]


def test_rbac_without_the_gpu_inventory_reads_no_nodes_and_watches_no_pods(
    render: Render,
) -> None:
    docs = render({"gpuInventory.enabled": False})
    rules = grants(one(docs, "ClusterRole"))
    assert ("", "nodes") not in rules and rules[("", "pods")] == {"list"}
    env = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PARETOSCALE_GPU_INVENTORY", "value": "false"} in env


def test_rbac_namespace_scope_is_exactly_what_the_operator_uses(render: Render) -> None:
    docs = render({"watchNamespaces": ["team-a", "team-b"]})
    assert grants(one(docs, "ClusterRole")) == CRD_READS | NAMESPACE_READS | INVENTORY_READS
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert grants(role) == NAMESPACED_RULES


def test_rbac_off(render: Render) -> None:
    docs = render(
        {
            "rbac.create": False,
            "serviceAccount.create": False,
            "serviceAccount.name": "ops",
            "leaderElection.enabled": True,
        }
    )
    assert not [d for d in docs if d["kind"].endswith(("Role", "RoleBinding", "ServiceAccount"))]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


# ------------------------------------------------------------------ leader election --------


@pytest.mark.parametrize(
    "scope", [[], ["team-a", NAMESPACE]], ids=["cluster", "namespaces-incl-release-ns"]
)
def test_leader_election_lease_role_in_the_release_namespace(
    render: Render, scope: list[str]
) -> None:
    docs = render({"leaderElection.enabled": True, "replicaCount": 2, "watchNamespaces": scope})
    role = one(docs, "Role", LEASE_ROLE)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert grants(role) == lease_grants(RELEASE)
    binding = one(docs, "RoleBinding", LEASE_ROLE)
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": LEASE_ROLE,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}
    ]
    # Leases are granted nowhere else, and nothing else is granted with them.
    for other in [d for d in docs if d["kind"] in ("Role", "ClusterRole") and d is not role]:
        assert not [k for k in grants(other) if k[0] == "coordination.k8s.io"], other["metadata"]


def test_leader_election_environment_and_rollout(render: Render) -> None:
    docs = render({"leaderElection.enabled": True, "replicaCount": 3})
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    # The new pod may start before the old one stops: it waits for the Lease.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    variables = env(docs)
    assert variables["PARETOSCALE_LEADER_ELECTION"] == "true"
    assert variables["PARETOSCALE_LEASE_NAME"] == RELEASE
    assert downward_api(docs)["PARETOSCALE_LEASE_NAMESPACE"] == "metadata.namespace"


def test_lease_name_follows_the_full_name(render: Render) -> None:
    """The Lease the operator uses is the one the Role pins, whatever the release is called."""
    docs = render({"leaderElection.enabled": True, "fullnameOverride": "ps-ha"})
    assert env(docs)["PARETOSCALE_LEASE_NAME"] == "ps-ha"
    assert grants(one(docs, "Role", "ps-ha-leader-election")) == lease_grants("ps-ha")


def test_no_leader_election_objects_when_standalone(render: Render) -> None:
    docs = render()
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    assert not [d for d in docs if "kopf" in d["apiVersion"] or "Peering" in d["kind"]]


def test_template_refuses_replicas_without_leader_election(helm: str) -> None:
    """The template's own check, for when the schema is skipped (--skip-schema-validation)."""
    result = run_helm(
        helm, "template", RELEASE, str(CHART), "--skip-schema-validation",
        "--set", "replicaCount=2",
    )  # fmt: skip
    assert result.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled=true" in result.stderr, result.stderr


# ------------------------------------------------------------------------- monitors --------


def test_monitors_off_by_default(render: Render) -> None:
    assert not [d for d in render() if d["apiVersion"].startswith("monitoring.coreos.com/")]


def test_podmonitor_scrapes_vllm_pods_with_the_labels_queries_group_by(render: Render) -> None:
    docs = render({"podMonitor.enabled": True, "podMonitor.labels": {"release": "kps"}})
    monitor = one(docs, "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    spec = monitor["spec"]
    assert spec["selector"] == {
        "matchExpressions": [{"key": "paretoscale.io/modeldeployment", "operator": "Exists"}]
    }
    assert spec["namespaceSelector"] == {"any": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    mapped = {
        r["targetLabel"]: r["sourceLabels"]
        for r in endpoint["relabelings"]
        if r.get("action", "replace") == "replace"
    }
    assert mapped == {
        "modeldeployment": ["__meta_kubernetes_pod_label_paretoscale_io_modeldeployment"],
        "variant": ["__meta_kubernetes_pod_label_paretoscale_io_variant"],
        "namespace": ["__meta_kubernetes_namespace"],
    }
    namespaced = one(
        render({"podMonitor.enabled": True, "watchNamespaces": ["team-a"]}), "PodMonitor"
    )
    assert namespaced["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def test_servicemonitor_scrapes_the_operator_metrics_service(render: Render) -> None:
    docs = render({"metrics.serviceMonitor.enabled": True})
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    (port,) = service["spec"]["ports"]
    assert port == {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


# --------------------------------------------------------------------- values check --------

BAD_VALUES = {
    "replicas-without-leader-election": ({"replicaCount": 2}, "/leaderElection/enabled"),
    "leader-election-not-a-boolean": ({"leaderElection.enabled": "yes"}, "/leaderElection/enabled"),
    "kopf-peering-is-gone": ({"peering": "ps"}, "peering"),
    "latest-tag": ({"image.tag": "latest"}, "/image/tag"),
    "unknown-value": ({"tickSecond": 5}, "tickSecond"),
    "bad-mode": ({"defaultMode": "Manual"}, "/defaultMode"),
    "secret-without-name": ({"prometheus.auth.type": "secret"}, "/prometheus/auth/secret/name"),
    "bad-namespace": ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    "negative-price": ({"priceFallback": {"H100": -1}}, "/priceFallback/H100"),
    "root": ({"securityContext.runAsNonRoot": False}, "/securityContext/runAsNonRoot"),
    "url-without-scheme": ({"prometheus.url": "prometheus:9090"}, "/prometheus/url"),
    "servicemonitor-without-service": (
        {"metrics.serviceMonitor.enabled": True, "metrics.service.enabled": False},
        "needs metrics.service.enabled",
    ),
    "token-without-audience": (
        {"prometheus.auth.type": "serviceAccountToken"},
        "set prometheus.auth.serviceAccountToken.allowNoAudience=true",
    ),
    "token-over-http": (
        {
            "prometheus.url": "http://prometheus.monitoring.svc:9090",
            "prometheus.auth.type": "secret",
            "prometheus.auth.secret.name": "prom-token",
        },
        "use an https:// URL (with prometheus.ca.configMapName for a private CA), or set "
        "prometheus.auth.allowInsecureHttp=true",
    ),
}


def test_prometheus_token_opt_ins_render_what_they_say(render: Render) -> None:
    """The refusals above are defaults: each opt-in renders, and a plain URL without a token
    needs none."""
    docs = render(
        {
            "prometheus.url": "http://prometheus.monitoring.svc:9090",
            "prometheus.auth.type": "serviceAccountToken",
            "prometheus.auth.allowInsecureHttp": True,
            "prometheus.auth.serviceAccountToken.allowNoAudience": True,
        }
    )
    (source,) = _file_mounts(docs)["prometheus-token"][1]["projected"]["sources"]
    assert "audience" not in source["serviceAccountToken"]
    assert env(render({"prometheus.url": "http://prometheus.monitoring.svc:9090"}))[
        "PARETOSCALE_PROMETHEUS_URL"
    ].startswith("http://")


@pytest.mark.parametrize(("values", "words"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_refused(helm: str, values: dict[str, Any], words: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), *set_flags(values))
    assert result.returncode != 0
    assert words in result.stderr, result.stderr


# ----------------------------------------------------------------------- Dockerfile --------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def test_dockerfile_defaults_to_a_pinned_base_and_runs_as_the_chart_user() -> None:
    """What the build in tests/e2e/test_image.py (hack/image, on the local Debian base) cannot
    show: the default base for Docker users is a pinned python image, both stages take the base
    from PYTHON_IMAGE (so the local base replaces it whole), the commands use `python3` (the
    name both bases have), and the USER is the chart's runAsUser/runAsGroup."""
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    repository, _, tag = args["PYTHON_IMAGE"].partition(":")
    assert repository == "python" and re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), tag
    stages = [a.split() for k, a in instructions if k == "FROM"]
    assert [words[0] for words in stages] == ["${PYTHON_IMAGE}"] * len(stages) and len(stages) >= 2
    assert stages[0][-2:] == ["AS", "build"], "multi-stage: build in one stage, run in a clean one"
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert not re.search(r"(^|[\s&;|])python\s", runs), "`python3`: Debian's base has no `python`"
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    security = yaml.safe_load((CHART / "values.yaml").read_text())["securityContext"]
    users = [a for k, a in final if k == "USER"]
    assert users[-1:] == [f"{security['runAsUser']}:{security['runAsGroup']}"]
    assert ("ENTRYPOINT", '["paretoscale"]') in final and ("CMD", '["run"]') in final


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "exclude everything, then re-include what the Dockerfile copies"
    assert {"!pyproject.toml", "!README.md", "!operator"} <= set(lines)
    copies = [a.split() for k, a in dockerfile_instructions(DOCKERFILE.read_text()) if k == "COPY"]
    sources = [s for words in copies if not words[0].startswith("--") for s in words[:-1]]
    assert sources == ["pyproject.toml", "README.md", "operator/"]
    for source in sources:
        assert f"!{source.rstrip('/')}" in lines, f"COPY {source} is excluded by .dockerignore"


def _distribution(requirement: str) -> str:
    """PEP 503 normalized distribution name of a requirement such as `PyYAML>=6.0`."""
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_dependencies_cover_every_import() -> None:
    """The image gets only the wheel's declared dependencies (no dev extras, unlike CI's
    editable install), so every third-party module the package imports must be declared."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    declared = {
        _distribution(r)
        for r in [
            *project["dependencies"],
            *(r for k, v in extras.items() if k != "dev" for r in v),
        ]
    }
    imported: dict[str, set[str]] = {}
    for path in (ROOT / "operator" / "paretoscale").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("paretoscale", "__future__"):
                    imported.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: sorted(files)
        for module, files in sorted(imported.items())
        if not {_distribution(d) for d in providers.get(module, [module])} & declared
    }
    assert not missing, f"imported but not in pyproject.toml dependencies: {missing}"
