"""Live correction of declared profiles from what serving variants actually deliver (pure).

Where a variant serves, its observed latency at its observed per-replica load says how fast it
really is relative to its profile (economics.capacity.corrected_capacity_factor). The factor is
smoothed (EWMA, alpha 0.3) so one noisy tick cannot move a decision, clamped to [0.2, 5], and
kept in status so a restart keeps what was learned. Variants that do not serve keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.economics.capacity import corrected_capacity_factor

ALPHA = 0.3
FACTOR_MIN, FACTOR_MAX = 0.2, 5.0


def update_corrections(
    spec: ModelDeploymentSpec,
    previous: Mapping[str, float],
    observed: Mapping[str, tuple[float, float]],
    alpha: float = ALPHA,
) -> dict[str, float]:
    """New factors: observed maps variant -> (requests/s per ready replica, latency at the SLO).

    factor' = (1 - alpha) x factor + alpha x measured, starting from 1.0; clamped.
    """
    out = {k: v for k, v in previous.items() if any(x.name == k for x in spec.variants)}
    for v in spec.variants:
        if v.name not in observed or not v.profile:
            continue
        rate, latency = observed[v.name]
        measured = corrected_capacity_factor(
            [p.requests_per_second for p in v.profile],
            [p.latency_seconds for p in v.profile],
            rate,
            latency,
        )
        if measured is None:
            continue
        old = out.get(v.name, 1.0)
        new = (1 - alpha) * old + alpha * measured
        out[v.name] = round(min(FACTOR_MAX, max(FACTOR_MIN, new)), 4)
    return out
