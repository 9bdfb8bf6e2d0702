"""tick(): everything one ModelDeployment does in one tick, as one pure function.

    memory, observation, cluster facts, now
      -> saturation guard (decide/saturation.py) on the serving variant's signals
      -> forecast (decide/forecast.py): the rate expected once a new replica of the serving
         variant would be Ready (its startupSeconds + one tick), times the error margin
      -> decide() (decide/policy.py): variant and replicas, with those two floors
      -> rollout analysis of the target + step() of the rollout machine (Auto mode only)
      -> learned profiles (decide/learned.py): every variant's trustworthy reading judged by
         decide/corrections.py's rules joins its window of samples, refitted
      -> TickOutcome: decision, step, the learned factors, the memory for the next tick

The shell (controller/reconcile.py; in the replay, replay/operator_policy.py) reads its inputs,
calls this, applies `step.fleet` and reports. Rules that live here and nowhere else:
- what runs now: in Auto mode the rollout's active variant at the replicas the operator last
  decided for it (memory; "hold" keeps them), at its Deployment's replicas only when none is
  recorded; in Recommend mode the last recommendation;
- a variant rolled back within retry_after_s (the longer of the minimum dwell and two ready
  timeouts) is not chosen again, twice as long per earlier rollback of it the memory holds,
  at most MAX_BACKOFF times (`recently_failed`);
- the learned profiles take samples from a variant with no request waiting (with a backlog, the
  latency is an earlier overload's) and outside the overflow bucket; from the serving variant
  at saturation too, when its latency misses the SLO (then completions per replica bound its
  capacity at the SLO from above);
- analysis is fail-closed (rollout/analysis.py): missing metrics, request counters or latency
  are Unavailable, too little target traffic Inconclusive, and neither moves the Service (the
  machine waits, then rolls back at the verification deadline); errors and aborts are
  checked; the target is compared with what serves now (no worse passes). Without
  Prometheus configured, readiness alone verifies (the verdict says so);
- the arrivals since the last poll, when the caller gives none: the serving variant's
  completions + the growth of its waiting gauge over one tick (`_recent_arrivals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from paretoscale.api.types import ModelDeploymentSpec, RolloutSpec
from paretoscale.decide.corrections import Evidence
from paretoscale.decide.evaluate import spec_capacity
from paretoscale.decide.forecast import ForecastMemory, forecast, observe
from paretoscale.decide.learned import LearnedProfile, factors, learn
from paretoscale.decide.policy import decide
from paretoscale.decide.saturation import Saturation, SaturationMemory, above_slo, assess
from paretoscale.decide.types import CurrentState, Decision, Observation, VariantSignals
from paretoscale.rollout.analysis import Reading, Verdict, analyze
from paretoscale.rollout.machine import Step, VariantFacts, step
from paretoscale.tick.memory import (
    MAX_ROLLED_BACK,
    RolledBack,
    TickMemory,
    TickOptions,
    TickOutcome,
)

MIN_LEARN_REQUESTS = 20.0


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_s(rollout: RolloutSpec) -> float:
    """How long a variant whose rollout failed is not tried again: the longer of the minimum
    dwell and two ready timeouts, so a dwell of 0 does not mean a retry loop."""
    return float(max(rollout.min_dwell_seconds, 2 * rollout.ready_timeout_seconds))


MAX_BACKOFF = 8  # a variant that keeps failing waits at most this many retry intervals


def recently_failed(
    rolled_back: tuple[RolledBack, ...], now: float, retry_s: float
) -> dict[str, str]:
    """Variants not to be tried again yet, with why: rolled back within retry_s of its newest
    rollback, doubled for each earlier rollback of the same variant the memory still holds
    (at most MAX_BACKOFF x retry_s). A rollout that keeps timing out for lack of traffic at
    night, or failing verification on a profile that is too optimistic, is not started again
    every retry interval on the same evidence."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for r in rolled_back:  # newest first: each variant's newest rollback decides
        if r.variant in seen:
            continue
        seen.add(r.variant)
        earlier = sum(1 for x in rolled_back if x.variant == r.variant) - 1
        wait = retry_s * min(MAX_BACKOFF, 2**earlier)
        if now - r.at < wait:
            out[r.variant] = (
                f"rolled back at {rfc3339(r.at)} ({r.reason}); "
                f"not retried before {rfc3339(r.at + wait)}"
            )
    return out


