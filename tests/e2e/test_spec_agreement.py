"""The real API server (the generated CRD: its schema and CEL rules) and pydantic agree on
which ModelDeployments are valid.

A fixed sample of the generator in tests/unit/api/spec_mutations.py (valid and broken objects;
the unit test sends 10,000 of it through pydantic) is created with server-side dry run in a
fresh namespace. Both must accept or both refuse, except where pydantic refuses by a rule the
API server cannot check: those rules are listed in OPERATOR_ONLY, and every pydantic problem
of such a disagreement must match one of them. The API server refusing what pydantic accepts
is never allowed (`paretoscale plan` would approve a manifest `kubectl apply` refuses).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.api.spec_mutations import mutated, pydantic_verdict

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CRD = ROOT / "crds" / "modeldeployments.paretoscale.io.yaml"
GROUP, VERSION, PLURAL = "paretoscale.io", "v1alpha1", "modeldeployments"
SAMPLE = 400
SEED = 12

# Rules only pydantic (the operator and `paretoscale plan`) checks, with why the CRD cannot.
OPERATOR_ONLY: dict[str, str] = {
    # The precision a checkpoint runs at is read from its name (api/admission.py); the CRD's
    # CEL checks only the explicit dtype/quantization flags.
    "compute capability": "GPU generation vs. a precision detected from the checkpoint name",
    # template.resources is a free-form Kubernetes object (preserve-unknown-fields); its
    # quantities are checked by the operator and reported in a condition.
    "is not a quantity|resources: unknown key|resources\\.\\w+ must map": "resource quantities",
}


@pytest.fixture(scope="module")
def installed(k8s_client: Any, wait_for: Any) -> Iterator[Any]:
    """The generated CRD applied and Established; yields a CustomObjectsApi."""
    from kubernetes import client, dynamic

    crd = yaml.safe_load(CRD.read_text())
    crds = dynamic.DynamicClient(k8s_client).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    crds.server_side_apply(body=crd, field_manager="e2e-agreement", force_conflicts=True)

    def established() -> bool:
        status = crds.get(name=crd["metadata"]["name"]).status
        return any(
            c["type"] == "Established" and c["status"] == "True" for c in (status.conditions or [])
        )

    wait_for(established, timeout_s=30, what="CRD Established")
    yield client.CustomObjectsApi(k8s_client)


def server_verdict(custom: Any, namespace: str, doc: dict[str, Any]) -> str | None:
    """None when the API server would create doc (dry run), else its refusal."""
    from kubernetes.client.exceptions import ApiException

    body = json.loads(json.dumps(doc, default=str))  # as the client sends it; NaN stays NaN
    if isinstance(body.get("metadata"), dict):
        body["metadata"]["namespace"] = namespace
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
        )
    except ApiException as error:
        assert error.status in (400, 403, 422), f"unexpected {error.status}: {error.body}"
        return str(json.loads(error.body).get("message", error.body))
    return None


def operator_only(problems: list[str]) -> bool:
    return bool(problems) and all(
        any(re.search(rule, p) for rule in OPERATOR_ONLY) for p in problems
    )


def test_api_server_and_pydantic_agree_on_a_sample(installed: Any, namespace: str) -> None:
    rnd = random.Random(SEED)
    disagreements, counts = [], {"both accept": 0, "both refuse": 0, "operator only": 0}
    for i in range(SAMPLE):
        doc = mutated(rnd.choice)
        problems = pydantic_verdict(doc)
        refusal = server_verdict(installed, namespace, doc)
        if bool(problems) == (refusal is not None):
            counts["both refuse" if problems else "both accept"] += 1
        elif refusal is None and operator_only(problems):
            counts["operator only"] += 1
        else:
            disagreements.append(
                f"#{i}: pydantic {problems or 'accepts'}; API server "
                f"{refusal or 'accepts'}\n{json.dumps(doc, default=str)[:3000]}"
            )
    assert not disagreements, f"{len(disagreements)} of {SAMPLE} disagree:\n" + "\n\n".join(
        disagreements[:8]
    )
    # Both paths were exercised in earnest.
    assert counts["both accept"] > SAMPLE * 0.1 and counts["both refuse"] > SAMPLE * 0.1, counts


POLICY = ROOT / "examples" / "policy" / "image-allowlist.yaml"


def test_image_allowlist_policy_example_is_enforced(
    installed: Any, k8s_client: Any, namespace: str, wait_for: Any
) -> None:
    """examples/policy/image-allowlist.yaml installs as it is; bound to this test's namespace
    (so other tests' objects are untouched), it refuses a ModelDeployment whose image is not
    listed and admits one whose image is."""
    from kubernetes import dynamic

    policy, binding = [d for d in yaml.safe_load_all(POLICY.read_text()) if d]
    suffix = f"-{namespace}"
    policy["metadata"]["name"] += suffix
    binding["metadata"]["name"] += suffix
    binding["spec"]["policyName"] = policy["metadata"]["name"]
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    client = dynamic.DynamicClient(k8s_client)
    applied = []
    try:
        for doc in (policy, binding):
            kind = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            kind.server_side_apply(body=doc, field_manager="e2e-agreement", force_conflicts=True)
            applied.append((kind, doc["metadata"]["name"]))

        def with_image(image: str) -> dict[str, Any]:
            doc = mutated(lambda options: options[0])  # the first example, unchanged
            doc["spec"]["template"]["image"] = image
            return doc

        bad = with_image("docker.io/attacker/miner:latest")
        refusal = wait_for(
            lambda: server_verdict(installed, namespace, bad),
            timeout_s=60,
            what="the policy to refuse a disallowed image (policies load asynchronously)",
        )
        assert "docker.io/attacker/miner:latest is not allow-listed" in refusal
        assert pydantic_verdict(bad) == []  # only the policy refuses it
        for image in ("vllm/vllm-openai:v0.11.0", "registry.example.com/llm/vllm@sha256:abc"):
            assert server_verdict(installed, namespace, with_image(image)) is None, image
        default = with_image("x")
        del default["spec"]["template"]["image"]  # the CRD's default image is listed
        assert server_verdict(installed, namespace, default) is None
    finally:
        for kind, name in reversed(applied):
            kind.delete(name=name)
