"""The saturation guard: a saturated serving variant gets replicas at once, scale-down waits
until every signal agrees, and a signal gone stale stops blocking after a few ticks."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.policy import decide
from paretoscale.decide.saturation import (
    STALE_TICKS,
    SaturationMemory,
    above_slo,
    assess,
    below_slo,
)
from paretoscale.decide.types import CurrentState, LatencyReading, Observation, VariantSignals

EXAMPLES = Path(__file__).parents[3] / "examples"
SLO = 8.0


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    path = EXAMPLES / "assistant-llama-8b.yaml"
    return parse_manifests(path.read_text(), str(path))[0].spec


def calm(**kw: object) -> VariantSignals:
    base: dict[str, object] = dict(
        requests_per_s=10.0,
        latency=LatencyReading(3.0, 2.5, 5.0),
        waiting=0.0,
        running=20.0,
        kv_cache_usage=0.4,
    )
    base.update(kw)
    return VariantSignals(**base)  # type: ignore[arg-type]


def test_calm_signals_allow_scale_down() -> None:
    s = assess("fp8", calm(), 3, SLO, SaturationMemory())
    assert not s.saturated and s.calm and s.replicas == 3 and s.reason == ""
    assert s.memory == SaturationMemory("fp8", 0, 0, 0.0, 0)


def test_full_kv_cache_saturates_at_once() -> None:
    s = assess("fp8", calm(kv_cache_usage=0.93), 3, SLO, SaturationMemory())
    assert s.saturated and not s.calm and s.replicas == 4  # at least +1
    assert "KV cache 93%" in s.reason


def test_latency_must_miss_the_slo_two_ticks_in_a_row() -> None:
    slow = calm(latency=LatencyReading(9.0, 5.0, 10.0))
    first = assess("fp8", slow, 2, SLO, SaturationMemory())
    assert not first.saturated and not first.calm  # one tick: no scale-down, no scale-up
    second = assess("fp8", slow, 2, SLO, first.memory)
    assert second.saturated and second.replicas == 3  # ceil(2 x 9/8) = 3
    assert assess("fp8", calm(), 2, SLO, first.memory).memory.over_slo_ticks == 0


def test_growing_queue_scales_in_proportion_capped_at_twice() -> None:
    m = assess("fp8", calm(waiting=2.0), 4, SLO, SaturationMemory()).memory
    m = assess("fp8", calm(waiting=6.0), 4, SLO, m).memory
    s = assess("fp8", calm(waiting=10.0, running=40.0), 4, SLO, m)
    assert s.saturated and s.replicas == 5  # (40 + 10) / 40 = 1.25 x 4 = 5
    s = assess("fp8", calm(waiting=90.0, running=30.0), 4, SLO, s.memory)
    assert s.replicas == 8  # 4 x (120 / 30) = 16, capped at 2 x


def test_a_stale_signal_blocks_scale_down_only_for_a_few_ticks() -> None:
    m = assess("fp8", calm(), 3, SLO, SaturationMemory()).memory
    held = 0
    for _ in range(STALE_TICKS + 3):
        s = assess("fp8", calm(kv_cache_usage=None), 3, SLO, m)
        m = s.memory
        held += not s.calm
    assert held == STALE_TICKS and s.calm


def test_a_signal_never_read_never_blocks() -> None:
    s = assess("fp8", VariantSignals(requests_per_s=5.0), 3, SLO, SaturationMemory())
    assert s.calm and s.memory.missing_ticks is None


def test_counters_restart_when_the_serving_variant_changes() -> None:
    m = SaturationMemory("bf16", over_slo_ticks=1, waiting_ticks=1, last_waiting=5.0)
    s = assess("fp8", calm(latency=LatencyReading(9.0, 5.0, 10.0)), 2, SLO, m)
    assert not s.saturated and s.memory.over_slo_ticks == 1


def test_share_within_an_edge_slo_must_be_beyond_noise() -> None:
    # SLO 0.025 s is an ITL bucket edge: the share of requests within it, not the quantile.
    noisy = LatencyReading(0.05, 0.025, 0.05, within_slo=0.94, count=250)
    assert not above_slo(noisy, 0.025, 0.95)  # 2 sigma at n=250 is 0.028
    assert above_slo(LatencyReading(0.05, 0.025, 0.05, 0.90, 250), 0.025, 0.95)
    assert below_slo(LatencyReading(0.02, 0.01, 0.025, 0.99, 250), 0.025, 0.95)
    assert not below_slo(LatencyReading(0.02, 0.01, 0.025, 0.96, 250), 0.025, 0.95)
    # without the share, a p95 barely over the edge's bucket is noise; half-way in is not
    assert not above_slo(LatencyReading(0.027, 0.025, 0.05), 0.025, 0.95)
    assert above_slo(LatencyReading(0.04, 0.025, 0.05), 0.025, 0.95)
    # an SLO inside a bucket: the interpolated value
    assert above_slo(LatencyReading(8.5, 5.0, 10.0), SLO, 0.95)


def test_decide_scales_a_saturated_variant_within_max_and_inventory(
    spec: ModelDeploymentSpec,
) -> None:
    obs = Observation(at=10_000.0, requests_per_s=12.0)
    state = CurrentState(active="fp8", replicas=2, variant_since=0.0)
    plain = decide(spec, obs, state)
    assert plain.variant == "fp8" and plain.replicas == 2
    full = assess("fp8", calm(kv_cache_usage=0.97), 2, SLO, SaturationMemory())
    d = decide(spec, obs, state, full)
    assert d.replicas == 3 and d.action == "scale"
    assert any("saturated" in r for r in d.reasons)
    fp8 = next(v for v in spec.variants if v.name == "fp8")
    hi = fp8.max_replicas if fp8.max_replicas is not None else spec.traffic.max_replicas
    available = next(g.available for g in spec.gpus if g.type == fp8.gpu.type)
    top = min(hi, available // fp8.gpu.count)
    n = top - 2
    huge = assess("fp8", calm(kv_cache_usage=0.97, waiting=99.0), n, SLO, SaturationMemory())
    assert huge.replicas == 2 * n > top
    assert decide(spec, obs, CurrentState("fp8", n, 0.0), huge).replicas == top


def test_decide_holds_scale_down_until_every_signal_agrees(spec: ModelDeploymentSpec) -> None:
    obs = Observation(at=10_000.0, requests_per_s=2.0)
    state = CurrentState(active="fp8", replicas=4, variant_since=9_000.0)  # dwell: no switch
    unsure = assess("fp8", calm(waiting=30.0), 4, SLO, SaturationMemory())
    assert not unsure.calm and not unsure.saturated
    held = decide(spec, obs, state, unsure)
    assert held.replicas == 4 and any("no scale-down" in r for r in held.reasons)
    assert held.scale_down is None  # the stabilization window does not start either
    freed = decide(spec, obs, state, assess("fp8", calm(), 4, SLO, SaturationMemory()))
    assert freed.scale_down is not None  # the window starts


def test_latency_with_a_request_per_replica_at_most_adds_no_replica() -> None:
    # p95 above the SLO with 4 requests in flight on 5 replicas: service time, not load.
    slow = calm(latency=LatencyReading(9.0, 5.0, 10.0), running=4.0, waiting=0.0)
    m = assess("w4a16", slow, 5, SLO, SaturationMemory()).memory
    s = assess("w4a16", slow, 5, SLO, m)
    assert not s.saturated and not s.calm and s.replicas == 5  # no scale-down either
    assert "service time" in s.reason
    # the same latency with 8 in flight on those 5 replicas is load: scale up
    busy = assess("w4a16", calm(latency=LatencyReading(9.0, 5.0, 10.0), running=8.0), 5, SLO, m)
    assert busy.saturated and busy.replicas == 6
    # and with a queue on some replica, whatever runs: queueing
    queued = calm(latency=LatencyReading(9.0, 5.0, 10.0), running=3.0, waiting=1.0)
    assert assess("w4a16", queued, 5, SLO, m).saturated
