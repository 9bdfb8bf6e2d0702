"""Evaluate every variant at a load: capacity at the SLO, replicas, cost, value, frontier.

Pure: spec + rate + prices + corrections in, one VariantEval per variant out. decide() picks
from these; `paretoscale plan` prints them; the operator writes them to status.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping
from dataclasses import replace

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.admission import weight_precision
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.decide.types import (
    DEFAULT_TOKENS_PER_REQUEST,
    CapacityBasis,
    HeldGpus,
    VariantEval,
)
from paretoscale.economics.capacity import (
    BYTES_PER_PARAMETER,
    capacity_at_slo_rps,
    flop_proxy_latency_floor_s,
    replicas_for_rate,
)
from paretoscale.economics.cost import (
    cost_per_1k_requests_usd,
    flop_proxy_capacity_rps,
    hourly_cost_usd,
)
from paretoscale.economics.frontier import pareto_mask
from paretoscale.economics.value import (
    calibration_factor,
    calibration_from_ab_tests,
    payback_days,
    value_per_hour_usd,
)
from paretoscale.economics.work import (
    AZURE_CONVERSATION_MIX,
    WORK_WEIGHTS,
    LatencyMetric,
    TokenMix,
    curve_at_mix,
    decode_kind,
)
from paretoscale.sim.prior import Prior, prior_problem, variant_prior


def spec_calibration(spec: ModelDeploymentSpec) -> float:
    """calibrationFactor if given, else the 25th percentile over abTests clamped to (0, 1]
    (calibration_warning says when it was), else 0.30."""
    if spec.value.calibration_factor is not None:
        return spec.value.calibration_factor
    return calibration_factor([(t.offline_delta, t.online_delta) for t in spec.value.ab_tests])


def calibration_warning(spec: ModelDeploymentSpec) -> str | None:
    """Why the calibration from abTests was clamped, in words; None when it was not (or
    calibrationFactor is given)."""
    if spec.value.calibration_factor is not None:
        return None
    tests = [(t.offline_delta, t.online_delta) for t in spec.value.ab_tests]
    return calibration_from_ab_tests(tests)[1]


def profile_mix(variant: VariantSpec) -> TokenMix:
    """The token mix the variant's profile was measured at: profileTokens, else the Azure
    conversation means."""
    t = variant.profile_tokens
    return TokenMix(t.prompt_tokens, t.output_tokens) if t else AZURE_CONVERSATION_MIX


def profile_curve(
    variant: VariantSpec, metric: LatencyMetric, mix: TokenMix | None
) -> tuple[list[float], list[float]]:
    """The variant's profile (rates [req/s], latencies [s]) at the observed token `mix`
    (economics/work.py: curve_at_mix from its profileTokens); as measured without a mix."""
    assert variant.profile is not None
    rates = [p.requests_per_second for p in variant.profile]
    lats = [p.latency_seconds for p in variant.profile]
    if mix is None:
        return rates, lats
    method = variant.vllm.speculative.method if variant.vllm.speculative else None
    weights = WORK_WEIGHTS[decode_kind(method)]
    return curve_at_mix(rates, lats, metric, profile_mix(variant), mix, weights)


def load_mix(tokens_per_request: float | None, mix: TokenMix | None) -> TokenMix:
    """The mix a load is read at: the observed mix, else the observed tokens per request
    split as the Azure conversation mix, else that mix."""
    if mix is not None:
        return mix
    base = AZURE_CONVERSATION_MIX
    total = tokens_per_request or base.total_tokens
    return TokenMix(
        total * base.prompt_tokens / base.total_tokens,
        total * base.output_tokens / base.total_tokens,
    )


def model_prior(
    variant: VariantSpec,
    metric: LatencyMetric,
    percentile: float,
    target: TokenMix,
    gpus: GpuTypes = BUILTIN,
) -> Prior | None:
    """The performance model's profile of `variant` near mix `target` (sim/prior.py), with
    the GPU figures of `gpus`; None where the model cannot apply."""
    problem = gpus.problem(variant.gpu.type)
    if problem is not None:
        return None
    gpu = gpus.get(variant.gpu.type)
    return variant_prior(
        variant, gpu, metric, percentile, target.prompt_tokens, target.output_tokens
    )


def prior_curve(
    variant: VariantSpec, prior: Prior, metric: LatencyMetric, target: TokenMix
) -> tuple[list[float], list[float]]:
    """The prior (rates [req/s], latencies [s]) moved from the mix it was computed at (the
    target rounded, sim/prior.py rounded_mix) to `target` by the work model, as a profile is."""
    method = variant.vllm.speculative.method if variant.vllm.speculative else None
    at = TokenMix(prior.prompt_tokens, prior.output_tokens)
    rates, lats = list(prior.rates_rps), list(prior.latencies_s)
    return curve_at_mix(rates, lats, metric, at, target, WORK_WEIGHTS[decode_kind(method)])


def variant_capacity(
    variant: VariantSpec,
    slo_s: float,
    tokens_per_request: float | None,
    correction: float | None,
    metric: LatencyMetric = "e2e",
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
    percentile: float = 95.0,
) -> tuple[float, CapacityBasis]:
    """Requests/s one replica serves within the SLO, and where that figure comes from.

    With an observed token `mix`, a profile is read at that mix (profile_curve: the work
    model of economics/work.py, `metric` the SLO's latency); without one as measured.
    Without a profile, the performance model's prior (basis "model", sim/prior.py) at the
    SLO `percentile` and the load's mix (load_mix), read through the same work model. Where
    the model cannot apply, the FLOP proxy counts the mix's prompt + output tokens at the
    BF16 peak of the variant's GPU type in `gpus` (the cluster's GPU type mapping); it is 0
    (refused) when its least latency for one request (flop_proxy_floor_s) exceeds the SLO,
    and without `parameters` (the model applies at the default mix, estimate_problems, but
    not at this one). `correction` multiplies any of them (basis "live"), but not a refusal.
    """
    if variant.profile:
        rates, lats = profile_curve(variant, metric, mix)
        return _corrected(capacity_at_slo_rps(rates, lats, slo_s), "profile", correction)
    target = load_mix(tokens_per_request, mix)
    prior = model_prior(variant, metric, percentile, target, gpus)
    if prior is not None:
        rates, lats = prior_curve(variant, prior, metric, target)
        return _corrected(capacity_at_slo_rps(rates, lats, slo_s), "model", correction)
    if variant.parameters is None:
        # estimate_problems() checks the default mix; at this one the model does not apply
        return 0.0, "estimate"
    gpu = gpus.get(variant.gpu.type)
    if flop_proxy_floor_s(variant, tokens_per_request, metric, mix, gpus) > slo_s:
        return 0.0, "estimate"  # no load meets the SLO: refused, whatever a correction says
    cap = flop_proxy_capacity_rps(
        variant.parameters,
        (mix.total_tokens if mix else tokens_per_request) or DEFAULT_TOKENS_PER_REQUEST,
        gpu.bf16_dense_tflops * 1e12,
        variant.gpu.count,
    )
    return _corrected(cap, "estimate", correction)


def keeps_up_ratio(
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    tokens_per_request: float | None,
    mix: TokenMix | None,
    gpus: GpuTypes = BUILTIN,
) -> float | None:
    """How far past its capacity at the SLO one replica of `variant` still keeps up with
    its arrivals (its queue stays bounded), as a multiple of that capacity: the performance
    model's throughput limit over its capacity at the SLO, at the load's mix (>= 1). None
    where the model cannot apply or meets the SLO at no load."""
    target = load_mix(tokens_per_request, mix)
    prior = model_prior(variant, spec.slo.latency, spec.slo.percentile, target, gpus)
    if prior is None:
        return None
    rates, lats = prior_curve(variant, prior, spec.slo.latency, target)
    cap = capacity_at_slo_rps(rates, lats, spec.slo.seconds)
    return max(1.0, max(rates) / cap) if cap > 0 else None


def unproven_factors(
    spec: ModelDeploymentSpec,
    corrections: Mapping[str, float],
    tokens_per_request: float | None,
    mix: TokenMix | None,
    gpus: GpuTypes = BUILTIN,
    but: str | None = None,
) -> dict[str, float]:
    """`corrections`, plus for every variant (but `but`) planned on the performance model
    with nothing learned live: its capacity lowered by the prior's uncertainty (x 1 - u).
    A choice compares variants with these, so a variant no reading has confirmed must win
    by more than the model's error before anything moves to it."""
    out = dict(corrections)
    target = load_mix(tokens_per_request, mix)
    for v in spec.variants:
        if v.profile or v.name == but or v.name in corrections:
            continue
        prior = model_prior(v, spec.slo.latency, spec.slo.percentile, target, gpus)
        if prior is not None:
            out[v.name] = max(0.0, 1.0 - prior.uncertainty)
    return out


