"""decide() on the issue's example, scenario by scenario, with the guards on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import keeps_up_ratio
from paretoscale.decide.guards import stabilized_replicas
from paretoscale.decide.policy import decide, delivered
from paretoscale.decide.saturation import Saturation, SaturationMemory
from paretoscale.decide.types import CurrentState, Observation, ScaleDown

EXAMPLE = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


def obs(rate: float | None, at: float = 10_000.0, **kw: object) -> Observation:
    return Observation(at=at, requests_per_s=rate, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "variant", "replicas"),
    [
        (0.0, "w4a16-l40s", 1),
        (2.0, "w4a16-l40s", 1),
        (12.0, "fp8", 1),
        (30.0, "fp8", 3),
        (100.0, "fp8", 8),
    ],
    ids=["idle", "low", "mid", "high", "peak"],
)
def test_first_rollout_picks_the_best(
    spec: ModelDeploymentSpec, rate: float, variant: str, replicas: int
) -> None:
    d = decide(spec, obs(rate), CurrentState())
    assert (d.variant, d.replicas, d.action) == (variant, replicas, "switch")
    assert any("highest net value" in r for r in d.reasons)


def test_no_metrics_keeps_what_runs(spec: ModelDeploymentSpec) -> None:
    d = decide(
        spec,
        obs(None, metrics_problem="prometheus down"),
        CurrentState(active="bf16", replicas=3, variant_since=0),
    )
    assert (d.variant, d.replicas, d.action) == ("bf16", 3, "hold")
    assert "prometheus down" in d.reasons[0]


def test_no_metrics_and_nothing_running_starts_on_expected_load(spec: ModelDeploymentSpec) -> None:
    d = decide(spec, obs(None), CurrentState())
    assert d.rate_basis == "priors" and d.requests_per_s == 0.0 and d.variant == "w4a16-l40s"


def test_switch_waits_for_dwell_then_switches(spec: ModelDeploymentSpec) -> None:
    state = CurrentState(active="w4a16-l40s", replicas=3, variant_since=9_000.0)
    held = decide(spec, obs(12.0, at=9_600.0), state)
    assert held.variant == "w4a16-l40s" and held.best == "fp8"
    assert "minimum dwell" in held.reasons[0]
    moved = decide(spec, obs(12.0, at=9_000.0 + 1800), state)
    assert (moved.variant, moved.action) == ("fp8", "switch")


def test_small_gain_below_margin_stays(spec: ModelDeploymentSpec) -> None:
    s = spec.model_copy(update={"rollout": spec.rollout.model_copy(update={"switch_margin": 5.0})})
    d = decide(s, obs(12.0), CurrentState(active="bf16", replicas=2, variant_since=0.0))
    assert d.variant == "bf16" and "switch margin" in d.reasons[0]


def test_infeasible_current_switches_at_once(spec: ModelDeploymentSpec) -> None:
    d = decide(
        spec, obs(100.0), CurrentState(active="w4a16-l40s", replicas=16, variant_since=9_999.0)
    )
    assert (d.variant, d.action) == ("fp8", "switch")


def test_removed_variant_moves_to_best(spec: ModelDeploymentSpec) -> None:
    d = decide(spec, obs(12.0), CurrentState(active="gone", replicas=2, variant_since=9_999.0))
    assert d.variant == "fp8" and "no longer in spec" in d.reasons[0]


def test_rollout_in_progress_holds(spec: ModelDeploymentSpec) -> None:
    d = decide(
        spec, obs(100.0), CurrentState(active="w4a16-l40s", replicas=2, rollout_in_progress=True)
    )
    assert (d.variant, d.action) == ("w4a16-l40s", "hold")


def test_scale_up_at_once_down_after_window(spec: ModelDeploymentSpec) -> None:
    up = decide(spec, obs(30.0), CurrentState(active="fp8", replicas=1, variant_since=0.0))
    assert (up.replicas, up.action) == (3, "scale")
    down = decide(spec, obs(12.0), CurrentState(active="fp8", replicas=3, variant_since=0.0))
    assert (down.replicas, down.action) == (3, "stay") and down.scale_down == ScaleDown(10_000.0, 1)
    later = decide(
        spec,
        obs(12.0, at=10_300.0),
        CurrentState(active="fp8", replicas=3, variant_since=0.0, scale_down=down.scale_down),
    )
    assert (later.replicas, later.action) == (1, "scale")


def test_loading_pods_hold_down_and_saturation_but_not_demand(spec: ModelDeploymentSpec) -> None:
    loading = CurrentState(active="fp8", replicas=3, variant_since=0.0, pods_loading=True)
    down = decide(spec, obs(12.0), loading)
    assert (down.replicas, down.action) == (3, "hold")
    # the demand the model sees needs more than what is loading: asked at once
    up = decide(spec, obs(60.0), loading)
    assert up.replicas > 3 and up.action == "scale"
    # the saturation guard's multiple waits for the loading pods
    sat = Saturation(True, False, 6, "fp8 saturated", SaturationMemory("fp8"))
    held = decide(spec, obs(30.0), loading, sat)
    assert (held.replicas, held.action) == (3, "hold")
    ready = decide(spec, obs(30.0), CurrentState(active="fp8", replicas=3, variant_since=0.0), sat)
    assert ready.replicas == 6


def test_a_fleet_past_every_slo_keeps_its_replicas_while_saturated(
    spec: ModelDeploymentSpec,
) -> None:
    """bench/scenarios/burst-10x.yaml: 230 req/s, fp8 at its 16 replicas (the H100s the spec
    has), 9 of them Ready. No variant meets the SLO, and the fallback's own count for fp8 is
    14 (232 req/s at its capacity at the SLO). While fp8 is saturated that is no reason to
    scale down, and never past the stabilization window: the two replicas would be deleted
    while they load and started again a minute later."""
    loading = CurrentState(active="fp8", replicas=16, variant_since=0.0, pods_loading=True)
    sat = Saturation(True, False, 16, "fp8 saturated", SaturationMemory("fp8"))
    d = decide(spec, obs(230.0), loading, sat)
    assert not d.slo_met and d.reasons[0].startswith("no variant meets the SLO")
    assert (d.variant, d.replicas) == ("fp8", 16)
    # Ready and calm: the fallback's lower count waits out the stabilization window
    ready = CurrentState(active="fp8", replicas=16, variant_since=0.0)
    calm = Saturation(False, True, 16, "", SaturationMemory("fp8"))
    first = decide(spec, obs(230.0), ready, calm)
    assert (first.replicas, first.action) == (16, "stay") and first.scale_down is not None
    assert first.scale_down.replicas < 16
    window = spec.traffic.scale_down_stabilization_seconds
    state = CurrentState(active="fp8", replicas=16, variant_since=0.0, scale_down=first.scale_down)
    later = decide(spec, obs(230.0, at=10_000.0 + window), state, calm)
    assert (later.replicas, later.action) == (first.scale_down.replicas, "scale")


@pytest.mark.parametrize(
    ("current", "desired", "pending", "now", "expected"),
    [
        (3, 5, None, 0, (5, None)),
        (3, 3, ScaleDown(0, 1), 10, (3, None)),
        (3, 1, None, 0, (3, ScaleDown(0, 1))),
        (3, 1, ScaleDown(0, 2), 100, (3, ScaleDown(0, 2))),
        (3, 1, ScaleDown(0, 2), 300, (2, None)),
    ],
    ids=["up-at-once", "back-to-current-clears", "start-window", "max-in-window", "window-over"],
)
def test_stabilization(
    current: int,
    desired: int,
    pending: ScaleDown | None,
    now: float,
    expected: tuple[int, ScaleDown | None],
) -> None:
    n, p, _ = stabilized_replicas(current, desired, pending, now, 300)
    assert (n, p) == expected


def test_recently_failed_variant_is_not_retried(spec: ModelDeploymentSpec) -> None:
    state = CurrentState(recently_failed={"fp8": "rolled back: not Ready after 1200s"})
    d = decide(spec, obs(12.0), state)
    assert d.variant != "fp8"
    assert (
        d.evaluation("fp8").reason.startswith("rolled back") and not d.evaluation("fp8").on_frontier
    )


def test_without_prometheus_priors_drive_a_running_variant(spec: ModelDeploymentSpec) -> None:
    o = Observation(at=10_000.0, requests_per_s=None, metrics_expected=False)
    spec2 = spec.model_copy(
        update={"traffic": spec.traffic.model_copy(update={"expected_requests_per_second": 30.0})}
    )
    d = decide(spec2, o, CurrentState(active="fp8", replicas=1, variant_since=0.0))
    assert (d.variant, d.replicas, d.action, d.rate_basis) == ("fp8", 3, "scale", "priors")


def test_fallback_skips_recently_failed(spec: ModelDeploymentSpec) -> None:
    # 1,000 req/s: nothing meets the SLO; the biggest-capacity variant was just rolled back.
    d0 = decide(spec, obs(1000.0), CurrentState())
    assert not d0.slo_met
    d = decide(spec, obs(1000.0), CurrentState(recently_failed={d0.variant: "rolled back"}))
    assert d.variant != d0.variant


def test_gpus_the_cluster_shows_bound_the_choice(spec: ModelDeploymentSpec) -> None:
    # H100s the cluster shows drop to one GPU: a variant needing more H100s is not feasible,
    # and decide moves to one that can be placed (the L40S variant)
    state = CurrentState(active="fp8", replicas=3, variant_since=0.0)
    plenty = decide(spec, obs(30.0), state)
    assert plenty.variant == "fp8"
    short = decide(spec, obs(30.0, gpus_available={"H100": 1}), state)
    fp8 = short.evaluation("fp8")
    assert not fp8.feasible and "available in the cluster now" in fp8.reason
    assert (short.variant, short.action) == ("w4a16-l40s", "switch")
    assert short.evaluation("w4a16-l40s").gpu_type == "L40S"
    # more GPUs in the cluster than in spec.gpus: the spec still bounds
    assert decide(spec, obs(30.0, gpus_available={"H100": 99}), state).variant == "fp8"


def test_nothing_feasible_runs_the_best_net_value_within_the_inventory(
    spec: ModelDeploymentSpec,
) -> None:
    # no GPU type can hold the load: the fallback runs the variant with the highest net value
    # at the capacity it delivers, at replicas that fit the inventory
    state = CurrentState(active="fp8", replicas=1, variant_since=0.0)
    gpus = {"H100": 1, "L40S": 8}
    d = decide(spec, obs(500.0, gpus_available=gpus), state)
    assert not d.slo_met and d.reasons[0].startswith("no variant meets the SLO")
    e = d.evaluation(d.variant)
    assert d.replicas <= gpus[e.gpu_type]
    variants = {v.name: v for v in spec.variants}
    options = {
        x.name: delivered(spec, x, 500.0, gpus, keeps_up_ratio(spec, variants[x.name], None, None))
        for x in d.evaluations
    }
    chosen = options[d.variant]
    assert chosen.replicas == d.replicas
    best = max(f.net_usd_per_hour for f in options.values())
    margin = spec.rollout.switch_margin * e.hourly_cost_usd * d.replicas / e.replicas
    assert chosen.net_usd_per_hour >= best - margin


def test_a_fleet_that_falls_behind_its_arrivals_serves_nothing_within_the_slo(
    spec: ModelDeploymentSpec,
) -> None:
    """H100s drop to one GPU at 35 req/s (bench/scenarios/gpu-shortage.yaml): fp8 x1 has the
    most capacity at the SLO (20.7 req/s vs 8 L40S x 2.4), but 35 req/s is past its
    throughput (the performance model: 1.18x its capacity at the SLO), so its queue grows
    and it serves nothing within the SLO; 8 L40S replicas keep up (3.4x) and serve their
    capacity at the SLO. The fallback runs the L40S variant."""
    gpus = {"H100": 1, "L40S": 8}
    factors = {"fp8": 1.3, "w4a16-l40s": 0.46}
    state = CurrentState(active="w4a16-l40s", replicas=8, variant_since=0.0)
    o = obs(35.0, gpus_available=gpus, capacity_factors=factors)
    d = decide(spec, o, state)
    assert not d.slo_met and (d.variant, d.replicas) == ("w4a16-l40s", 8)
    fp8, l40s = d.evaluation("fp8"), d.evaluation("w4a16-l40s")
    blind = delivered(spec, fp8, 35.0, gpus), delivered(spec, l40s, 35.0, gpus)
    assert blind[0].net_usd_per_hour > blind[1].net_usd_per_hour  # by capacity at the SLO
    ratio = keeps_up_ratio(spec, spec.variants[1], None, None)
    assert ratio is not None and 1.0 < ratio < 35.0 / fp8.capacity_rps
    assert delivered(spec, fp8, 35.0, gpus, ratio).served_rps == 0.0


def test_the_fallback_never_picks_a_variant_that_cannot_start_beside_the_active_one(
    spec: ModelDeploymentSpec,
) -> None:
    """bf16-eagle3 x1 holds the cluster's one H100 at 18 req/s, where nothing meets the SLO.
    fp8 x1 (x1.3) would deliver the most, but a rollout runs both until the target is Ready,
    and there is no H100 beside the active one: its pod would stay Pending until the ready
    timeout. The fallback runs the L40S variant; from the L40S variant (the H100 free) it
    runs fp8."""
    factors = {"fp8": 1.3, "w4a16-l40s": 0.46}
    gpus = {"H100": 1, "L40S": 8}
    eagle = CurrentState(active="bf16-eagle3", replicas=1, variant_since=0.0)
    one = decide(spec, obs(18.0, gpus_available=gpus, capacity_factors=factors), eagle)
    assert not one.slo_met and (one.variant, one.replicas) == ("w4a16-l40s", 8)
    l40s = CurrentState(active="w4a16-l40s", replicas=8, variant_since=0.0)
    free = decide(spec, obs(18.0, gpus_available=gpus, capacity_factors=factors), l40s)
    assert not free.slo_met and (free.variant, free.replicas) == ("fp8", 1)


def test_a_switch_goes_only_where_the_target_can_start_beside_the_active_one(
    spec: ModelDeploymentSpec,
) -> None:
    """bf16-eagle3 x1 holds the cluster's one H100; at 10 req/s it needs two. fp8 x1 would
    serve it best, but its pod could not start until bf16-eagle3's is gone, and a rollout
    runs both until the target is Ready: the switch goes to the L40S variant, and fp8's
    evaluation says why. In Recommend mode nothing holds the H100, and fp8 is recommended."""
    gpus = {"H100": 1, "L40S": 8}
    eagle = CurrentState(active="bf16-eagle3", replicas=1, variant_since=0.0)
    auto = decide(spec, obs(10.0, gpus_available=gpus), eagle)
    assert (auto.variant, auto.action, auto.slo_met) == ("w4a16-l40s", "switch", True)
    fp8 = auto.evaluation("fp8")
    assert not fp8.feasible
    assert "0 of them beside the 1 bf16-eagle3 holds" in fp8.reason
    recommend = CurrentState(active="bf16-eagle3", replicas=1, variant_since=0.0, running=False)
    assert decide(spec, obs(10.0, gpus_available=gpus), recommend).variant == "fp8"


def test_an_unreachable_slo_never_runs_the_priciest_variant_at_max_replicas(
    spec: ModelDeploymentSpec,
) -> None:
    """At a 0.05 s SLO no variant serves anything within it: the cheapest runs at its fewest
    replicas (the least money lost), not the priciest at maxReplicas."""
    tight = spec.model_copy(update={"slo": spec.slo.model_copy(update={"seconds": 0.05})})
    d = decide(tight, obs(12.0), CurrentState())
    assert not d.slo_met and all(not e.feasible for e in d.evaluations)
    cheapest = min(d.evaluations, key=lambda e: e.hourly_cost_usd / e.replicas)
    assert (d.variant, d.replicas) == (cheapest.name, tight.traffic.min_replicas)
    assert d.replicas < tight.traffic.max_replicas
    assert "0.00 req/s within the SLO" in d.reasons[0]


def test_a_surge_in_the_last_minute_adds_replicas_at_once(spec: ModelDeploymentSpec) -> None:
    state = CurrentState(active="fp8", replicas=2, variant_since=0.0)
    calm = decide(spec, obs(20.0, arrivals_per_s=20.0, arrivals_recent_per_s=22.0), state)
    burst = decide(spec, obs(20.0, arrivals_per_s=20.0, arrivals_recent_per_s=120.0), state)
    assert burst.variant == calm.variant == "fp8"  # the choice of variant does not follow it
    assert burst.replicas > 2 * calm.replicas and burst.action == "scale"
    assert any("surged" in r for r in burst.reasons)
    # a short window below the long one never lowers the replicas
    lull = decide(spec, obs(20.0, arrivals_per_s=20.0, arrivals_recent_per_s=2.0), state)
    assert lull.replicas == calm.replicas


def test_a_negative_calibration_from_ab_tests_is_clamped_and_said(
    spec: ModelDeploymentSpec,
) -> None:
    """A negative online delta would make quality worth less than nothing and the objective
    pick the worst variant: the calibration is clamped into (0, 1], the decision says so,
    and the choice is the one of a small positive calibration."""
    tests = [{"offlineDelta": 0.02, "onlineDelta": -0.01}]
    value = spec.value.model_copy(update={"calibration_factor": None})
    bad = spec.model_copy(
        update={
            "value": value.model_validate({**value.model_dump(by_alias=True), "abTests": tests})
        }
    )
    small = spec.model_copy(
        update={"value": spec.value.model_copy(update={"calibration_factor": 0.01})}
    )
    d = decide(bad, obs(12.0), CurrentState())
    assert "outside (0, 1]" in d.reasons[-1]
    assert d.variant == decide(small, obs(12.0), CurrentState()).variant
    assert all(e.value_per_hour_usd > 0 for e in d.evaluations)


def test_nothing_feasible_still_waits_for_the_dwell(spec: ModelDeploymentSpec) -> None:
    """When no variant meets the SLO the fallback may move to another variant, but not
    before the active one has run minDwellSeconds: no flapping between two overloaded
    choices."""
    gpus = {"H100": 1, "L40S": 8}
    d0 = decide(spec, obs(500.0, gpus_available=gpus), CurrentState())
    other = next(e.name for e in d0.evaluations if e.name != d0.variant)
    since = 10_000.0 - spec.rollout.min_dwell_seconds / 2
    young = CurrentState(active=other, replicas=1, variant_since=since)
    held = decide(spec, obs(500.0, gpus_available=gpus), young)
    assert not held.slo_met and held.variant == other
    old = CurrentState(active=other, replicas=1, variant_since=0.0)
    assert decide(spec, obs(500.0, gpus_available=gpus), old).variant == d0.variant