def held(
    facts: Mapping[str, VariantFacts], active: str | None, replicas: int | None
) -> Mapping[str, VariantFacts]:
    """The cluster facts with the active variant's replicas as the operator last decided them
    (`replicas`, from its memory), not as read: a Deployment missing from the cache or scaled
    by hand is never adopted as the count to hold. Unchanged without a recorded count."""
    if active is None or replicas is None:
        return facts
    return {**facts, active: replace(facts.get(active, VariantFacts()), desired=replicas)}


def tick(
    spec: ModelDeploymentSpec,
    memory: TickMemory,
    obs: Observation,
    facts: Mapping[str, VariantFacts],
    now: float,
    options: TickOptions | None = None,
) -> TickOutcome:
    """One tick of one ModelDeployment. See the module docstring."""
    opts = options or TickOptions()
    state0 = memory.rollout
    if opts.mode == "Auto":
        facts = held(facts, state0.active, memory.replicas)
    active_facts = facts.get(state0.active or "", VariantFacts())
    if opts.mode == "Auto":
        active, replicas = state0.active, active_facts.desired
    else:
        active, replicas = memory.recommended or (None, 0)
    current = CurrentState(
        active=active,
        replicas=replicas,
        variant_since=memory.variant_since,
        scale_down=memory.scale_down,
        rollout_in_progress=state0.phase != "Stable",
        pods_loading=active_facts.ready < active_facts.desired,
        recently_failed=recently_failed(memory.rolled_back, now, retry_after_s(spec.rollout)),
        running=opts.mode == "Auto",
    )
    live = obs.demand_per_s is not None

    # A new poll, not a reconcile between two (the forecast remembers when it last moved).
    last = memory.forecast.at
    advance = last is None or now - last >= opts.tick_seconds / 2

    saturation: Saturation | None = None
    sat_memory = memory.saturation
    if opts.saturation_guard and live:
        saturation = assess(
            active,
            obs.variants.get(active or ""),
            replicas,
            spec.slo.seconds,
            sat_memory,
            spec.slo.percentile / 100.0,
            advance,
        )
        sat_memory = saturation.memory

    horizon = _horizon_s(spec, active, opts.tick_seconds)
    history = memory.forecast
    ahead = None
    if opts.forecast and live:
        history = observe(history, now, obs.demand_per_s, horizon, opts.tick_seconds / 2)
        ahead = forecast(history, horizon, spec.rollout.min_dwell_seconds)

    if obs.arrivals_recent_per_s is None and advance:
        recent = _recent_arrivals(obs.variants.get(active or ""), active, memory.saturation, opts)
        obs = replace(obs, arrivals_recent_per_s=recent)
    decision = decide(spec, obs, current, saturation, ahead)

    result: Step | None = None
    verdict: Verdict | None = None
    if opts.mode == "Auto":
        verdict = _verdict(spec, obs, state0.target, state0.active)
        result = step(state0, decision, facts, verdict, spec.rollout, now)

    learned = (
        learn(
            spec,
            memory.learned,
            _evidence(spec, obs, opts, active, saturation, current.pods_loading),
            now,
            mix=obs.token_mix,
            gpus=obs.gpu_types,
        )
        if opts.correction
        else dict(memory.learned)
    )
    return TickOutcome(
        decision=decision,
        step=result,
        verdict=verdict,
        corrections=factors(learned),
        memory=_next_memory(memory, decision, result, opts, now, learned, sat_memory, history),
        saturation=saturation,
        forecast=ahead,
    )


def _recent_arrivals(
    signals: VariantSignals | None,
    active: str | None,
    last: SaturationMemory,
    opts: TickOptions,
) -> float | None:
    """The serving variant's arrivals since the last poll [req/s]: its completions + the
    growth of its waiting requests (the gauge now minus the one a poll ago, which the
    saturation memory keeps) over one tick, never below 0. A burst shows here a rate window
    before it shows in the windowed arrivals; decide() scales on it when it is a surge.
    None without both gauges or the completions."""
    if signals is None or active is None or last.variant != active:
        return None
    if signals.waiting is None or last.last_waiting is None or signals.requests_per_s is None:
        return None
    growth = (signals.waiting - last.last_waiting) / opts.tick_seconds
    return max(0.0, signals.requests_per_s + growth)


