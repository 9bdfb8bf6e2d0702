"""tick(): Recommend mode applies nothing, a rollback is remembered and blocks a retry (longer
for a variant that keeps failing), and the forecast floor starts slow replicas before the
ramp needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.types import LatencyReading, Observation, VariantSignals
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import RolledBack, TickMemory, TickOptions
from paretoscale.tick.tick import MAX_BACKOFF, recently_failed, retry_after_s, tick

EXAMPLES = Path(__file__).parents[3] / "examples"


def load(name: str) -> ModelDeploymentSpec:
    path = EXAMPLES / name
    return parse_manifests(path.read_text(), str(path))[0].spec


@pytest.fixture(scope="module")
def spec70() -> ModelDeploymentSpec:
    return load("llama-70b-speculative.yaml")


def test_recommend_mode_applies_nothing_and_remembers_the_recommendation(
    spec70: ModelDeploymentSpec,
) -> None:
    opts = TickOptions(mode="Recommend")
    out = tick(spec70, TickMemory(), Observation(at=0.0, requests_per_s=2.0), {}, 0.0, opts)
    assert out.step is None and out.verdict is None
    assert out.memory.recommended == (out.decision.variant, out.decision.replicas)
    assert out.memory.rollout == RolloutState()  # nothing rolls in Recommend mode


def test_a_rollback_is_remembered_and_not_retried(spec70: ModelDeploymentSpec) -> None:
    timeout = spec70.rollout.ready_timeout_seconds
    stuck = TickMemory(
        rollout=RolloutState("Preparing", "fp8", "bf16-ngram", 2, 0.0, 0.0, "waiting"),
        variant_since=-50_000.0,
    )
    facts = {"fp8": VariantFacts(1, 1), "bf16-ngram": VariantFacts(2, 0)}
    now = timeout + 1.0
    out = tick(spec70, stuck, Observation(at=now, requests_per_s=0.5), facts, now)
    assert out.step is not None and out.step.switch is not None
    assert out.step.switch.outcome == "rolledBack"
    assert out.memory.rolled_back[0].variant == "bf16-ngram"
    assert out.memory.variant_since == now and out.memory.rollout.phase == "Stable"
    # within retry_after_s the variant is blocked, whatever it would gain
    later = now + retry_after_s(spec70.rollout) / 2
    facts = {"fp8": VariantFacts(1, 1), "bf16-ngram": VariantFacts(0, 0)}
    again = tick(spec70, out.memory, Observation(at=later, requests_per_s=0.5), facts, later)
    ngram = again.decision.evaluation("bf16-ngram")
    assert not ngram.feasible and "rolled back at" in ngram.reason


def test_a_variant_that_keeps_failing_waits_longer_each_time() -> None:
    retry = 2400.0
    once = (RolledBack("w4a16", 0.0, "not enough traffic"),)
    assert "w4a16" in recently_failed(once, retry - 1, retry)
    assert recently_failed(once, retry + 1, retry) == {}
    # a second rollback (newest first) doubles the wait after it; eight wait MAX_BACKOFF x
    twice = (RolledBack("w4a16", 10_000.0, "verification failed"), *once)
    assert "verification failed" in recently_failed(twice, 10_000.0 + 2 * retry - 1, retry)["w4a16"]
    assert recently_failed(twice, 10_000.0 + 2 * retry + 1, retry) == {}
    many = tuple(RolledBack("w4a16", 100_000.0 - 5_000.0 * i, "x") for i in range(8))
    cap = 100_000.0 + MAX_BACKOFF * retry
    assert "w4a16" in recently_failed(many, cap - 1, retry)
    assert recently_failed(many, cap + 1, retry) == {}
    # another variant's failures do not lengthen this one's wait
    other = (RolledBack("fp8", 50_000.0, "x"), RolledBack("fp8", 40_000.0, "x"), *once)
    assert set(recently_failed(other, retry + 1, retry)) == {"fp8"}


def ramp_run(spec: ModelDeploymentSpec, forecast: bool) -> list[tuple[float, float, int]]:
    """fp8 serving a load that climbs from 1 to 7 req/s in an hour; the fleet applies at
    once (replicas Ready immediately), so only the decision differs. (time, rate, replicas)."""
    memory = TickMemory(rollout=RolloutState("Stable", "fp8"), variant_since=0.0)  # dwell
    desired = 1
    out = []
    opts = TickOptions(forecast=forecast, saturation_guard=False, correction=False)
    for k in range(240):
        now = 30.0 * k
        rate = 1.0 if now < 1800 else min(7.0, 1.0 + 6.0 * (now - 1800) / 3600)
        facts = {"fp8": VariantFacts(desired, desired)}
        res = tick(spec, memory, Observation(at=now, requests_per_s=rate), facts, now, opts)
        assert res.step is not None
        memory, desired = res.memory, res.step.fleet.replicas.get("fp8", desired)
        out.append((now, rate, desired))
    return out


def test_the_forecast_starts_replicas_before_the_ramp_needs_them(
    spec70: ModelDeploymentSpec,
) -> None:
    """The trend is trusted once it has scored better than the rate itself, one horizon
    (startup + a tick) into the ramp: the 2nd replica starts no later than without the
    forecast, the 3rd and 4th minutes earlier."""
    ahead, behind = ramp_run(spec70, True), ramp_run(spec70, False)
    assert all(a[2] >= b[2] for a, b in zip(ahead, behind, strict=True))
    startup = next(v.startup_seconds for v in spec70.variants if v.name == "fp8")
    end = ahead[-1][0] + 30.0
    for n in (2, 3, 4):
        t_ahead = next(t for t, _, r in ahead if r >= n)
        t_behind = next((t for t, _, r in behind if r >= n), end)
        assert t_behind - t_ahead >= (0 if n == 2 else startup / 2)
    # on a flat load the floor adds nothing
    assert [r for t, _, r in ahead if t < 1800] == [r for t, _, r in behind if t < 1800]


def test_a_reconcile_between_two_polls_moves_no_counter(spec70: ModelDeploymentSpec) -> None:
    """A watch event reconciles at once; the metrics did not move, nor may the counters or
    the forecast's trend (it divides by the time between observations)."""
    slow = VariantSignals(
        requests_per_s=2.0,
        latency=LatencyReading(0.05, 0.025, 0.05, within_slo=0.8, count=300),
        waiting=0.0,
        kv_cache_usage=0.2,
    )
    memory = TickMemory(rollout=RolloutState("Stable", "fp8"), variant_since=0.0)
    facts = {"fp8": VariantFacts(1, 1)}

    def at(t: float, m: TickMemory) -> TickMemory:
        obs = Observation(at=t, requests_per_s=2.0 + t / 1000, variants={"fp8": slow})
        return tick(spec70, m, obs, facts, t).memory

    assert at(30.0, at(0.0, memory)).saturation.over_slo_ticks == 2  # two polls
    between = at(2.0, at(0.0, memory))
    assert between.saturation.over_slo_ticks == 1  # one poll, reconciled twice
    assert between.forecast == at(0.0, memory).forecast
    assert at(32.0, between).saturation.over_slo_ticks == 2