def estimate_problems(spec: ModelDeploymentSpec, gpus: GpuTypes = BUILTIN) -> list[str]:
    """What keeps a variant without a profile or `parameters` from any capacity: the
    performance model cannot apply to it (a model family it does not know, a GPU type
    without figures, arguments it cannot run), in the form SpecError lists. The API server
    cannot see the model's tables, so the operator and every command check this."""
    out = []
    for i, v in enumerate(spec.variants):
        if v.profile or v.parameters is not None:
            continue
        if model_prior(v, spec.slo.latency, spec.slo.percentile, load_mix(None, None), gpus):
            continue
        why = gpus.problem(v.gpu.type) or prior_problem(v, gpus.get(v.gpu.type))
        out.append(
            f"spec.variants[{i}]: variant {v.name!r} needs a profile (measured with `vllm bench "
            f"serve`, see `paretoscale profile`) or parameters (its parameter count): the "
            f"performance model cannot estimate it ({why or 'no capacity at any load'})"
        )
    return out


def _corrected(
    cap: float, basis: CapacityBasis, correction: float | None
) -> tuple[float, CapacityBasis]:
    if correction is not None and correction > 0:
        return cap * correction, "live"
    return cap, basis


def spec_capacity(
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
) -> tuple[float, CapacityBasis]:
    """variant_capacity at the spec's SLO (seconds, metric, percentile), uncorrected."""
    slo = spec.slo
    return variant_capacity(
        variant, slo.seconds, None, None, slo.latency, mix, gpus, slo.percentile
    )


