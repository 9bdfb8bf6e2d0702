"""Generate the ModelDeployment CustomResourceDefinition from the pydantic models.

The CRD in crds/ is this module's output and is never edited by hand (a test fails when it is
stale). Pydantic emits JSON Schema; Kubernetes wants a structural OpenAPI v3 schema, so this
module inlines `$ref`s, turns `X | None` into an optional X, drops titles and defaults that
would be applied server-side to status, and keeps CEL rules and descriptions.
"""

from __future__ import annotations

from typing import Any

import yaml

from paretoscale.api.names import cel_rules as name_cel_rules
from paretoscale.api.status import ModelDeploymentStatus
from paretoscale.api.types import GROUP, KIND, PLURAL, SHORT_NAME, VERSION, ModelDeploymentSpec

_DROP = {"title", "additionalProperties", "$defs"}


def _has_null(node: dict[str, Any]) -> bool:
    return any(o.get("type") == "null" for o in node.get("anyOf", []))


def _structural(node: Any, defs: dict[str, Any], keep_defaults: bool) -> Any:
    """Rewrite one JSON Schema node into a structural OpenAPI v3 node."""
    if isinstance(node, list):
        return [_structural(n, defs, keep_defaults) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, keep_defaults)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                rest.pop("default")
            return _structural({**options[0], **rest}, defs, keep_defaults)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and (not keep_defaults or value is None)):
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020 spells the bound in the keyword; Kubernetes (draft 4) wants
            # minimum/maximum plus a boolean.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "items" and isinstance(value, dict) and _has_null(value):
            # A list element that may be null (e.g. a forecast slot not seen yet): the API
            # server refuses a null item unless the schema says nullable.
            out[key] = {**_structural(value, defs, keep_defaults), "nullable": True}
        elif key == "properties":
            out[key] = {k: _structural(v, defs, keep_defaults) for k, v in value.items()}
        elif key == "additionalProperties":
            continue
        else:
            out[key] = _structural(value, defs, keep_defaults)
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs, keep_defaults)
    if out.get("x-kubernetes-preserve-unknown-fields") and out.get("type") == "object":
        out.pop("additionalProperties", None)
    if (
        out.get("type") == "object"
        and not out.get("properties")
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in out and out.get("type") in ("object", "array"):
        out.pop("default")  # server-side defaults of whole objects would hide user intent
    return out


def openapi_schema(model: type[Any], keep_defaults: bool) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {}), keep_defaults))


PRINTER_COLUMNS = [
    {
        "name": "Active",
        "type": "string",
        "jsonPath": ".status.activeVariant",
        "description": "Variant the Service routes to",
    },
    {
        "name": "Target",
        "type": "string",
        "jsonPath": ".status.targetVariant",
        "description": "Best variant now (differs from Active during a rollout or in Recommend mode)",
    },
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {
        "name": "Cost/h",
        "type": "string",
        "jsonPath": ".status.hourlyCost",
        "description": "USD per hour of the active variant",
    },
    {
        "name": "Net/h",
        "type": "string",
        "jsonPath": ".status.netValuePerHour",
        "description": "Value of served quality minus GPU cost, USD per hour",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Why", "type": "string", "priority": 1, "jsonPath": ".status.decision.reasons[0]"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict."""
    spec_schema = openapi_schema(ModelDeploymentSpec, keep_defaults=True)
    status_schema = openapi_schema(ModelDeploymentStatus, keep_defaults=False)
    status_schema["x-kubernetes-preserve-unknown-fields"] = True  # forward-compatible status
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
                "categories": ["paretoscale"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "ModelDeployment keeps one LLM on the cost-optimal "
                            "point of its accuracy-cost Pareto frontier.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "required": ["spec"],
                            "x-kubernetes-validations": name_cel_rules(),
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `paretoscale crds` from operator/paretoscale/api. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
