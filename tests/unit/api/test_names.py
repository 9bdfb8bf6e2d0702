"""Names that cannot make a Service, label or Deployment are refused (pydantic, as the CRD's
CEL does), `<md>-<variant>` collisions within a namespace are found, and template.resources
must hold quantities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.api.crd import crd
from paretoscale.api.manifest import parse_manifests, parse_spec
from paretoscale.api.names import cel_rules, collisions, name_problems
from paretoscale.errors import SpecError

ROOT = Path(__file__).parents[3]
EXAMPLE = (ROOT / "examples" / "assistant-llama-8b.yaml").read_text()


def example(name: str, variant: str | None = None) -> str:
    doc = yaml.safe_load(EXAMPLE)
    doc["metadata"]["name"] = name
    if variant is not None:
        doc["spec"]["variants"][0]["name"] = variant
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("name", ["a.b", "8b", "llama.8b", "x" * 64, "A", "a-", "-a", "a_b"])
def test_a_name_that_cannot_name_a_service_is_refused(name: str) -> None:
    assert name_problems(name, [])
    with pytest.raises(SpecError, match=r"metadata\.name"):
        parse_manifests(example(name), "f.yaml")


@pytest.mark.parametrize("variant", ["8b-chat", "a.b", "Fp8"])
def test_a_variant_name_must_be_a_dns_1035_label(variant: str) -> None:
    with pytest.raises(SpecError, match="name"):
        parse_manifests(example("assistant", variant), "f.yaml")


def test_md_and_variant_together_fit_in_63_characters() -> None:
    md = "m" * 40
    assert name_problems(md, ["v" * 22]) == []  # 40 + 1 + 22 = 63
    (problem,) = name_problems(md, ["v" * 23])
    assert "64 characters" in problem
    with pytest.raises(SpecError, match="64 characters"):
        parse_manifests(example(md, "v" * 23), "f.yaml")


def test_valid_names_pass() -> None:
    assert name_problems("assistant", ["fp8", "bf16-h100"]) == []
    (md,) = parse_manifests(example("chat-8b", "fp8-h100"), "f.yaml")
    assert md.metadata.name == "chat-8b"


def test_the_crd_root_carries_the_name_rules() -> None:
    root = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["x-kubernetes-validations"] == cel_rules()
    assert all("self.metadata.name" in r["rule"] for r in cel_rules())


def body(name: str, variants: list[str], created: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"variants": [{"name": v} for v in variants]},
    }


def test_the_later_of_two_colliding_modeldeployments_is_named() -> None:
    first = body("a", ["b-c"], "2026-01-01T00:00:00Z")
    later = body("a-b", ["c"], "2026-01-02T00:00:00Z")
    for order in ([first, later], [later, first]):
        found = collisions(order)
        assert list(found) == ["a-b"]
        assert "name collision: a-b-c" in found["a-b"] and "ModelDeployment a " in found["a-b"]
    assert collisions([first, body("a-b", ["d"], "2026-01-02T00:00:00Z")]) == {}


@pytest.mark.parametrize(
    "resources",
    [
        {"limits": "x"},
        {"limits": {"nvidia.com/gpu": "x"}},
        {"requests": {"memory": "8 Gi"}},
        {"requests": {"cpu": -1}},
        {"limit": {"cpu": "1"}},
    ],
)
def test_template_resources_must_hold_quantities(resources: dict[str, Any]) -> None:
    spec = yaml.safe_load(EXAMPLE)["spec"]
    spec["template"] = {"resources": resources}
    with pytest.raises(SpecError, match=r"spec\.template\.resources"):
        parse_spec(spec, "llm/assistant")


def test_usual_resources_pass() -> None:
    spec = yaml.safe_load(EXAMPLE)["spec"]
    spec["template"] = {
        "resources": {"limits": {"memory": "64Gi", "cpu": 8}, "requests": {"cpu": "500m"}}
    }
    assert parse_spec(spec, "llm/assistant").template.resources is not None
