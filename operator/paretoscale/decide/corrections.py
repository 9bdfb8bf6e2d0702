"""What one live reading says about a variant's capacity relative to its declared one (pure).

Where a variant serves, its observed latency at its observed per-replica load says how fast it
really is relative to its profile. Rules, each learned from trace replay (docs/replay.md):
- a latency read from a histogram is only known to lie in its bucket (lower, upper]; the value
  inside it is histogram_quantile's linear interpolation, which assumes requests spread evenly
  over the bucket. vLLM's buckets are wide (e2e: 2.5, 5, 10 s) and a latency tail puts most of
  a bucket's requests near its lower edge, so the interpolation reads high: the simulator's
  8B fp8 p95 reads 5-40% above the true one between half its capacity and its limit, and
  inverting that value as a point made a profile measured on the simulator itself look
  10-20% slow. So for a profiled variant a reading says only this (`bucket_factor`): with R
  the profile's inverse, reality is in the bucket at the observed rate r for every factor in
  [r / R(upper), r / R(lower)) (an end the profile cannot place is open; a percentile above
  the profile's last latency bounds the factor by r / its last rate). The factor in use
  inside that interval: nothing to learn, wherever the value lies in the bucket; outside it:
  the nearest end. Where that end is the SLO (within EDGE_NEAR), the reading must be beyond
  noise (saturation.above_slo / below_slo: with the share of requests within the SLO where
  the SLO is an edge, else interpolated past saturation.DECISIVE of the bucket), else a noisy
  reading would move the factor one way only. Elsewhere a reading that crossed an edge by
  noise puts the factor at that edge, which is where the truth is when noise can cross it
  (requiring the value DECISIVE of the bucket there too learned almost nothing from a
  pessimistic profile: the interpolation sits high in a bucket);
- bucket readings teach only from a replica loaded to at least EDGE_MIN_LOAD_SHARE of its
  profiled capacity: below it, a miss of the percentile is the tail of the request mix (a few
  long requests, whose latency more replicas do not shorten), not the load (on the 70B
  example, learning from half the capacity up cost 0.8 points of net value against no
  correction, from 80% up it gained 0.1);
- where the SLO is one of the histogram's edges and the reading carries the share of
  requests within it, the evidence is that share, not the quantile (which jumps across
  buckets on noise): the factor moves only when the percentile is beyond noise on the other
  side of the SLO than the profile predicts at the observed load (rate / factor), and then to
  measured = rate / profiled capacity at the SLO;
- one observation moves the factor by at most 2x either way;
- a reading without a bucket (`measured_factor`) is inverted as a point
  (economics.capacity.corrected_capacity_factor), only from a replica loaded to at least
  MIN_LOAD_SHARE of its profiled capacity and where the profile is steep (latency 10% above
  its lightest point); a latency above the profile's highest point at a rate below its last
  point bounds the factor from above (rate / last rate);
- a variant estimated by the FLOP proxy (no profile) learns only when it misses the SLO:
  then its capacity is at most the observed rate.
- at saturation (decide/saturation.py) a replica completes what it can: the completions per
  replica are its throughput at the current token mix, which is at least its capacity at the
  SLO. So capacity at the SLO <= observed completions per replica, and the factor is bounded
  from above by rate / declared capacity at the SLO (it only ever lowers it).
Each rule's answer is relative to the factor in use (one reading moves it at most 2x); what
the readings add up to, and what the decision uses, is decide/learned.py's fit over a window
of them, kept in status, so a restart keeps what was learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.decide.evaluate import profile_curve, spec_capacity
from paretoscale.decide.saturation import EDGE_NEAR, above_slo, below_slo
from paretoscale.decide.types import LatencyReading
from paretoscale.economics.capacity import (
    capacity_at_slo_rps,
    corrected_capacity_factor,
    latency_at_rate_s,
    rate_at_latency_rps,
)
from paretoscale.economics.work import TokenMix

FACTOR_MIN, FACTOR_MAX = 0.2, 5.0
MIN_LOAD_SHARE = 0.5
EDGE_MIN_LOAD_SHARE = 0.8
STEEP = 1.1


@dataclass(frozen=True)
class Evidence:
    """One variant's reading for the live correction."""

    rate_per_replica: float  # completions per ready replica [req/s]
    latency: LatencyReading | None  # at the SLO percentile, with its bucket
    saturated: bool = False  # the saturation guard fired on it and it misses the SLO


