"""decide/evaluate.py remembers its last result per spec object: the same inputs give the
same tuple back without the work; any input that moves, or another spec object, evaluates
again; and what it returns is what evaluating afresh returns."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide import evaluate as ev
from paretoscale.decide.types import HeldGpus
from paretoscale.economics.work import TokenMix

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


@pytest.fixture
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def fresh(spec: ModelDeploymentSpec, *args: object, **kw: object) -> tuple[ev.VariantEval, ...]:
    return ev._evaluate(  # type: ignore[arg-type]
        spec, *args, kw.get("tokens"), kw.get("blocked"), kw.get("mix"), kw.get("gpus_now"),
        ev.BUILTIN, kw.get("held"),
    )  # fmt: skip


def count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """From now on, each evaluation done afresh (not remembered) appends its arguments."""
    calls: list[tuple[object, ...]] = []
    real = ev._evaluate

    def counted(*a: object) -> tuple[ev.VariantEval, ...]:
        calls.append(a)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(ev, "_evaluate", counted)
    return calls


def test_the_same_inputs_give_the_same_result_without_evaluating_again(
    spec: ModelDeploymentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ev.evaluate(spec, 12.0, {"H100": 6.88}, {"fp8": 1.2})
    calls = count_evaluations(monkeypatch)
    assert ev.evaluate(spec, 12.0, {"H100": 6.88}, {"fp8": 1.2}) is first
    assert calls == []
    assert first == fresh(spec, 12.0, {"H100": 6.88}, {"fp8": 1.2})


@pytest.mark.parametrize(
    "change",
    [
        {"rate": 30.0},
        {"prices": {"H100": 3.0}},
        {"factors": {"fp8": 0.5}},
        {"tokens": 5000.0},
        {"blocked": {"fp8": "rolled back"}},
        {"mix": TokenMix(8000.0, 100.0)},
        {"gpus_now": {"H100": 1}},
        {"held": HeldGpus("fp8", "H100", 16)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_any_input_that_moves_evaluates_again(
    spec: ModelDeploymentSpec, change: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    base: dict[str, object] = {"rate": 12.0, "prices": {"H100": 6.88}, "factors": {"fp8": 1.2}}
    args = {**base, **change}
    kw = {k: v for k, v in args.items() if k not in ("rate", "prices", "factors")}
    expected = fresh(spec, args["rate"], args["prices"], args["factors"], **kw)
    ev.evaluate(spec, 12.0, {"H100": 6.88}, {"fp8": 1.2})
    calls = count_evaluations(monkeypatch)
    after = ev.evaluate(
        spec, args["rate"], args["prices"], args["factors"],  # type: ignore[arg-type]
        kw.get("tokens"), kw.get("blocked"), kw.get("mix"), kw.get("gpus_now"),  # type: ignore[arg-type]
        held=kw.get("held"),  # type: ignore[arg-type]
    )  # fmt: skip
    assert len(calls) == 1
    assert after == expected


def test_another_spec_object_is_evaluated_on_its_own(spec: ModelDeploymentSpec) -> None:
    first = ev.evaluate(spec, 12.0, {}, {})
    slo = spec.slo.model_copy(update={"seconds": 4.0})
    tighter = spec.model_copy(update={"slo": slo})
    other = ev.evaluate(tighter, 12.0, {}, {})
    assert other == fresh(tighter, 12.0, {}, {})
    assert other != first
    assert ev.evaluate(spec, 12.0, {}, {}) == first


def test_an_entry_goes_with_its_spec(spec: ModelDeploymentSpec) -> None:
    other = spec.model_copy(update={"model": "another"})
    ev.evaluate(other, 12.0, {}, {})
    key = id(other)
    assert key in ev._LAST
    del other
    gc.collect()
    assert key not in ev._LAST
