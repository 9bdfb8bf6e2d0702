"""tick() derives the arrivals since the last poll from the serving variant's completions and
the growth of its waiting gauge (kept in the saturation memory), so a burst adds replicas a
rate window before the windowed arrivals show it."""

from __future__ import annotations

from pathlib import Path

from paretoscale.api.manifest import parse_manifests
from paretoscale.decide.saturation import SaturationMemory
from paretoscale.decide.types import LatencyReading, Observation, VariantSignals
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import TickMemory, TickOptions
from paretoscale.tick.tick import tick

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


def _tick(waiting_now: float, waiting_before: float) -> tuple[int, float, tuple[str, ...]]:
    spec = parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec
    memory = TickMemory(
        rollout=RolloutState("Stable", "fp8"),
        variant_since=0.0,
        saturation=SaturationMemory("fp8", last_waiting=waiting_before),
    )
    signals = VariantSignals(
        requests_per_s=20.0,
        requests_per_replica_s=10.0,
        requests_in_window=2400.0,
        latency=LatencyReading(4.5, 2.5, 5.0),
        waiting=waiting_now,
        kv_cache_usage=0.05,
    )
    obs = Observation(
        at=10_000.0, requests_per_s=20.0, arrivals_per_s=20.0, variants={"fp8": signals}
    )
    facts = {"fp8": VariantFacts(2, 2)}
    out = tick(spec, memory, obs, facts, 10_000.0, TickOptions(forecast=False, tick_seconds=30))
    d = out.decision
    return d.replicas, d.requests_per_s, d.reasons


def test_waiting_growth_since_the_last_poll_scales_at_once() -> None:
    calm, rate, _ = _tick(0.0, 0.0)
    burst, rate_b, why = _tick(3000.0, 0.0)  # +100 req/s not served since the last poll
    assert rate == rate_b == 20.0  # the windowed demand is unchanged
    assert burst >= calm + 4
    assert any("arrivals surged to 120.00 req/s" in r for r in why)
    # a draining queue never lowers what the windowed demand asks for
    draining, _, _ = _tick(0.0, 3000.0)
    assert draining == calm
