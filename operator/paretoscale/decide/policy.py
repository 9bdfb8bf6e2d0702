"""decide(): the variant and replica count a ModelDeployment should run, with reasons.

Spec + observation + current state -> Decision, pure. The load is the observed demand
(arrivals where measured, else completions; Observation.demand_per_s) and capacities are read
at the observed token mix (evaluate.py). The best variant is the feasible one
(meets the SLO at the needed replicas within its bounds and the GPU inventory: spec.gpus,
lowered to what the cluster shows, Observation.gpus_available; for a variant other than the
one running, only the GPUs of its type that the running one does not hold, since a rollout
runs both until the new one is Ready) with the
highest net value per hour; ties go to higher quality, then lower cost, then name, so the
choice is on the frontier. Variants are compared for the fleet that will run: at the
provisioning rate (the rate raised to the forecast, `provisioning_rate`), and with the
capacity of a variant planned on the performance model that no live reading has confirmed
lowered by the prior's uncertainty (evaluate.unproven_factors), so an unconfirmed estimate
must win by more than its error. A first rollout goes to the variant with the highest mean
net value over now and the load expected while it must run (`expected_rates`: the forecast's
path, or UNKNOWN_DAY_BAND around now), so a near-tie at this minute's load goes to the
variant with headroom. What runs moves to the best only past the guards (guards.py), the
path guard reading the same expected rates; missing metrics never move anything.

Two floors sit on the replicas the model asks for (decide/replicas.py), both bounded by the
variant's maxReplicas and the GPU inventory: the forecast (`ahead`: the rate expected once a
new replica would be Ready, decide/forecast.py: its point forecast at the target utilization,
and the rate at risk, decide/headroom.py: the quantile of its error one more replica is worth
covering, at full capacity at the SLO) and the saturation guard (decide/saturation.py): a
saturated variant gets the replicas the signals ask for at once, and a variant whose signals do not all
agree it is calm is not scaled down. While every signal is calm, no replica is added for
a load past the replicas by less than the reading's noise (headroom.noise_band). While the
serving variant's pods load, replicas do not go down and the saturation ask waits for them,
but the demand the model sees (arrivals) is asked for at once. When no variant is feasible (SLOUnreachable), the one with the highest net
value at the capacity it really delivers runs: the value of the requests it serves within the
SLO at the replicas it can have (none where they fall behind the arrivals: past the
throughput the performance model gives, the queue grows), minus their cost (the active one
unless another is better by switchMargin of its cost); a variant that serves nothing within
the SLO runs at its fewest replicas, never its maximum. When that is the serving variant, its
count passes the same saturation guard, loading pods and stabilization window as any
(`_guarded`): a saturated fleet past every SLO is not scaled down. A calibration from abTests
outside (0, 1] is clamped, and the last reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import (
    calibration_warning,
    evaluate,
    inventory_now,
    keeps_up_ratio,
    unproven_factors,
)
from paretoscale.decide.forecast import RateForecast
from paretoscale.decide.guards import (
    cutover_seconds,
    dwell_guard,
    margin_guard,
    path_guard,
    payback_guard,
    stabilized_replicas,
)
from paretoscale.decide.replicas import floored, replica_bounds, surge, within_noise
from paretoscale.decide.saturation import Saturation
from paretoscale.decide.types import (
    Action,
    CurrentState,
    Decision,
    HeldGpus,
    Observation,
    ScaleDown,
    VariantEval,
)
from paretoscale.economics.money import usd


def best_variant(evals: tuple[VariantEval, ...]) -> VariantEval | None:
    """Highest net value among feasible variants; ties: quality, then cost, then name."""
    feasible = [e for e in evals if e.feasible]
    if not feasible:
        return None
    return min(
        feasible,
        key=lambda e: (-e.net_value_per_hour_usd, -e.quality, e.hourly_cost_usd, e.name),
    )


@dataclass(frozen=True)
class Fallback:
    """What a variant delivers when nothing meets the SLO: replicas it can have, requests/s
    they serve within the SLO, and net value per hour of that."""

    variant: VariantEval
    replicas: int
    served_rps: float
    net_usd_per_hour: float


def delivered(
    spec: ModelDeploymentSpec,
    e: VariantEval,
    rate: float,
    gpus_now: Mapping[str, int] | None,
    keeps_up: float | None = None,
) -> Fallback:
    """The best e can do at `rate` with the capacity it really delivers (its capacity at the
    SLO per replica, `e.capacity_rps`, at full utilization): value of the requests served
    within the SLO minus the cost of the replicas, at the better of its fewest replicas (at
    least 1) and the replicas the load needs within its bounds and the GPU inventory.
    `keeps_up` (evaluate.keeps_up_ratio): past `keeps_up` x its capacity at the SLO a
    replica falls behind its arrivals, its queue grows and nothing it serves meets the SLO;
    None: not known, the capacity at the SLO is served whatever the load."""
    lo, hi = replica_bounds(spec, e.name, gpus_now)
    lo = max(lo, 1)
    hi = max(hi, lo)
    per_replica_usd = e.hourly_cost_usd / e.replicas if e.replicas > 0 else 0.0
    per_rps_usd = e.value_per_hour_usd / rate if rate > 0 else 0.0
    needed = lo if e.capacity_rps <= 0 else min(hi, max(lo, math.ceil(rate / e.capacity_rps)))
    options = []
    for n in sorted({lo, needed}):
        behind = keeps_up is not None and rate > n * e.capacity_rps * keeps_up
        served = 0.0 if behind else min(rate, e.capacity_rps * n)
        options.append(Fallback(e, n, served, per_rps_usd * served - per_replica_usd * n))
    return max(options, key=lambda f: (f.net_usd_per_hour, f.served_rps))


def _fallback(
    spec: ModelDeploymentSpec,
    evals: tuple[VariantEval, ...],
    state: CurrentState,
    blocked: Mapping[str, str],
    rate: float,
    gpus_now: Mapping[str, int] | None,
    dwelling: bool,
    obs: Observation,
) -> Fallback:
    """When nothing meets the SLO: the variant with the highest net value at the capacity
    it delivers (`delivered`), never the maximum replicas of a variant that serves nothing
    within the SLO. The active variant stays while it is `dwelling` (has run less than
    minDwellSeconds) or unless another's net value is higher by more than switchMargin of
    the active one's hourly cost; one just rolled back is not chosen (any, if all were).
    Another variant must fit beside the active one (a rollout runs both until the target is
    Ready): on the active's GPU type it has only the GPUs the active does not hold, and one
    without room for a replica there is not chosen."""
    variants = {v.name: v for v in spec.variants}
    active = state.active
    beside = _beside(spec, held_gpus(spec, state), gpus_now)
    candidates = [e for e in evals if e.name not in blocked] or list(evals)
    candidates = [
        e for e in candidates
        if e.name == active
        or beside.get(e.gpu_type, variants[e.name].gpu.count) >= variants[e.name].gpu.count
    ] or candidates  # fmt: skip
    options = [
        delivered(
            spec, e, rate, gpus_now if e.name == active else beside,
            keeps_up_ratio(
                spec, variants[e.name], obs.tokens_per_request, obs.token_mix, obs.gpu_types
            ),
        )
        for e in candidates
    ]  # fmt: skip
    best = max(options, key=lambda f: (f.net_usd_per_hour, f.served_rps, f.variant.quality))
    for f in options:
        e = f.variant
        if e.name == active:
            cost = e.hourly_cost_usd * f.replicas / e.replicas if e.replicas > 0 else 0.0
            gain = best.net_usd_per_hour - f.net_usd_per_hour
            if dwelling or gain <= spec.rollout.switch_margin * cost:
                return f
    return best


def held_gpus(spec: ModelDeploymentSpec, state: CurrentState) -> HeldGpus | None:
    """GPUs the active variant's replicas hold while they run (CurrentState.running); None
    when nothing runs."""
    v = next((v for v in spec.variants if v.name == state.active), None)
    if v is None or not state.running or state.replicas <= 0:
        return None
    return HeldGpus(v.name, v.gpu.type, state.replicas * v.gpu.count)


def _beside(
    spec: ModelDeploymentSpec, held: HeldGpus | None, gpus_now: Mapping[str, int] | None
) -> dict[str, int]:
    """GPUs per type a new variant can use while the active one still runs its replicas."""
    room = inventory_now(spec, gpus_now)
    if held is not None and held.gpu_type in room:
        room[held.gpu_type] = max(0, room[held.gpu_type] - held.count)
    return room


# Before a day of load is known (no forecast path), a choice must pay over a load a quarter
# either side of the present one, not at this minute's rate alone.
UNKNOWN_DAY_BAND = (0.8, 1.25)


def expected_rates(rate: float, ahead: RateForecast | None) -> tuple[float, ...]:
    """The rates a choice must pay over besides now [req/s]: the forecast's path over the
    minimum dwell (forecast.path), or UNKNOWN_DAY_BAND around `rate` before it has one."""
    if ahead is not None and ahead.path_rps:
        return ahead.path_rps
    return tuple(rate * f for f in UNKNOWN_DAY_BAND)


def _along(
    spec: ModelDeploymentSpec,
    obs: Observation,
    blocked: Mapping[str, str],
    rates: tuple[float, ...],
    factors: Mapping[str, float],
    held: HeldGpus | None,
) -> list[dict[str, VariantEval]]:
    """Every variant evaluated at each of `rates` with `factors` (`choice_factors`) and the
    GPUs the active one `held`, by name."""
    out = []
    for r in rates:
        evals = evaluate(
            spec, r, obs.usd_per_gpu_hour, factors, obs.tokens_per_request,
            blocked, obs.token_mix, obs.gpus_available, obs.gpu_types, held,
        )  # fmt: skip
        out.append({e.name: e for e in evals})
    return out


def best_over(
    ranked: tuple[VariantEval, ...], along: list[dict[str, VariantEval]]
) -> VariantEval | None:
    """The variant to start on: among those feasible now, the one feasible at most of the
    expected rates, then with the highest mean net value over now and them (then as
    best_variant): near-ties at this minute's rate go to the variant with headroom."""
    feasible = [e for e in ranked if e.feasible]
    if not feasible:
        return None

    def key(e: VariantEval) -> tuple[int, float, float, float, str]:
        at = [by[e.name] for by in along]
        mean = (e.net_value_per_hour_usd + sum(x.net_value_per_hour_usd for x in at)) / (
            1 + len(at)
        )
        return (-sum(x.feasible for x in at), -mean, -e.quality, e.hourly_cost_usd, e.name)

    return min(feasible, key=key)


