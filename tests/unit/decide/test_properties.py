"""Invariants the economics promise, for random variant sets (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paretoscale.decide.evaluate import evaluate
from paretoscale.decide.policy import decide, expected_rates
from paretoscale.decide.types import CurrentState, Observation
from paretoscale.economics.frontier import dominates

from .strategies import specs

rates = st.floats(0.0, 200.0)


@given(specs(), rates)
def test_frontier_marks_exactly_the_undominated_feasible(spec, rate) -> None:  # type: ignore[no-untyped-def]
    d = decide(spec, Observation(at=0, requests_per_s=rate), CurrentState())
    feasible = [e for e in d.evaluations if e.feasible]
    for e in d.evaluations:
        if not e.feasible:
            assert not e.on_frontier
            continue
        dominated = any(
            dominates(o.hourly_cost_usd, o.quality, e.hourly_cost_usd, e.quality) for o in feasible
        )
        assert e.on_frontier == (not dominated)


@given(specs(), rates)
def test_decision_is_on_the_frontier_and_covers_the_rate(spec, rate) -> None:  # type: ignore[no-untyped-def]
    d = decide(spec, Observation(at=0, requests_per_s=rate), CurrentState())
    chosen = d.evaluation(d.variant)
    assume(chosen.feasible)
    # A first rollout is chosen over the load expected while it runs (now and
    # UNKNOWN_DAY_BAND): no other variant is as cheap and as good at every one of those rates.
    rows = [d.evaluations] + [evaluate(spec, r, {}, {}) for r in expected_rates(rate, None)]
    by_rate = [{e.name: e for e in evals} for evals in rows]

    def dominates_everywhere(other: str) -> bool:
        return all(
            by[other].feasible
            and dominates(
                by[other].hourly_cost_usd, by[other].quality,
                by[d.variant].hourly_cost_usd, by[d.variant].quality,
            )
            for by in by_rate
        )  # fmt: skip

    assert not any(dominates_everywhere(v.name) for v in spec.variants if v.name != d.variant)
    assert d.replicas == chosen.replicas
    # replicas cover the rate at the SLO, at the target utilization
    assert d.replicas * chosen.capacity_rps * spec.traffic.target_utilization >= rate * (1 - 1e-9)


@given(specs(per_quality_point=0.0), rates, st.floats(0.01, 5.0), st.floats(0.01, 5.0))
@settings(max_examples=150)
def test_higher_value_per_point_never_picks_lower_quality(spec, rate, w1, w2) -> None:  # type: ignore[no-untyped-def]
    lo, hi = sorted((w1, w2))

    def chosen_quality(w: float) -> float:
        s = spec.model_copy(
            update={"value": spec.value.model_copy(update={"per_quality_point": Decimal(str(w))})}
        )
        d = decide(s, Observation(at=0, requests_per_s=rate), CurrentState())
        return d.evaluation(d.variant).quality

    d0 = decide(spec, Observation(at=0, requests_per_s=rate), CurrentState())
    assume(d0.slo_met)
    assert chosen_quality(hi) >= chosen_quality(lo)


@given(specs(), rates, st.sampled_from(["H100", "L40S", "A100"]), st.floats(1.01, 10.0))
def test_raising_a_gpu_price_never_moves_the_decision_onto_it(spec, rate, gpu, factor) -> None:  # type: ignore[no-untyped-def]
    before = decide(spec, Observation(at=0, requests_per_s=rate), CurrentState())
    assume(before.slo_met)
    base = {g.type: float(g.usd_per_hour) for g in spec.gpus}
    raised = decide(
        spec,
        Observation(at=0, requests_per_s=rate, usd_per_gpu_hour={gpu: base[gpu] * factor}),
        CurrentState(),
    )
    was = before.evaluation(before.variant).gpu_type
    now = raised.evaluation(raised.variant).gpu_type
    if was != gpu:
        assert now != gpu
