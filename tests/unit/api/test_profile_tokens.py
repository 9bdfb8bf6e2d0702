"""A variant's profileTokens: the token mix its profile was measured at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paretoscale.api.crd import crd
from paretoscale.api.manifest import parse_manifests
from paretoscale.errors import SpecError

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


def _with(tokens: str) -> str:
    return EXAMPLE.read_text().replace(
        "    profile:                    # per replica",
        f"    profileTokens: {tokens}\n    profile:                    # per replica",
    )


def test_stated_mix_parses() -> None:
    spec = parse_manifests(_with("{promptTokens: 2048, outputTokens: 28}"), "x")[0].spec
    t = spec.variants[0].profile_tokens
    assert t is not None and (t.prompt_tokens, t.output_tokens) == (2048, 28)
    assert spec.variants[1].profile_tokens is None  # unstated: the Azure conversation means


@pytest.mark.parametrize(
    "tokens",
    [
        "{promptTokens: 0, outputTokens: 28}",
        "{promptTokens: 10, outputTokens: 0}",
        "{promptTokens: 10}",
    ],
)
def test_bad_mix_is_refused_with_its_path(tokens: str) -> None:
    with pytest.raises(SpecError, match="profileTokens"):
        parse_manifests(_with(tokens), "x")


def test_crd_has_the_field_with_its_bounds() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    variant: dict[str, Any] = schema["properties"]["spec"]["properties"]["variants"]["items"]
    tokens = variant["properties"]["profileTokens"]
    assert tokens["required"] == ["promptTokens", "outputTokens"]
    assert tokens["properties"]["outputTokens"]["minimum"] == 1
    prompt = tokens["properties"]["promptTokens"]
    assert prompt["minimum"] == 0 and prompt["exclusiveMinimum"] is True  # OpenAPI v3.0