def provisioning_rate(spec: ModelDeploymentSpec, rate: float, ahead: RateForecast | None) -> float:
    """The rate the replicas are sized for [req/s]: the current one, raised to the forecast
    (the point forecast at the target utilization, the forecast with its margin at full
    capacity, i.e. upper x utilization at it). The same for every variant; `floored`
    (decide/replicas.py) then sizes the chosen one for its own rate at risk."""
    if ahead is None:
        return rate
    return max(rate, ahead.point_rps, ahead.upper_rps * spec.traffic.target_utilization)


def _ranked(
    spec: ModelDeploymentSpec,
    obs: Observation,
    blocked: Mapping[str, str],
    rate: float,
    ahead: RateForecast | None,
    evals: tuple[VariantEval, ...],
    factors: Mapping[str, float],
    held: HeldGpus | None,
) -> tuple[VariantEval, ...]:
    """The evaluations variants are ranked and compared by: at the provisioning rate, so the
    choice is made for the replicas that will run (a variant that fits this minute's load
    at 2 replicas and the forecast's at 3 is priced at 3), with `factors` (`choice_factors`); `evals`
    (at `rate`) when that changes nothing or no variant is feasible with it."""
    at = provisioning_rate(spec, rate, ahead)
    if at <= rate and factors == obs.capacity_factors:
        return evals
    ranked = evaluate(
        spec, at, obs.usd_per_gpu_hour, factors, obs.tokens_per_request,
        blocked, obs.token_mix, obs.gpus_available, obs.gpu_types, held,
    )  # fmt: skip
    return ranked if best_variant(ranked) is not None else evals


