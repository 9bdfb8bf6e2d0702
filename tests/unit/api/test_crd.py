"""The CRD is generated from the pydantic models, and the file in crds/ is that output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from paretoscale.api.crd import crd, crd_yaml

ROOT = Path(__file__).parents[3]
CRD_FILE = ROOT / "crds" / "modeldeployments.paretoscale.io.yaml"


def test_crd_file_is_not_stale() -> None:
    if os.environ.get("PARETOSCALE_UPDATE_GOLDEN"):
        CRD_FILE.write_text(crd_yaml())
    assert CRD_FILE.read_text() == crd_yaml(), (
        "crds/ is stale: run `paretoscale crds > crds/modeldeployments.paretoscale.io.yaml`"
    )


def _walk(node: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out += _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, f"{path}[{i}]")
    return out


def test_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        if "properties" in node and path.endswith(("openAPIV3Schema", ".spec")):
            assert node.get("type") == "object"
    spec = schema["properties"]["spec"]
    assert spec["properties"]["gpus"]["items"]["properties"]["usdPerHour"]["type"] == "string"
    assert "null" not in yaml.safe_dump(spec)


def test_cel_rules_present() -> None:
    text = crd_yaml()
    for message in (
        "variant names must be unique",
        "spec.traffic.minReplicas must be <= spec.traffic.maxReplicas",
        "every variant's gpu.type must be listed under spec.gpus",
    ):
        assert message in text


def test_gpu_types_are_open_in_the_crd() -> None:
    """The CRD fixes no GPU type list and no rule on GPU figures: the cluster's mapping, which
    the API server cannot see, decides (api/admission.py)."""
    text = crd_yaml()
    assert "compute capability" not in text
    gpu = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["gpus"]["items"]["properties"]["type"]
    assert gpu["type"] == "string" and "enum" not in gpu
    assert gpu["maxLength"] == 63 and gpu["pattern"]


def test_printer_columns_answer_what_cost_why() -> None:
    cols = {
        c["name"]: c["jsonPath"] for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert cols["Active"] == ".status.activeVariant"
    assert cols["Cost/h"] == ".status.hourlyCost"
    assert cols["Net/h"] == ".status.netValuePerHour"
    assert {"Target", "Replicas", "Phase", "Age"} <= set(cols)


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_examples_use_only_schema_fields(example: Path) -> None:
    """Every key an example uses exists in the CRD schema (the API server would prune it)."""
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def check(value: object, node: dict[str, object], path: str) -> None:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return
        if isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
            for k, v in value.items():  # a map (podLabels, nodeSelector): any key
                check(v, node["additionalProperties"], f"{path}.{k}")  # type: ignore[arg-type]
        elif isinstance(value, dict):
            props = node.get("properties", {})
            assert isinstance(props, dict)
            for k, v in value.items():
                assert k in props, f"{example.name}: {path}.{k} is not in the schema"
                check(v, props[k], f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                check(v, node["items"], f"{path}[{i}]")  # type: ignore[arg-type]

    for doc in yaml.safe_load_all(example.read_text()):
        if doc.get("kind") == "ModelDeployment":  # beside it, e.g. the PVC it mounts
            check(doc["spec"], schema, "spec")


def test_list_items_that_may_be_null_are_nullable() -> None:
    """The forecast's daily profile holds null for half hours not seen yet: the API server
    refuses the status write unless the item schema says nullable."""
    crd = yaml.safe_load(crd_yaml())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    profile = status["properties"]["forecast"]["properties"]["profile"]
    assert profile["items"] == {"type": "number", "nullable": True}
