"""Live correction of declared capacities from what serving variants actually deliver (pure).

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
Factors are smoothed (EWMA, alpha 0.3), clamped to [0.2, 5] and kept in status, so a restart
keeps what was learned. Variants that do not serve keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.economics.capacity import capacity_at_slo_rps, corrected_capacity_factor

ALPHA = 0.3
FACTOR_MIN, FACTOR_MAX = 0.2, 5.0
MIN_LOAD_SHARE = 0.5
STEEP = 1.1


def measured_factor(
    spec: ModelDeploymentSpec,
    variant: str,
    rate_per_replica: float,
    latency_s: float,
    factor: float,
) -> float | None:
    """What one observation says about a variant's speed relative to its declared capacity."""
    v = next(x for x in spec.variants if x.name == variant)
    slo = spec.slo.seconds
    if not v.profile:
        estimate, _ = variant_capacity(v, slo, None, None)
        if latency_s > slo and estimate > 0:
            return rate_per_replica / estimate
        return None
    rates = [p.requests_per_second for p in v.profile]
    lats = [p.latency_seconds for p in v.profile]
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


def update_corrections(
    spec: ModelDeploymentSpec,
    previous: Mapping[str, float],
    observed: Mapping[str, tuple[float, float]],
    alpha: float = ALPHA,
) -> dict[str, float]:
    """New factors: observed maps variant -> (requests/s per ready replica, latency at the SLO).

    factor' = (1 - alpha) x factor + alpha x measured, starting from 1.0; clamped.
    """
    names = {x.name for x in spec.variants}
    out = {k: v for k, v in previous.items() if k in names}
    for name, (rate, latency) in observed.items():
        if name not in names or rate <= 0 or latency <= 0:
            continue
        old = out.get(name, 1.0)
        measured = measured_factor(spec, name, rate, latency, old)
        if measured is None:
            continue
        new = (1 - alpha) * old + alpha * measured
        out[name] = round(min(FACTOR_MAX, max(FACTOR_MIN, new)), 4)
    return out
