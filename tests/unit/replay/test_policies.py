"""The baselines' rules: HPA scale-down window and tolerance, KEDA's queue threshold, WVA's
saturation analyzer."""

from __future__ import annotations

import pytest

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.replay.observe import PromView, Scrapes
from paretoscale.replay.policies import (
    HpaMemory,
    KedaQueue,
    LlmdSloKeda,
    StaticHpa,
    TickInput,
    WvaSaturation,
    WvaVariant,
    best_quality_variant,
    cheapest_feasible_variant,
    hpa_step,
    llmd_ratio,
    wva_targets,
    wva_variants,
)


def test_hpa_scales_up_at_once_and_down_after_the_window() -> None:
    m = hpa_step(2, 2.0, 1, 16, None, 0.0, 300.0)
    assert m.replicas == 4
    m = hpa_step(4, 0.5, 1, 16, m, 30.0, 300.0)  # wants 2, held: 4 was recommended 30 s ago
    assert m.replicas == 4
    for t in (60.0, 150.0, 290.0):
        m = hpa_step(m.replicas, 0.5, 1, 16, m, t, 300.0)
        assert m.replicas == 4
    m = hpa_step(4, 0.5, 1, 16, m, 331.0, 300.0)  # the 4 recommended at t=0 and 30 have aged out
    assert m.replicas == 2


def test_hpa_tolerance_and_bounds() -> None:
    assert hpa_step(4, 1.09, 1, 16, None, 0.0, 300.0).replicas == 4
    assert hpa_step(4, 1.2, 1, 16, None, 0.0, 300.0).replicas == 5
    assert hpa_step(4, 10.0, 1, 6, None, 0.0, 300.0).replicas == 6
    assert hpa_step(4, 0.0, 2, 6, None, 400.0, 300.0).replicas == 2  # no history: down at once


def test_hpa_baselines_take_the_specs_scale_down_window(assistant: ModelDeploymentSpec) -> None:
    traffic = assistant.traffic.model_copy(update={"scale_down_stabilization_seconds": 600})
    spec = assistant.model_copy(update={"traffic": traffic})
    for policy in (StaticHpa(spec, "bf16"), KedaQueue(spec, "bf16"), LlmdSloKeda(spec, "bf16")):
        m = HpaMemory(4, ((0.0, 4),))
        held = policy.decide(tick(view_with(waiting=0.0, ready=4), m, at=400.0, n=4))
        assert held.replicas == {"bf16": 4}  # 400 s: inside the spec's 600 s, past the HPA's 300
        down = policy.decide(tick(view_with(waiting=0.0, ready=4), held.memory, at=601.0, n=4))
        assert down.replicas == {"bf16": 1}


def view_with(waiting: float, ready: int, kv: float = 0.1, rate: float = 0.0) -> PromView:
    scrapes = Scrapes(4, 4, (1.0,), False, seed=0)
    scrapes.waiting[:, 0] = waiting
    scrapes.kv[:, 0] = kv
    scrapes.ready[:, 0] = ready
    scrapes.completions[:, 0] = rate * 30.0
    scrapes.rate_noise[:] = 1.0
    return PromView(
        scrapes, tick=3, tick_s=30.0, delay_ticks=1, window_ticks=2, prior_rate_rps=rate
    )


def tick(view: PromView, memory: object, at: float = 0.0, n: int = 2) -> TickInput:
    return TickInput(3, at, view, (n, 0, 0, 0), (n, 0, 0, 0), {}, memory)


def test_keda_scales_on_waiting_above_five_per_replica(assistant: ModelDeploymentSpec) -> None:
    keda = KedaQueue(assistant, "bf16")
    out = keda.decide(tick(view_with(waiting=6.0, ready=2), HpaMemory(2)))  # 12 waiting / 10
    assert out.replicas == {"bf16": 3}
    out = keda.decide(tick(view_with(waiting=5.0, ready=2), HpaMemory(2)))  # 10 / 10: hold
    assert out.replicas == {"bf16": 2}
    m = HpaMemory(4, ((0.0, 4),))
    out = keda.decide(tick(view_with(waiting=0.0, ready=4), m, at=100.0, n=4))
    assert out.replicas == {"bf16": 4}  # an empty queue waits out the 300 s window
    out = keda.decide(tick(view_with(waiting=0.0, ready=4), out.memory, at=301.0, n=4))
    assert out.replicas == {"bf16": 1}


def test_static_hpa_sizes_for_declared_capacity(assistant: ModelDeploymentSpec) -> None:
    # bf16's declared capacity at 8 s is 11.49 req/s; x 0.8 = 9.19 req/s per replica
    hpa = StaticHpa(assistant, "bf16")
    out = hpa.decide(tick(view_with(waiting=0, ready=0, rate=30.0), None))
    assert out.replicas == {"bf16": 4} and out.serving == ("bf16",)


def test_best_and_cheapest(assistant: ModelDeploymentSpec) -> None:
    assert best_quality_variant(assistant, 60.0) == "bf16"  # ties with eagle3: cheaper at 60
    assert cheapest_feasible_variant(assistant, 60.0) == "fp8"  # L40S: not 60 req/s in 8 GPUs
    assert cheapest_feasible_variant(assistant, 5.0) == "w4a16-l40s"