def flop_proxy_floor_s(
    variant: VariantSpec,
    tokens_per_request: float | None,
    metric: LatencyMetric = "e2e",
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
) -> float:
    """The FLOP proxy's lower bound on one request's latency at the SLO metric [s]
    (economics/capacity.py), at the load's mix (load_mix); weights at the variant's
    precision."""
    assert variant.parameters is not None
    gpu = gpus.get(variant.gpu.type)
    mix = load_mix(tokens_per_request, mix)
    v = variant.vllm
    precision = weight_precision(v.model, v.dtype, v.quantization)
    return flop_proxy_latency_floor_s(
        variant.parameters,
        BYTES_PER_PARAMETER[precision],
        mix.prompt_tokens,
        mix.output_tokens,
        gpu.bf16_dense_tflops * 1e12,
        gpu.hbm_tb_per_s * 1e12,
        variant.gpu.count,
        metric,
    )


def gpu_prices(spec: ModelDeploymentSpec, live: Mapping[str, float]) -> dict[str, float]:
    """USD per GPU-hour by type: the live price where Prometheus has one, else the spec's."""
    return {g.type: live.get(g.type, float(g.usd_per_hour)) for g in spec.gpus}


def inventory_now(
    spec: ModelDeploymentSpec, gpus_now: Mapping[str, int] | None = None
) -> dict[str, int]:
    """GPUs per type a ModelDeployment can hold: spec.gpus[].available, lowered to what the
    cluster shows (`gpus_now`, Observation.gpus_available) where it shows a type."""
    now = gpus_now or {}
    return {
        g.type: min(g.available, max(0, now[g.type])) if g.type in now else g.available
        for g in spec.gpus
    }


def _room(inventory: Mapping[str, int], v: VariantSpec, held: HeldGpus | None) -> int:
    """GPUs of v's type v can have: the inventory, less what the serving variant holds when
    v is another variant on its type."""
    free = inventory[v.gpu.type]
    if held is not None and held.variant != v.name and held.gpu_type == v.gpu.type:
        return max(0, free - held.count)
    return free


