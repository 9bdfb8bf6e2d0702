"""The chart's PodMonitor and ServiceMonitor against the real Prometheus Operator CRDs.

The CRDs (tests/e2e/data/monitoring-crds/, generated from the Prometheus Operator's v1 API
types; see the README there) are installed on the local control plane, then `helm install`
renders the chart with both monitors on: the API server validates each against its schema
(structural, with pruning), so a field the Prometheus Operator does not know, or a value of
the wrong type, fails the install. The CRDs are removed afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_chart import CHART, RELEASE, Kube
from tests.unit.test_chart import find_helm

pytestmark = pytest.mark.e2e

CRDS = Path(__file__).parent / "data" / "monitoring-crds"
MONITORS = {"PodMonitor": f"{RELEASE}-vllm", "ServiceMonitor": RELEASE}


@pytest.fixture(scope="module")
def monitoring(cluster: Any) -> Iterator[Kube]:
    """The cluster's admin, with the monitoring.coreos.com CRDs Established (removed after)."""
    helm = find_helm()
    if helm is None:
        pytest.skip("no helm binary: set PARETOSCALE_HELM or run `hack/cluster build`")
    kube = Kube(cluster.kubeconfig, helm)
    kube.ok("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    kube.ok("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for crd in (CHART / "crds", CRDS):
        kube.ok("wait", "--for", "condition=Established", "--timeout", "60s", "-f", str(crd))
    try:
        yield kube
    finally:
        kube.kubectl("delete", "-f", str(CRDS), "--wait=false")


def _get(kube: Kube, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return dict(json.loads(kube.ok("get", kind, name, "--namespace", namespace, "-o", "json")))


def test_chart_installs_its_monitors_and_the_api_server_validates_them(
    monitoring: Kube, namespace: str
) -> None:
    flags = [
        "--set", "podMonitor.enabled=true",
        "--set", "podMonitor.scrapeTimeout=10s",
        "--set-json", 'podMonitor.labels={"release": "kube-prometheus"}',
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.scrapeTimeout=10s",
        "--set-json", f"watchNamespaces={json.dumps([namespace])}",
    ]  # fmt: skip
    result = monitoring.helm("install", RELEASE, str(CHART), "--namespace", namespace, *flags)
    assert result.returncode == 0, result.stderr
    try:
        pm = _get(monitoring, "podmonitor", MONITORS["PodMonitor"], namespace)
        assert pm["metadata"]["labels"]["release"] == "kube-prometheus"
        (endpoint,) = pm["spec"]["podMetricsEndpoints"]
        # Stored as rendered: nothing was pruned as unknown to the Prometheus Operator.
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
        assert endpoint["scrapeTimeout"] == "10s"
        assert {r["targetLabel"] for r in endpoint["relabelings"]} == {
            "modeldeployment",
            "variant",
            "namespace",
        }
        assert pm["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
        sm = _get(monitoring, "servicemonitor", MONITORS["ServiceMonitor"], namespace)
        (sm_endpoint,) = sm["spec"]["endpoints"]
        assert sm_endpoint["port"] == "metrics" and sm_endpoint["scrapeTimeout"] == "10s"
        service = _get(monitoring, "service", f"{RELEASE}-metrics", namespace)
        selector = sm["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert any(p["name"] == "metrics" for p in service["spec"]["ports"])
    finally:
        monitoring.helm("uninstall", RELEASE, "--namespace", namespace, "--wait")


def test_the_schemas_are_enforced(monitoring: Kube, namespace: str) -> None:
    """What the API server refuses under these CRDs: the chart's check above means something."""
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {
            "selector": {},
            "podMetricsEndpoints": [{"port": "http", "scheme": "ftp", "interval": "soon"}],
        },
    }
    result = monitoring.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(bad)
    )
    assert result.returncode != 0
    assert "scheme" in result.stderr and "interval" in result.stderr, result.stderr