def wva(
    name: str,
    ready: int,
    kv: float,
    waiting: float,
    cost: float,
    existing: int | None = None,
    lo: int = 1,
) -> WvaVariant:
    return WvaVariant(
        name, ready, ready if existing is None else existing, kv, waiting, cost, lo, 16, True
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # spare KV 0.80 - 0.75 = 0.05 < 0.10: the cheapest per unit of capacity grows
        ([wva("a", 2, 0.75, 0, 1.0), wva("b", 1, 0.75, 0, 0.5)], {"a": 2, "b": 2}),
        # 5 waiting saturates a; b's spare queue 5 - 2.5 = 2.5 < 3: scale up
        ([wva("a", 1, 0.1, 5, 1.0), wva("b", 1, 0.1, 2.5, 0.5)], {"a": 1, "b": 2}),
        # all saturated: scale up
        ([wva("a", 1, 0.9, 0, 1.0), wva("b", 1, 0.85, 0, 0.5)], {"a": 1, "b": 2}),
        # replicas still loading: no cascade
        ([wva("a", 1, 0.9, 0, 1.0, existing=2), wva("b", 1, 0.9, 0, 0.5)], {"a": 2, "b": 1}),
        # plenty of spare, safe to remove one: the most expensive above its minimum
        ([wva("a", 2, 0.1, 0, 1.0), wva("b", 2, 0.1, 0, 0.5)], {"a": 1, "b": 2}),
        # removing one would leave spare KV 0.8 - 0.9/2 = 0.35 >= 0.1 but queue 5 - 6/2 = 2 < 3
        ([wva("a", 3, 0.3, 2, 1.0)], {"a": 3}),
        # at the minimum: nothing to remove
        ([wva("a", 1, 0.1, 0, 1.0), wva("b", 1, 0.1, 0, 0.5)], {"a": 1, "b": 1}),
    ],
    ids=[
        "kv-spare-low",
        "queue-spare-low",
        "all-saturated",
        "loading-blocks",
        "scale-down",
        "unsafe-down",
        "at-min",
    ],
)
def test_wva_saturation_rule(rows: list[WvaVariant], expected: dict[str, int]) -> None:
    assert wva_targets(rows) == expected


def latency_view(
    bucket: int, ready: int, edges: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
) -> PromView:
    """Variant 0 finished 100 requests a tick, every one in bucket `bucket` of `edges`."""
    scrapes = Scrapes(4, 4, edges, True, seed=0)
    assert scrapes.hist is not None
    scrapes.hist[:, 0, bucket] = 100.0
    scrapes.ready[:, 0] = ready
    scrapes.completions[:, 0] = 100.0
    scrapes.rate_noise[:] = 1.0
    return PromView(scrapes, tick=3, tick_s=30.0, delay_ticks=1, window_ticks=2, prior_rate_rps=0)


def test_llmd_ratio() -> None:
    assert llmd_ratio(12.0, 8.0, 5.0, 2, 2) == pytest.approx(1.5)
    assert llmd_ratio(40.0, 8.0, 5.0, 2, 2) == pytest.approx(2.0)  # clamped at 2
    assert llmd_ratio(12.0, 8.0, 5.0, 2, 4) == pytest.approx(0.75)  # 2 of 4 still loading
    assert llmd_ratio(None, 8.0, 5.0, 2, 2) == 1.0  # load but no reading: hold
    assert llmd_ratio(None, 8.0, 0.0, 2, 2) == 0.0  # idle pool reads 0


def test_llmd_slo_keda_scales_on_p90_over_the_slo(assistant: ModelDeploymentSpec) -> None:
    keda = LlmdSloKeda(assistant, "bf16")  # e2e SLO 8 s
    assert keda.needs_histograms and keda.name == "llmd-slo-keda:bf16"
    # p90 in (8, 16]: 8 + 8 x 0.9 = 15.2 s; s = 1.9; ceil(2 x 1.9) = 4
    out = keda.decide(TickInput(3, 0.0, latency_view(4, 2), (2, 0, 0, 0), (2, 0, 0, 0), {},
                                HpaMemory(2)))  # fmt: skip
    assert out.replicas == {"bf16": 4} and out.serving == ("bf16",)
    # the same reading while 2 of 4 replicas load: ratio 1.9 x 2 / 4 = 0.95, in tolerance
    out = keda.decide(TickInput(3, 0.0, latency_view(4, 2), (4, 0, 0, 0), (2, 0, 0, 0), {},
                                HpaMemory(4)))  # fmt: skip
    assert out.replicas == {"bf16": 4}
    # p90 in (2, 4]: 3.8 s, s = 0.475: ceil(4 x 0.475) = 2, once the 300 s window allows
    m = HpaMemory(4, ((0.0, 4),))
    out = keda.decide(TickInput(3, 100.0, latency_view(2, 4), (4, 0, 0, 0), (4, 0, 0, 0), {}, m))
    assert out.replicas == {"bf16": 4}
    out = keda.decide(
        TickInput(3, 301.0, latency_view(2, 4), (4, 0, 0, 0), (4, 0, 0, 0), {}, out.memory)
    )
    assert out.replicas == {"bf16": 2}


def test_wva_deploys_cheapest_per_capacity_and_best_quality(
    assistant: ModelDeploymentSpec,
) -> None:
    # USD/h per req/s of declared capacity: w4a16-l40s 1.86 / 5.1 is the cheapest
    assert wva_variants(assistant, 60.0) == ("bf16", "w4a16-l40s")
    one = assistant.model_copy(update={"variants": assistant.variants[:1]})
    assert wva_variants(one, 60.0) == ("bf16",)
    policy = WvaSaturation(assistant)
    first = policy.decide(tick(view_with(waiting=0, ready=0, rate=5.0), None))
    assert set(first.replicas) == {"bf16", "w4a16-l40s"}
    assert first.serving == ("bf16", "w4a16-l40s") and first.routing == "capacity"
    later = policy.decide(
        TickInput(5, 150.0, view_with(0.0, 1, kv=0.9), (1, 0, 1, 0), (1, 0, 1, 0), {},
                  first.memory)
    )  # fmt: skip
    assert set(later.replicas) == {"bf16", "w4a16-l40s"}  # the others stay undeployed