def evaluate(
    spec: ModelDeploymentSpec,
    requests_per_s: float,
    live_prices: Mapping[str, float],
    corrections: Mapping[str, float],
    tokens_per_request: float | None = None,
    blocked: Mapping[str, str] | None = None,
    mix: TokenMix | None = None,
    gpus_now: Mapping[str, int] | None = None,
    gpus: GpuTypes = BUILTIN,
    held: HeldGpus | None = None,
) -> tuple[VariantEval, ...]:
    """Every variant at `requests_per_s`, with the frontier marked among the feasible ones.

    `blocked` maps variants that may not be chosen now (a rollout to them just failed) to why.
    `mix`: the observed token mix; capacities are scaled to it (variant_capacity).
    `gpus_now`: GPUs per type the cluster can give now (inventory()); a variant that needs
    more is not feasible. `held`: GPUs the serving variant holds; every other variant on
    their type has only the rest (a rollout runs both until the new one is Ready).
    `gpus`: the GPU type mapping (variant_capacity's FLOP proxy).

    The last result per spec object is remembered (`_LAST`) for as long as that spec object
    lives: an idle ModelDeployment, or one whose load, prices and inventory did not move, is
    evaluated with the same inputs every tick, and gets the same tuple back without the work.
    """
    key = (
        requests_per_s,
        _items(live_prices),
        _items(corrections),
        tokens_per_request,
        _items(blocked),
        mix,
        _items(gpus_now),
        held,
    )
    last = _LAST.get(id(spec))
    ref = last[0] if last is not None and last[0]() is spec else None
    if ref is not None and last is not None and last[1] is gpus and last[2] == key:
        return last[3]
    out = _evaluate(
        spec, requests_per_s, live_prices, corrections, tokens_per_request, blocked, mix,
        gpus_now, gpus, held,
    )  # fmt: skip
    if ref is None:
        ref = weakref.ref(spec, functools.partial(_forget, id(spec)))
    _LAST[id(spec)] = (ref, gpus, key, out)
    return out


def _forget(spec_id: int, _: object) -> None:
    _LAST.pop(spec_id, None)


# id(spec) -> (a weak reference to the spec, gpus, the other inputs, the result). The entry
# goes when its spec does (a new generation parsed, the object deleted), before its id can
# be reused; the memo holds no spec alive.
_LAST: dict[
    int,
    tuple[weakref.ref[ModelDeploymentSpec], GpuTypes, tuple[object, ...], tuple[VariantEval, ...]],
] = {}


def _items(m: Mapping[str, object] | None) -> tuple[tuple[str, object], ...] | None:
    return None if m is None else tuple(sorted(m.items()))