def _horizon_s(spec: ModelDeploymentSpec, active: str | None, tick_s: float) -> float:
    """How far ahead replicas must be planned: the serving variant's startup + one tick (the
    slowest variant's before anything serves)."""
    startup = next((v.startup_seconds for v in spec.variants if v.name == active), None)
    if startup is None:
        startup = max(v.startup_seconds for v in spec.variants)
    return float(startup) + tick_s


def _verdict(
    spec: ModelDeploymentSpec, obs: Observation, target: str | None, active: str | None
) -> Verdict:
    """The analysis of the rollout target (rollout/analysis.py) from the target's and the
    serving variant's signals. Without Prometheus configured there is nothing to analyse:
    the rollout relies on readiness alone, and says so."""
    if not obs.metrics_expected:
        return Verdict("Successful", "no Prometheus configured: verified by readiness alone")
    if obs.requests_per_s is None:
        return Verdict("Unavailable", obs.metrics_problem or "no metrics", "no metrics")
    baseline = obs.variants.get(active or "") if active else None
    return analyze(
        target or "",
        _reading(obs.variants.get(target or "", VariantSignals())),
        spec.slo.seconds,
        f"p{spec.slo.percentile:g} {spec.slo.latency}",
        _reading(baseline) if baseline is not None else None,
    )


def _reading(s: VariantSignals) -> Reading:
    return Reading(
        s.latency.value if s.latency else None, s.finished_total, s.errors_total, s.aborts_total
    )


def _evidence(
    spec: ModelDeploymentSpec,
    obs: Observation,
    opts: TickOptions,
    active: str | None,
    saturation: Saturation | None,
    loading: bool = False,
) -> dict[str, Evidence]:
    """The readings the learned profiles may take samples from (see the module docstring).
    A saturated reading of the active variant while its new replicas load is not one: the
    backlog those replicas are started for is counted against the Ready ones, and the
    completions per replica it shows may bound the capacity far below what a replica does."""
    out: dict[str, Evidence] = {}
    for name, s in obs.variants.items():
        rate, lat = s.requests_per_replica_s, s.latency
        if rate is None:
            continue
        if saturation is not None and saturation.saturated and name == active:
            if loading:
                continue
            if lat is not None and above_slo(lat, spec.slo.seconds, spec.slo.percentile / 100):
                out[name] = Evidence(rate, lat, saturated=True)
            continue
        if lat is None or lat.in_overflow_bucket or s.waiting is None or s.waiting >= 1:
            continue
        if opts.learn_min_load > 0:
            v = next((x for x in spec.variants if x.name == name), None)
            if v is None or (s.requests_in_window or 0.0) < MIN_LEARN_REQUESTS:
                continue
            declared, _ = spec_capacity(spec, v, obs.token_mix, obs.gpu_types)
            if rate < opts.learn_min_load * declared:
                continue
        out[name] = Evidence(rate, lat)
    return out


def _next_memory(
    m: TickMemory,
    decision: Decision,
    result: Step | None,
    opts: TickOptions,
    now: float,
    learned: Mapping[str, LearnedProfile],
    saturation: SaturationMemory,
    forecast: ForecastMemory,
) -> TickMemory:
    out = replace(
        m,
        scale_down=decision.scale_down,
        learned=dict(learned),
        saturation=saturation,
        forecast=forecast,
    )
    if opts.mode == "Recommend":
        # the recommendation past the guards, as status.decision records it (the operator
        # restores it from there: controller/memory.py)
        return replace(out, recommended=(decision.variant, decision.replicas))
    assert result is not None
    new_active = result.state.active
    out = replace(
        out,
        rollout=result.state,
        replicas=result.fleet.replicas.get(new_active) if new_active else None,
    )
    sw = result.switch
    if sw is not None:
        out = replace(out, variant_since=now)  # a rollback restarts the dwell too
        if sw.outcome == "rolledBack":
            rolled = (RolledBack(sw.to_variant, now, sw.reason), *m.rolled_back)
            out = replace(out, rolled_back=rolled[:MAX_ROLLED_BACK])
    return out
