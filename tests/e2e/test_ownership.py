"""Ownership and isolation on the real control plane (issue 11, faults 8, 9 and 10).

8. A ModelDeployment named like a Service it did not create leaves that Service as it was
   and says so (condition ResourceConflict); deleting the ModelDeployment keeps the Service.
9. Names that cannot make a Service, label or Deployment are refused at admission (422);
   two ModelDeployments whose `<md>-<variant>` names collide: the later one gets the
   condition and the earlier one's Deployment keeps its single owner.
10. template.resources the API server admits but that cannot render (limits "x") is
   reported by SpecValid=False while the operator goes on with the other ModelDeployments.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import test_operator as scenarios
from .operator_harness import Cluster, OperatorProcess, example, wait

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crds_installed(cluster: Any) -> None:
    env = {"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for cmd in (
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds")],
        [
            "kubectl",
            "wait",
            "--for=condition=Established",
            "crd/modeldeployments.paretoscale.io",
            "--timeout=60s",
        ],
    ):
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def kube(k8s_client: Any, namespace: str, crds_installed: None) -> Cluster:
    return Cluster(k8s_client, namespace)


operator = scenarios.operator  # the operator of the scenarios: a 1 s tick, stopped after


def md(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    doc = example("assistant-llama-8b.yaml", ns, **spec)
    doc["metadata"]["name"] = name
    return doc


def conflict(kube: Cluster, name: str) -> Any:
    c = kube.condition(name, "ResourceConflict")
    return c.get("status") == "True" and c


def test_a_foreign_service_of_the_same_name_is_untouched(
    kube: Cluster, operator: OperatorProcess
) -> None:
    from kubernetes import client

    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="assistant", labels={"app": "theirs"}),
        spec=client.V1ServiceSpec(
            selector={"app": "theirs"}, ports=[client.V1ServicePort(port=80, target_port=8080)]
        ),
    )
    kube.core.create_namespaced_service(kube.ns, svc)
    before = kube.core.read_namespaced_service("assistant", kube.ns)

    kube.apply(md(kube.ns, "assistant"))
    cond = wait(lambda: conflict(kube, "assistant"), 60, "ResourceConflict", operator)
    assert cond["reason"] == "NotOwned"
    assert "Service/assistant exists and is not owned" in cond["message"]
    assert any(r == "ResourceConflict" for _, r, _ in kube.events())

    after = kube.core.read_namespaced_service("assistant", kube.ns)
    assert after.spec.selector == {"app": "theirs"}
    assert not after.metadata.owner_references
    assert after.metadata.resource_version == before.metadata.resource_version
    assert kube.deployments() == {}  # nothing else was touched either

    kube.custom.delete_namespaced_custom_object(
        "paretoscale.io", "v1alpha1", kube.ns, "modeldeployments", "assistant"
    )
    wait(
        lambda: (
            not kube.custom.list_namespaced_custom_object(
                "paretoscale.io", "v1alpha1", kube.ns, "modeldeployments"
            )["items"]
        ),
        30,
        "the ModelDeployment to be gone",
    )
    assert kube.selector("assistant") == {"app": "theirs"}


@pytest.mark.parametrize(
    ("name", "variant", "message"),
    [
        ("a.b", None, "DNS-1035"),
        ("8b", None, "DNS-1035"),
        ("x" * 64, None, "DNS-1035"),
        ("assistant", "8b-chat", "spec.variants"),
        ("m" * 40, "v" * 23, "63 characters"),
    ],
)
def test_names_that_cannot_make_objects_are_refused_at_admission(
    kube: Cluster, name: str, variant: str | None, message: str
) -> None:
    from kubernetes.client.exceptions import ApiException

    doc = md(kube.ns, name)
    if variant is not None:
        doc["spec"]["variants"][0]["name"] = variant
    with pytest.raises(ApiException) as refused:
        kube.custom.create_namespaced_custom_object(
            "paretoscale.io", "v1alpha1", kube.ns, "modeldeployments", doc
        )
    assert refused.value.status == 422, refused.value.body
    assert message in refused.value.body


def test_colliding_names_stop_the_later_modeldeployment(
    kube: Cluster, operator: OperatorProcess
) -> None:
    first = md(kube.ns, "a")
    for v in first["spec"]["variants"]:
        v["name"] = f"b-{v['name']}"  # a + b-fp8 = a-b-fp8
    kube.apply(first)
    (taken,) = wait(lambda: list(kube.deployments()), 60, "a Deployment of a", operator)
    assert taken.startswith("a-b-")

    kube.apply(md(kube.ns, "a-b"))  # a-b + fp8 = a-b-fp8, and so on for every variant
    cond = wait(lambda: conflict(kube, "a-b"), 60, "ResourceConflict on a-b", operator)
    assert cond["reason"] == "NameCollision" and taken in cond["message"]
    assert not conflict(kube, "a")
    owners = kube.deployments()[taken].metadata.owner_references
    assert [o.name for o in owners] == ["a"]
    assert kube.selector("a-b") is None  # nothing of a-b was created


def test_resources_that_cannot_render_are_a_condition_and_others_go_on(
    kube: Cluster, operator: OperatorProcess
) -> None:
    bad = md(kube.ns, "bad", template={"resources": {"limits": {"nvidia.com/gpu": "x"}}})
    kube.apply(bad)  # the CRD keeps resources free-form: the operator must report it
    kube.apply(md(kube.ns, "good"))

    def invalid() -> Any:
        c = kube.condition("bad", "SpecValid")
        return c.get("status") == "False" and c

    cond = wait(invalid, 60, "SpecValid=False on bad", operator)
    assert "template.resources" in cond["message"]
    wait(
        lambda: any(n.startswith("good-") for n in kube.deployments()),
        60,
        "good's Deployment",
        operator,
    )
    assert not any(name.startswith("bad-") for name in kube.deployments())
    good = kube.condition("good", "SpecValid")
    assert good.get("status") == "True"
    assert "Traceback" not in operator.log()