def _evaluate(
    spec: ModelDeploymentSpec,
    requests_per_s: float,
    live_prices: Mapping[str, float],
    corrections: Mapping[str, float],
    tokens_per_request: float | None,
    blocked: Mapping[str, str] | None,
    mix: TokenMix | None,
    gpus_now: Mapping[str, int] | None,
    gpus: GpuTypes,
    held: HeldGpus | None,
) -> tuple[VariantEval, ...]:
    prices = gpu_prices(spec, live_prices)
    inventory = inventory_now(spec, gpus_now)
    calibration = spec_calibration(spec)
    per_point = float(spec.value.per_quality_point)
    rows: list[VariantEval] = []
    for v in spec.variants:
        cap, basis = variant_capacity(
            v,
            spec.slo.seconds,
            tokens_per_request,
            corrections.get(v.name),
            spec.slo.latency,
            mix,
            gpus,
            spec.slo.percentile,
        )
        lo = v.min_replicas if v.min_replicas is not None else spec.traffic.min_replicas
        hi = v.max_replicas if v.max_replicas is not None else spec.traffic.max_replicas
        n = replicas_for_rate(requests_per_s, cap, spec.traffic.target_utilization, lo, hi)
        reason = ""
        if n is None:
            slo_words = f"p{spec.slo.percentile:g} {spec.slo.latency} <= {spec.slo.seconds:g}s"
            if mix is not None and v.profile:
                slo_words += f" at the observed {mix} (profiled at {profile_mix(v)})"
        if n is None and cap <= 0:
            lightest = (
                f" ({v.profile[0].requests_per_second:g} req/s: {v.profile[0].latency_seconds:g}s)"
                if v.profile
                else ""
            )
            reason = f"misses {slo_words} even at its lightest profiled load{lightest}"
            if basis == "model":
                reason = _model_miss(v, spec, slo_words, load_mix(tokens_per_request, mix), gpus)
            elif v.parameters is None:
                reason = (
                    f"cannot be estimated at the observed {load_mix(tokens_per_request, mix)}: "
                    "the performance model does not apply there; give it a profile or "
                    "parameters"
                )
            elif not v.profile:
                floor = flop_proxy_floor_s(v, tokens_per_request, spec.slo.latency, mix, gpus)
                reason = (
                    f"misses {slo_words} at any load: the FLOP proxy's least latency for one "
                    f"request is {floor:.3g}s"
                )
            n = hi
        elif n is None:
            reason = (
                f"cannot meet {slo_words} "
                f"at {requests_per_s:.2f} req/s with at most {hi} replicas "
                f"({cap:.2f} req/s each at the SLO)"
            )
            n = hi
        elif n * v.gpu.count > (room := _room(inventory, v, held)):
            where = (
                "in the cluster now"
                if gpus_now and inventory[v.gpu.type] == gpus_now.get(v.gpu.type)
                else "in spec.gpus"
            )
            reason = (
                f"needs {n * v.gpu.count} {v.gpu.type} GPUs, "
                f"{inventory[v.gpu.type]} available {where}"
            )
            if held is not None and room < inventory[v.gpu.type]:
                reason += (
                    f", {room} of them beside the {held.count} {held.variant} holds until "
                    f"a rollout to {v.name} is Ready"
                )
        elif blocked and v.name in blocked:
            reason = blocked[v.name]
        cost = hourly_cost_usd(n, v.gpu.count, prices[v.gpu.type])
        value = value_per_hour_usd(requests_per_s, per_point, v.quality, calibration)
        rows.append(
            VariantEval(
                name=v.name,
                gpu_type=v.gpu.type,
                quality=v.quality,
                feasible=not reason,
                reason=reason,
                capacity_rps=cap,
                capacity_basis=basis,
                replicas=n,
                hourly_cost_usd=cost,
                cost_per_1k_requests_usd=cost_per_1k_requests_usd(cost, requests_per_s),
                value_per_hour_usd=value,
                net_value_per_hour_usd=value - cost,
            )
        )
    return _with_frontier_and_payback(spec, rows)


def _model_miss(
    v: VariantSpec, spec: ModelDeploymentSpec, slo_words: str, target: TokenMix, gpus: GpuTypes
) -> str:
    """Why the prior refuses `v`: its latency at the lightest load it predicts."""
    prior = model_prior(v, spec.slo.latency, spec.slo.percentile, target, gpus)
    if prior is None:
        return f"misses {slo_words} at any load the performance model predicts"
    rates, lats = prior_curve(v, prior, spec.slo.latency, target)
    return (
        f"misses {slo_words} at any load: the performance model predicts {lats[0]:.3g}s "
        f"at {rates[0]:.3g} req/s per replica"
    )


def _with_frontier_and_payback(
    spec: ModelDeploymentSpec, rows: list[VariantEval]
) -> tuple[VariantEval, ...]:
    feasible = [r for r in rows if r.feasible]
    # Every feasible variant serves the same rate, so hourly cost orders them as cost per request.
    mask = pareto_mask([r.hourly_cost_usd for r in feasible], [r.quality for r in feasible])
    on = {r.name for r, m in zip(feasible, mask, strict=True) if m}
    reference = max(feasible, key=lambda r: (r.quality, -r.hourly_cost_usd), default=None)
    one_time = {v.name: v.one_time_cost_usd for v in spec.variants}
    out = []
    for r in rows:
        days = None
        cost = one_time[r.name]
        if cost is not None and reference is not None and r.feasible:
            gain = (r.net_value_per_hour_usd - reference.net_value_per_hour_usd) * 24
            days = payback_days(float(cost), gain)
        frontier = r.name in on
        if frontier != r.on_frontier or days != r.payback_days:
            r = replace(r, on_frontier=frontier, payback_days=days)
        out.append(r)
    return tuple(out)
