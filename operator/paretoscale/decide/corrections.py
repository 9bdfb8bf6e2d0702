"""What one live reading says about a variant's capacity relative to its declared one (pure).

Where a variant serves, its observed latency at its observed per-replica load says how fast it
really is relative to its profile (economics.capacity.corrected_capacity_factor). Rules, each
learned from trace replay (docs/replay.md):
- learn only from a replica loaded to at least half its *profiled* capacity, and only where
  the profile is steep (latency 10% above its lightest point): at light load latency barely
  moves with load, so inverting a p95 read from coarse vLLM buckets (5 s .. 10 s) amplifies
  noise; measuring against the corrected capacity fed on itself down to the clamp;
- one observation moves the factor by at most 2x either way;
- a latency above the profile's highest point at a rate below its last point bounds the
  factor from above (rate / last rate): the profile cannot be inverted there, but it is clear
  that reality is slower;
- a variant estimated by the FLOP proxy (no profile) learns only when it misses the SLO:
  then its capacity is at most the observed rate.
- where the SLO is one of the histogram's edges, the histogram says which share of requests
  met it: the evidence is that share, not the quantile (which jumps across buckets on
  noise). The SLO splits latency into (.., SLO] and (SLO, ..): the factor moves only when the
  percentile is beyond noise on the other side of the SLO than the profile predicts at the
  observed load (rate / factor), and then to measured = rate / profiled capacity at the SLO;
- a latency read from a histogram is only known to lie in its bucket (lower, upper]; where
  the SLO sits on or near one of the reading's bucket edges (saturation.on_edge), the
  interpolated value inside the bucket says nothing about the speed (with the SLO at an edge,
  most requests fall in the bucket below it and the p95 interpolates to just under the edge
  at any load). Then the factor moves only when the profile's prediction at the observed
  load (rate / factor) lies outside the bucket, and only as far as the nearest edge:
  measured = rate / the rate at which the profile reaches that edge. The reading must be
  beyond noise (saturation.above_slo / below_slo: against the SLO edge, the share of requests
  within the SLO differs from the percentile by more than sampling noise; against another
  edge, the value is DECISIVE of the bucket away from it), else a noisy reading would move
  the factor one way only, toward whatever the load happens to be. Both learn only from a
  replica loaded to at least EDGE_MIN_LOAD_SHARE of its profiled capacity: below it, a miss
  of the percentile is the tail of the request mix (a few long requests, whose latency more
  replicas do not shorten), not the load (on the 70B example, learning from half the capacity
  up cost 0.8 points of net value against no correction, from 80% up it gained 0.1);
- at saturation (decide/saturation.py) a replica completes what it can: the completions per
  replica are its throughput at the current token mix, which is at least its capacity at the
  SLO. So capacity at the SLO <= observed completions per replica, and the factor is bounded
  from above by rate / declared capacity at the SLO (it only ever lowers it).
Each rule's answer is relative to the factor in use (one reading moves it at most 2x); what
the readings add up to, and what the decision uses, is decide/learned.py's fit over a window
of them, kept in status, so a restart keeps what was learned.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import profile_curve, spec_capacity
from paretoscale.decide.saturation import DECISIVE, EDGE_NEAR, above_slo, below_slo, on_edge
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
    if v.profile and on_edge(ev.latency, slo):
        rates, lats = profile_curve(v, spec.slo.latency, mix)
        capacity = capacity_at_slo_rps(rates, lats, slo)
        if capacity > 0 and rate < EDGE_MIN_LOAD_SHARE * capacity:
            return None
        predicted = latency_at_rate_s(rates, lats, rate / factor)
        lo, hi, value = ev.latency.lower_edge, ev.latency.upper_edge, ev.latency.value
        if predicted is None or lo <= predicted <= hi:
            return None
        if predicted < lo and not (
            above_slo(ev.latency, slo, q) if near(lo, slo) else value >= lo + DECISIVE * (hi - lo)
        ):
            return None
        if predicted > hi and not (
            below_slo(ev.latency, slo, q) if near(hi, slo) else value <= hi - DECISIVE * (hi - lo)
        ):
            return None
        at = rate_at_latency_rps(rates, lats, hi if predicted > hi else lo)
        if at is None or at <= 0:
            return None
        return min(2 * factor, max(factor / 2, rate / at))
    if not v.profile and not above_slo(ev.latency, slo, q):
        return None  # an estimate learns only from a (decisive) SLO miss
    return measured_factor(spec, variant, rate, ev.latency.value, factor, mix)