def measured_factor(
    spec: ModelDeploymentSpec,
    variant: str,
    rate_per_replica: float,
    latency_s: float,
    factor: float,
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
) -> float | None:
    """What one observation says about a variant's speed relative to its declared capacity."""
    v = next(x for x in spec.variants if x.name == variant)
    slo = spec.slo.seconds
    if not v.profile:
        estimate, _ = spec_capacity(spec, v, mix, gpus)
        if latency_s > slo and estimate > 0:
            return rate_per_replica / estimate
        return None
    rates, lats = profile_curve(v, spec.slo.latency, mix)
    if latency_s > max(lats) and rate_per_replica < rates[-1]:
        measured: float | None = rate_per_replica / rates[-1]
    else:
        capacity = capacity_at_slo_rps(rates, lats, slo)
        if capacity > 0 and rate_per_replica < MIN_LOAD_SHARE * capacity:
            return None
        if latency_s < STEEP * min(lats):
            return None
        measured = corrected_capacity_factor(rates, lats, rate_per_replica, latency_s)
    if measured is None:
        return None
    return min(2 * factor, max(factor / 2, measured))


def near(edge: float, slo_s: float) -> bool:
    return abs(edge - slo_s) <= EDGE_NEAR * slo_s


def evidence_factor(
    spec: ModelDeploymentSpec,
    variant: str,
    ev: Evidence,
    factor: float,
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
) -> float | None:
    """What one reading says about a variant's speed (see the module docstring)."""
    v = next(x for x in spec.variants if x.name == variant)
    slo, rate, q = spec.slo.seconds, ev.rate_per_replica, spec.slo.percentile / 100.0
    if ev.saturated:
        declared, _ = spec_capacity(spec, v, mix, gpus)
        if declared <= 0 or rate >= factor * declared:
            return None
        return max(factor / 2, rate / declared)
    if ev.latency is None or ev.latency.value <= 0:
        return None
    if v.profile and ev.latency.within_slo is not None and ev.latency.count:
        rates, lats = profile_curve(v, spec.slo.latency, mix)
        capacity = capacity_at_slo_rps(rates, lats, slo)
        if capacity > 0 and rate < EDGE_MIN_LOAD_SHARE * capacity:
            return None
        predicted = latency_at_rate_s(rates, lats, rate / factor)
        slower = predicted is not None and predicted <= slo and above_slo(ev.latency, slo, q)
        faster = (predicted is None or predicted > slo) and below_slo(ev.latency, slo, q)
        if capacity <= 0 or not (slower or faster):
            return None
        return min(2 * factor, max(factor / 2, rate / capacity))
    if v.profile and ev.latency.lower_edge < ev.latency.upper_edge:
        return bucket_factor(spec, v, rate, ev.latency, factor, mix)
    if not v.profile and not above_slo(ev.latency, slo, q):
        return None  # an estimate learns only from a (decisive) SLO miss
    return measured_factor(spec, variant, rate, ev.latency.value, factor, mix)


def bucket_factor(
    spec: ModelDeploymentSpec,
    v: VariantSpec,
    rate: float,
    reading: LatencyReading,
    factor: float,
    mix: TokenMix | None = None,
) -> float | None:
    """What a histogram reading says of a profiled variant's speed: only that the percentile
    lies in its bucket (lower, upper] (module docstring). With R the profile's inverse (the
    rate at which it predicts a latency), reality at the observed `rate` r is in the bucket for
    every factor k in [r / R(upper), r / R(lower)); a bound the profile cannot place is open
    (0, or +inf), except that a percentile above the profile's last latency bounds k by
    r / its last rate. `factor` inside the interval: nothing; else the nearest end, once the
    reading is beyond noise where that end is the SLO."""
    slo, q = spec.slo.seconds, spec.slo.percentile / 100.0
    rates, lats = profile_curve(v, spec.slo.latency, mix)
    capacity = capacity_at_slo_rps(rates, lats, slo)
    if capacity <= 0 or rate < EDGE_MIN_LOAD_SHARE * capacity:
        return None
    lo, hi = reading.lower_edge, reading.upper_edge
    at_hi = rate_at_latency_rps(rates, lats, hi)
    at_lo = rate_at_latency_rps(rates, lats, lo)
    fastest = rate / at_hi if at_hi else 0.0
    slowest = rate / at_lo if at_lo else (rate / rates[-1] if lo >= max(lats) else math.inf)
    if factor < fastest and not (near(hi, slo) and not below_slo(reading, slo, q)):
        measured = fastest
    elif factor > slowest and not (near(lo, slo) and not above_slo(reading, slo, q)):
        measured = slowest
    else:
        return None
    return min(2 * factor, max(factor / 2, measured))
