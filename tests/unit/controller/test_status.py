"""Status building: conditions move only when they change; Recommend touches no rollout."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.status import ModelDeploymentStatus, ObservedStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.controller.status import TickResult, build_status, comparable, invalid_spec_status
from paretoscale.decide.corrections import Evidence
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.decide.learned import PRIOR_WEIGHT, LearnedProfile, Sample, factors, fit, learn
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, LatencyReading, Observation
from paretoscale.rollout.analysis import Verdict
from paretoscale.rollout.machine import RolloutState, step

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), "x")[0].spec


def tick(
    spec: ModelDeploymentSpec, old: ModelDeploymentStatus, now: float, mode: str = "Auto"
) -> ModelDeploymentStatus:
    d = decide(spec, Observation(at=now, requests_per_s=12.0), CurrentState())
    st = (
        step(RolloutState(), d, {}, Verdict("Inconclusive", ""), spec.rollout, now)
        if mode == "Auto"
        else None
    )
    return build_status(
        old,
        TickResult(
            now,
            3,
            mode,
            d,
            st,
            ObservedStatus(requests_per_second=12.0, basis="live"),
            None,
            True,
            {},
        ),
    )


def test_first_tick_fills_status(spec: ModelDeploymentSpec) -> None:
    s = tick(spec, ModelDeploymentStatus(), 1000.0)
    assert s.phase == "Preparing" and s.target_variant == "fp8" and s.observed_generation == 3
    assert {c.type for c in s.conditions} == {
        "Ready",
        "Progressing",
        "Degraded",
        "MetricsAvailable",
        "SpecValid",
    }
    assert next(c for c in s.conditions if c.type == "Progressing").reason == "RollingOut"
    assert any(r.name == "fp8" and r.on_frontier for r in s.frontier)
    doc = s.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert doc["frontier"][1]["costPer1kRequests"] == "0.16" and doc["decision"]["variant"] == "fp8"


def test_transition_time_kept_when_nothing_flips(spec: ModelDeploymentSpec) -> None:
    a = tick(spec, ModelDeploymentStatus(), 1000.0)
    b = tick(spec, a, 2000.0)
    ta = {c.type: c.last_transition_time for c in a.conditions}
    tb = {c.type: c.last_transition_time for c in b.conditions}
    assert ta == tb
    assert comparable(a)["conditions"] == comparable(b)["conditions"]
    assert comparable(b) == comparable(tick(spec, b, 2000.0))  # same tick twice: nothing to patch


def test_recommend_mode_reports_without_rollout(spec: ModelDeploymentSpec) -> None:
    s = tick(spec, ModelDeploymentStatus(), 1000.0, mode="Recommend")
    assert s.rollout.phase == "Stable" and s.active_variant is None
    assert s.decision is not None and s.decision.variant == "fp8" and s.target_variant == "fp8"
    assert next(c for c in s.conditions if c.type == "Ready").reason == "Recommending"


def test_invalid_spec_keeps_everything_else(spec: ModelDeploymentSpec) -> None:
    good = tick(spec, ModelDeploymentStatus(), 1000.0)
    bad = invalid_spec_status(
        good, ["spec.traffic: minReplicas (5) must be <= maxReplicas (2)"], 2000.0, 4
    )
    cond = next(c for c in bad.conditions if c.type == "SpecValid")
    assert (cond.status, cond.reason) == ("False", "InvalidSpec") and "minReplicas" in cond.message
    assert bad.rollout == good.rollout and bad.frontier == good.frontier


def update(
    spec: ModelDeploymentSpec,
    window: dict[str, LearnedProfile],
    observed: dict[str, tuple[float, float]],
    now: float = 0.0,
) -> dict[str, LearnedProfile]:
    """The windows after readings variant -> (req/s per replica, exact latency at the SLO)."""
    ev = {n: Evidence(r, LatencyReading(lat, lat, lat)) for n, (r, lat) in observed.items()}
    return learn(spec, window, ev, now)


def test_corrections_learn_from_a_slow_variant(spec: ModelDeploymentSpec) -> None:
    # fp8 shows 9.1 s at 9 req/s per replica; its profile reaches 9.1 s at 18: half as fast.
    w = update(spec, {}, {"fp8": (9.0, 9.1)})
    assert w["fp8"].samples[0].factor == pytest.approx(0.5)
    # one sample: the fit says 0.5, the decision follows it by its confidence 1 / (1 + prior)
    assert factors(w)["fp8"] == pytest.approx(0.5 ** (1 / (1 + PRIOR_WEIGHT)), abs=1e-3)
    for t in range(1, 21):
        w = update(spec, w, {"fp8": (9.0, 9.1)}, 30.0 * t)
    f = fit(w["fp8"].samples)
    assert f.factor == pytest.approx(0.5)
    assert f.confidence == pytest.approx(21 / (21 + PRIOR_WEIGHT), abs=1e-3)
    assert 0.5 < f.applied < 0.55
    c = factors(w)
    d = decide(spec, Observation(at=0, requests_per_s=12.0, capacity_factors=c), CurrentState())
    assert d.evaluation("fp8").capacity_basis == "live" and d.evaluation("fp8").replicas == 2
    gone = {"gone": LearnedProfile(1.0, (Sample(0.0, 1.0, 1.0, 0.5),))}
    assert update(spec, gone, {}) == {}


def test_corrections_ignore_light_load_and_bound_beyond_the_profile(
    spec: ModelDeploymentSpec,
) -> None:
    # 5 req/s is under half of fp8's 15.9 req/s capacity: a p95 there says little.
    assert update(spec, {}, {"fp8": (5.0, 4.9)}) == {}
    # 12 s at 9 req/s: beyond the profile's 9.1 s top, reached at 18: at most half as fast.
    assert update(spec, {}, {"fp8": (9.0, 12.0)})["fp8"].samples[0].factor == pytest.approx(0.5)


def test_estimated_variant_learns_when_it_misses_the_slo() -> None:
    path = Path(__file__).parents[3] / "examples" / "llama-70b-speculative.yaml"
    spec70 = parse_manifests(path.read_text(), "x")[0].spec
    # No profile: at 3.6 req/s per replica it misses the 25 ms ITL, so its capacity is at
    # most 3.6 req/s, whatever the estimate (variant_capacity) said.
    v = next(x for x in spec70.variants if x.name == "int8-w8a8")
    estimate, _ = variant_capacity(v, spec70.slo.seconds, None, None, spec70.slo.latency)
    w = update(spec70, {}, {"int8-w8a8": (3.6, 0.04)})
    assert w["int8-w8a8"].samples[0].factor == pytest.approx(3.6 / estimate, abs=0.01)
    assert w["int8-w8a8"].declared_rps == pytest.approx(estimate)
    assert update(spec70, {}, {"int8-w8a8": (3.6, 0.01)}) == {}


def test_recently_failed_from_last_switches() -> None:
    from paretoscale.api.status import SwitchRecord
    from paretoscale.controller.status import recently_failed

    s = ModelDeploymentStatus(
        last_switches=[
            SwitchRecord(
                to_variant="fp8",
                at="1970-01-01T00:16:40Z",
                reason="not Ready",
                outcome="rolledBack",
            ),
            SwitchRecord(
                to_variant="bf16", at="1970-01-01T00:16:40Z", reason="ok", outcome="completed"
            ),
        ]
    )
    assert set(recently_failed(s, 1000.0 + 100, 1800)) == {"fp8"}
    assert recently_failed(s, 1000.0 + 1800, 1800) == {}


def test_slo_unreachable_is_set_and_cleared(spec: ModelDeploymentSpec) -> None:
    """No variant meets a 0.05 s SLO: SLOUnreachable=True with the decision's reason (the
    cheapest variant at its fewest replicas); back at 8 s it is False."""
    tight = spec.model_copy(update={"slo": spec.slo.model_copy(update={"seconds": 0.05})})
    s = tick(tight, ModelDeploymentStatus(), 1000.0)
    cond = next(c for c in s.conditions if c.type == "SLOUnreachable")
    assert (cond.status, cond.reason) == ("True", "NoVariantMeetsSLO")
    assert cond.message.startswith("no variant meets the SLO") and "net" in cond.message
    assert s.target_variant == "w4a16-l40s"  # the cheapest, not the priciest at maxReplicas
    back = tick(spec, s, 2000.0)
    cond = next(c for c in back.conditions if c.type == "SLOUnreachable")
    assert (cond.status, cond.reason) == ("False", "SLOReachable")


def test_apply_failed_clears_once_applies_succeed(spec: ModelDeploymentSpec) -> None:
    """A failed apply sets Degraded=True ApplyFailed; the next tick that applies clears it,
    where before it stayed True until the next switch completed."""
    ok = tick(spec, ModelDeploymentStatus(), 1000.0)
    d = decide(spec, Observation(at=2000.0, requests_per_s=12.0), CurrentState())
    failed = build_status(
        ok,
        TickResult(
            2000.0, 3, "Auto", d, None, ObservedStatus(requests_per_second=12.0, basis="live"),
            None, True, {}, apply_error="Deployment x-fp8: 422 resources.limits",
        ),
    )  # fmt: skip
    cond = next(c for c in failed.conditions if c.type == "Degraded")
    assert (cond.status, cond.reason) == ("True", "ApplyFailed")
    again = tick(spec, failed, 3000.0)
    cond = next(c for c in again.conditions if c.type == "Degraded")
    assert (cond.status, cond.reason, cond.message) == (
        "False",
        "AsExpected",
        "applies succeed again",
    )


def test_rolled_back_stays_reported_on_a_quiet_tick(spec: ModelDeploymentSpec) -> None:
    """A rollback is not undone by a tick where nothing happens."""
    ok = tick(spec, ModelDeploymentStatus(), 1000.0)
    conds = [
        c.model_copy(update={"status": "True", "reason": "RolledBack", "message": "rolled back"})
        if c.type == "Degraded"
        else c
        for c in ok.conditions
    ]
    later = tick(spec, ok.model_copy(update={"conditions": conds}), 2000.0)
    cond = next(c for c in later.conditions if c.type == "Degraded")
    assert (cond.status, cond.reason) == ("True", "RolledBack")