def choice_factors(
    spec: ModelDeploymentSpec, obs: Observation, active: str | None
) -> Mapping[str, float]:
    """The capacity factors a choice is made with: the live ones, and the performance
    model's uncertainty off every other variant nothing has confirmed
    (evaluate.unproven_factors)."""
    return unproven_factors(
        spec, obs.capacity_factors, obs.tokens_per_request, obs.token_mix, obs.gpu_types, active
    )


def _money(e: VariantEval) -> str:
    return (
        f"{e.name}: {e.replicas} x {e.gpu_type}, {usd(e.hourly_cost_usd, '/h')}, "
        f"net {usd(e.net_value_per_hour_usd, '/h')}"
    )


def decide(
    spec: ModelDeploymentSpec,
    obs: Observation,
    state: CurrentState,
    saturation: Saturation | None = None,
    ahead: RateForecast | None = None,
) -> Decision:
    """Decide what should run now. See the module docstring for the rule."""
    demand = obs.demand_per_s
    live = demand is not None
    rate = demand if demand is not None else spec.traffic.expected_requests_per_second
    blocked = {k: v for k, v in state.recently_failed.items() if k != state.active}
    held = held_gpus(spec, state)
    beside = _beside(spec, held, obs.gpus_available)
    evals = evaluate(
        spec,
        rate,
        obs.usd_per_gpu_hour,
        obs.capacity_factors,
        obs.tokens_per_request,
        blocked,
        obs.token_mix,
        obs.gpus_available,
        obs.gpu_types,
        held,
    )
    warning = calibration_warning(spec)
    by_name = {e.name: e for e in evals}
    factors = choice_factors(spec, obs, state.active)
    ranked = _ranked(spec, obs, blocked, rate, ahead, evals, factors, held)
    by_rank = {e.name: e for e in ranked}
    best_ranked = best_variant(ranked)
    best = by_name[best_ranked.name] if best_ranked is not None else None
    current = by_name.get(state.active) if state.active else None
    reasons: list[str] = []

    def done(
        variant: VariantEval, replicas: int, action: Action, scale_down: object = None
    ) -> Decision:
        return Decision(
            variant=variant.name,
            replicas=replicas,
            action=action,
            reasons=tuple(reasons) + ((warning,) if warning else ()),
            best=best.name if best else variant.name,
            evaluations=evals,
            requests_per_s=rate,
            rate_basis="live" if live else "priors",
            slo_met=variant.feasible,
            scale_down=scale_down,  # type: ignore[arg-type]
        )

    # Nothing moves on missing data or during a rollout: keep what runs.
    if current is not None and not live and obs.metrics_expected:
        reasons.append(
            f"metrics unavailable ({obs.metrics_problem or 'no data'}): keeping {current.name} "
            f"at {state.replicas} replicas"
        )
        return done(current, state.replicas, "hold", state.scale_down)
    if current is not None and state.rollout_in_progress:
        reasons.append(f"a rollout is in progress: no new switch until it ends ({_money(current)})")
        return done(current, state.replicas, "hold", state.scale_down)

    if best is None:
        dwelling = (
            state.active is not None
            and dwell_guard(
                state.active, state.variant_since, obs.at, spec.rollout.min_dwell_seconds
            )
            is not None
        )
        f = _fallback(spec, evals, state, blocked, rate, obs.gpus_available, dwelling, obs)
        chosen, n = f.variant, f.replicas
        reasons.append(
            f"no variant meets the SLO at {rate:.2f} req/s; running {chosen.name} at "
            f"{n} replicas, the highest net value at the capacity it delivers "
            f"({f.served_rps:.2f} req/s within the SLO, net {usd(f.net_usd_per_hour, '/h')}; "
            f"{chosen.reason})"
        )
        if current is not None and chosen.name == current.name:
            return done(current, *_guarded(spec, obs, state, current, n, rate, saturation, reasons))
        return done(chosen, n, "switch")

    if current is None:
        if state.active:
            reasons.append(f"variant {state.active} is no longer in spec: moving to the best one")
        else:
            basis = "" if live else " (spec.traffic.expectedRequestsPerSecond; no metrics yet)"
            reasons.append(f"first rollout at {rate:.2f} req/s{basis}")
        along = _along(spec, obs, blocked, expected_rates(rate, ahead), factors, held)
        start = by_name[(best_over(ranked, along) or best).name]
        reasons.append(
            f"{_money(start)}: highest net value of the feasible variants over the load "
            f"expected while it must run"
        )
        return done(start, floored(spec, start, ahead, reasons, obs.gpus_available), "switch")

    if best.name != current.name:
        if not current.feasible:
            reasons.append(f"{current.name} {current.reason}; switching to {_money(best)}")
            return done(best, floored(spec, best, ahead, reasons, beside), "switch")
        cutover = cutover_seconds(
            next(v.startup_seconds for v in spec.variants if v.name == best.name),
            spec.rollout.verify_seconds,
            spec.rollout.drain_grace_seconds,
        )
        now_c, now_b = by_rank[current.name], by_rank[best.name]
        hold_why = (
            margin_guard(now_c, now_b, spec.rollout.switch_margin)
            or dwell_guard(
                current.name, state.variant_since, obs.at, spec.rollout.min_dwell_seconds
            )
            or payback_guard(now_c, now_b, cutover, spec.rollout.min_dwell_seconds)
            or path_guard(
                now_c, now_b,
                [
                    (by[current.name], by[best.name])
                    for by in _along(spec, obs, blocked, expected_rates(rate, ahead), factors, held)
                ],
                spec.rollout.switch_margin,
            )
        )  # fmt: skip
        if hold_why is None:
            gain = now_b.net_value_per_hour_usd - now_c.net_value_per_hour_usd
            reasons.append(
                f"switching {current.name} -> {best.name}: +${gain:.2f}/h net "
                f"({_money(now_c)}; {_money(now_b)})"
            )
            return done(best, floored(spec, best, ahead, reasons, beside), "switch")
        reasons.append(f"staying on {current.name}: {hold_why}")
    else:
        reasons.append(f"{_money(current)}: highest net value of the feasible variants")

    floor_why: list[str] = []
    wanted = floored(spec, current, ahead, floor_why, obs.gpus_available)
    band = None
    if wanted > state.replicas and saturation is not None and saturation.calm:
        band = within_noise(spec, current, rate, ahead, state.replicas, obs)
    if band is not None:
        floor_why = [
            f"{current.name}: the load is past {state.replicas} replicas by less than the "
            f"reading's noise ({band:.0%}) and every saturation signal is calm: no replica added"
        ]
        wanted = state.replicas
    reasons.extend(floor_why)
    wanted = max(wanted, surge(spec, current, obs, reasons))
    return done(current, *_guarded(spec, obs, state, current, wanted, rate, saturation, reasons))


