"""Read ModelDeployments from YAML text or API objects, with errors that name the field.

A pydantic error location such as ('spec', 'variants', 2, 'gpu', 'type') becomes
`spec.variants[2].gpu.type`, followed by what was wrong and the value given, so that a user
can go to the line and fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from paretoscale.api.types import ModelDeployment, ModelDeploymentSpec
from paretoscale.errors import SpecError


def field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def problems_of(err: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[str]:
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        given = e.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
        lines.append(f"{field_path(prefix + tuple(e['loc']))}: {msg}{shown}")
    return lines


def parse_manifests(text: str, source: str) -> list[ModelDeployment]:
    """Every ModelDeployment in a (multi-document) YAML text; other kinds are skipped."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise SpecError(source, [f"not valid YAML: {e}"]) from None
    out = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise SpecError(
                source, [f"document {i + 1}: expected a mapping, got {type(doc).__name__}"]
            )
        if doc.get("kind") != "ModelDeployment":
            continue
        try:
            out.append(ModelDeployment.model_validate(doc))
        except ValidationError as e:
            raise SpecError(source, problems_of(e)) from None
    if not out:
        raise SpecError(source, ["no ModelDeployment in this file (kind: ModelDeployment)"])
    return out


def parse_spec(spec: Mapping[str, Any], source: str) -> ModelDeploymentSpec:
    """The spec of an object read from the API server."""
    try:
        return ModelDeploymentSpec.model_validate(dict(spec))
    except ValidationError as e:
        raise SpecError(source, problems_of(e, ("spec",))) from None
