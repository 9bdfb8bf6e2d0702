"""10,000 generated ModelDeployments, valid and broken, through pydantic: every one is accepted
or refused through the documented path (ValidationError, SpecError), none raises anything else,
no accepted spec holds a NaN or an infinity, and an accepted spec survives its own round trip
to the wire. tests/e2e/test_spec_agreement.py sends a sample of the same generator to the real
API server and checks that both agree."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paretoscale.api.manifest import parse_spec
from paretoscale.api.types import ModelDeployment, ModelDeploymentSpec
from paretoscale.errors import SpecError
from tests.unit.api.spec_mutations import mutated, pydantic_verdict

COUNT = 10_000


def _numbers(node: Any) -> list[float]:
    if isinstance(node, dict):
        return [n for v in node.values() for n in _numbers(v)]
    if isinstance(node, list):
        return [n for v in node for n in _numbers(v)]
    return [float(node)] if isinstance(node, int | float) and not isinstance(node, bool) else []


def check(doc: dict[str, Any]) -> bool:
    """Validates one object both ways; returns whether it was accepted."""
    problems = pydantic_verdict(doc)
    spec = doc.get("spec")
    if isinstance(spec, dict):
        try:
            parse_spec(spec, "generated")
        except SpecError as error:
            assert error.problems, "a SpecError names at least one problem"
    if problems:
        assert all(isinstance(p, str) and p for p in problems)
        return False
    model = ModelDeployment.model_validate(doc)
    wire = model.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert all(math.isfinite(n) for n in _numbers(wire)), wire
    assert ModelDeploymentSpec.model_validate(wire) == model.spec
    return True


def test_ten_thousand_generated_specs_are_accepted_or_refused_cleanly() -> None:
    rnd = random.Random(11)
    verdicts = [check(mutated(rnd.choice)) for _ in range(COUNT)]
    accepted = sum(verdicts)
    # The generator makes both kinds in earnest, so the check above saw both paths.
    assert COUNT * 0.1 < accepted < COUNT * 0.9, accepted


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_generated_specs_are_accepted_or_refused_cleanly(data: st.DataObject) -> None:
    def choose(options: Sequence[Any]) -> Any:
        if not options:
            raise IndexError("nothing to choose from")
        return data.draw(st.sampled_from(list(options)))

    check(mutated(choose))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("traffic", "targetUtilization"), math.nan),
        (("slo", "seconds"), math.inf),
        (("value", "abTests", 0, "onlineDelta"), math.nan),
        (("value", "abTests", 0, "offlineDelta"), -math.inf),
        (("gpus", 0, "available"), 10**20),
        (("gpus", 0, "usdPerHour"), "Infinity"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused(path: tuple[Any, ...], value: Any) -> None:
    doc = mutated(lambda options: options[0])  # the first example, unchanged
    node = doc["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert pydantic_verdict(doc)
