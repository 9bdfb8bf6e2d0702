"""How many replicas a variant runs besides what its load asks for at the target
utilization (pure): its bounds within the GPU inventory, the forecast's floor, the noise
hold and the surge of the last poll. decide() (policy.py) applies them in that order.
"""

from __future__ import annotations

from collections.abc import Mapping

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import inventory_now
from paretoscale.decide.forecast import RateForecast
from paretoscale.decide.headroom import noise_band, rate_at_risk
from paretoscale.decide.types import Observation, VariantEval
from paretoscale.economics.capacity import replicas_for_rate


def replica_bounds(
    spec: ModelDeploymentSpec, name: str, gpus_now: Mapping[str, int] | None = None
) -> tuple[int, int]:
    """(min, max) replicas of a variant: its bounds (else spec.traffic's), max also within
    the GPU inventory (spec.gpus, lowered to what the cluster shows: `gpus_now`)."""
    v = next(x for x in spec.variants if x.name == name)
    lo = v.min_replicas if v.min_replicas is not None else spec.traffic.min_replicas
    hi = v.max_replicas if v.max_replicas is not None else spec.traffic.max_replicas
    available = inventory_now(spec, gpus_now).get(v.gpu.type, hi * v.gpu.count)
    return lo, max(lo, min(hi, available // v.gpu.count))


def forecast_floor(
    spec: ModelDeploymentSpec,
    e: VariantEval,
    ahead: RateForecast,
    gpus_now: Mapping[str, int] | None,
    lower_by: float = 0.0,
) -> int:
    """Replicas of e the forecast asks for once a new one would be Ready: the point forecast
    at the target utilization, and the rate at risk (headroom.rate_at_risk) at full capacity
    at the SLO; both divided by 1 + `lower_by`; within bounds."""
    lo, hi = replica_bounds(spec, e.name, gpus_now)
    util = spec.traffic.target_utilization
    replica_usd = e.hourly_cost_usd / e.replicas if e.replicas > 0 else 0.0
    risk = rate_at_risk(ahead, replica_usd, e.value_per_hour_usd)
    point = replicas_for_rate(ahead.point_rps / (1 + lower_by), e.capacity_rps, util, lo, hi)
    upper = replicas_for_rate(risk / (1 + lower_by), e.capacity_rps, 1.0, lo, hi)
    return max(hi if point is None else point, hi if upper is None else upper)


def floored(
    spec: ModelDeploymentSpec,
    e: VariantEval,
    ahead: RateForecast | None,
    reasons: list[str],
    gpus_now: Mapping[str, int] | None = None,
) -> int:
    """e's replicas, raised to what the forecast needs when they would be Ready
    (`forecast_floor`)."""
    if ahead is None or not e.feasible:
        return e.replicas
    n = forecast_floor(spec, e, ahead, gpus_now)
    if n > e.replicas:
        reasons.append(
            f"{e.name}: {n} replicas for the {ahead.point_rps:.2f} req/s forecast "
            f"in {ahead.horizon_s:.0f}s (up to {ahead.upper_rps:.2f})"
        )
        return n
    return e.replicas


def within_noise(
    spec: ModelDeploymentSpec,
    e: VariantEval,
    rate: float,
    ahead: RateForecast | None,
    replicas: int,
    obs: Observation,
) -> float | None:
    """The noise band (headroom.noise_band) when e's load asks for more than `replicas` by
    less than it: the rate and the forecast lowered by the band need no more; else None."""
    util = spec.traffic.target_utilization
    band = noise_band(rate, obs.rate_window_s, util)
    if band <= 0 or not e.feasible:
        return None
    lo, hi = replica_bounds(spec, e.name, obs.gpus_available)
    low = replicas_for_rate(rate / (1 + band), e.capacity_rps, util, lo, hi)
    if low is None or low > replicas:
        return None
    if ahead is not None and forecast_floor(spec, e, ahead, obs.gpus_available, band) > replicas:
        return None
    return band


def surge(spec: ModelDeploymentSpec, e: VariantEval, obs: Observation, reasons: list[str]) -> int:
    """Replicas of e for the arrivals since the last poll (Observation.arrivals_recent_per_s)
    when they are above the demand over the rate window: a burst shows there a window
    earlier, and replicas that take minutes to load must be asked for at once. Only the
    serving variant's replicas follow it (not the choice of variant), and scale-down waits
    out the stabilization window as always. 0 otherwise."""
    recent, demand = obs.arrivals_recent_per_s, obs.demand_per_s
    if recent is None or demand is None or not e.feasible or recent <= demand:
        return 0
    lo, hi = replica_bounds(spec, e.name, obs.gpus_available)
    n = replicas_for_rate(recent, e.capacity_rps, spec.traffic.target_utilization, lo, hi)
    n = hi if n is None else n
    if n > e.replicas:
        reasons.append(
            f"arrivals surged to {recent:.2f} req/s since the last poll "
            f"({demand:.2f} over the rate window): {n} replicas"
        )
    return n