def _guarded(
    spec: ModelDeploymentSpec,
    obs: Observation,
    state: CurrentState,
    current: VariantEval,
    wanted: int,
    rate: float,
    saturation: Saturation | None,
    reasons: list[str],
) -> tuple[int, Action, ScaleDown | None]:
    """The serving variant's replicas past the saturation guard, the loading pods and the
    scale-down stabilization, from the `wanted` the load asks for; (replicas, action, the
    pending scale-down). Every decision that keeps the serving variant goes through it,
    the fallback's too: a variant that meets no SLO is not scaled down while saturated."""
    modelled = wanted
    if saturation is not None and saturation.saturated:
        _, hi = replica_bounds(spec, current.name, obs.gpus_available)
        n = min(hi, max(saturation.replicas, wanted))
        if n > wanted:
            reasons.append(f"{saturation.reason}: {n} replicas")
            wanted = n
    elif saturation is not None and not saturation.calm and wanted < state.replicas:
        reasons.append(f"no scale-down while not every signal agrees ({saturation.reason})")
        wanted = state.replicas
    if state.pods_loading and wanted != state.replicas:
        # Loading pods will serve what the saturated Ready ones cannot, so the saturation
        # ask (a multiple of the replicas) waits for them; the demand the model sees
        # (arrivals: completions + queue growth) does not, or a burst gets one step.
        if modelled <= state.replicas:
            reasons.append(
                f"{current.name} pods are still loading: replicas held at {state.replicas}"
            )
            return state.replicas, "hold", state.scale_down
        reasons.append(
            f"{current.name} pods are still loading; the demand needs {modelled} replicas"
        )
        wanted = modelled
    replicas, pending, why = stabilized_replicas(
        state.replicas,
        wanted,
        state.scale_down,
        obs.at,
        spec.traffic.scale_down_stabilization_seconds,
    )
    if why:
        reasons.append(why)
    if replicas != state.replicas:
        reasons.append(f"replicas {state.replicas} -> {replicas} for {rate:.2f} req/s")
        return replicas, "scale", pending
    return replicas, "stay", pending
