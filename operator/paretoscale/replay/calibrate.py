"""Declared profiles vs the simulator's performance model, and profiles derived from it.

A variant's `profile` (rate per replica -> latency at the SLO percentile) is what decide()
plans with; the replay's reality is the perfmodel. When they disagree, the operator's live
correction has to close the gap, and the baselines (which trust the profile) run too many or
too few replicas. `compare` measures the gap; `derived_profile` writes the perfmodel's curve
as a profile (`paretoscale replay --calibrate-profiles`), and `with_profiles` puts derived
profiles into a spec (`--profiles measured`) so every policy plans with a consistent one;
`without_profiles` removes them (`--profiles model`), so every policy plans with the
operator's own prior (sim/prior.py, basis "model").

The perfmodel's capacity at the SLO is the rate where its latency at the SLO percentile
(the perf table's mixture over request lengths) crosses the bound; a derived profile has a
point exactly there, so decide() computes the same capacity from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretoscale.api.accelerators import BUILTIN
from paretoscale.api.types import ModelDeploymentSpec, ProfilePoint
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.economics.capacity import capacity_at_slo_rps, latency_at_rate_s
from paretoscale.replay.perf import X_MAX, PerfTable, load_grid

PROFILE_X = (0.05, 0.2, 0.4, 0.6, 0.75, 0.85, 0.92, 0.97)


@dataclass(frozen=True)
class ProfileGap:
    """How far one variant's declared profile is from the perfmodel."""

    variant: str
    basis: str  # "profile", "model" (performance-model prior) or "estimate" (FLOP proxy)
    declared_capacity_rps: float
    perfmodel_capacity_rps: float
    perfmodel_max_rps: float
    latency_ratios: tuple[float, ...]  # perfmodel / declared latency at each declared rate
    derived: tuple[ProfilePoint, ...]

    @property
    def capacity_ratio(self) -> float | None:
        """perfmodel / declared capacity at the SLO (None when the declared one is 0)."""
        if self.declared_capacity_rps <= 0:
            return None
        return self.perfmodel_capacity_rps / self.declared_capacity_rps


def _curve(table: PerfTable) -> tuple[list[float], list[float]]:
    mu = table.max_rps[table.scales.index(1.0) if 1.0 in table.scales else 0]
    row = table.latency_pct_s[table.scales.index(1.0) if 1.0 in table.scales else 0]
    rates = [max(float(x), 1e-4) * mu for x in load_grid()]
    return rates, list(row)


def derived_profile(table: PerfTable) -> tuple[tuple[ProfilePoint, ...], float]:
    """The perfmodel's curve as profile points, and its capacity at the SLO [req/s]."""
    rates, lats = _curve(table)
    cap = capacity_at_slo_rps(rates, lats, table.slo_s)
    mu = rates[-1] / X_MAX
    xs = {round(x * mu, 4) for x in PROFILE_X}
    if 0 < cap < rates[-1]:
        xs.add(round(cap, 4))
    points = []
    for r in sorted(xs):
        lat = latency_at_rate_s(rates, lats, r)
        if r > 0 and lat is not None:
            slo_point = abs(r - round(cap, 4)) < 1e-9
            points.append(
                ProfilePoint(
                    requests_per_second=r,
                    latency_seconds=table.slo_s if slo_point else round(lat, 4),
                )
            )
    return tuple(points), cap


def compare(spec: ModelDeploymentSpec, tables: dict[str, PerfTable]) -> list[ProfileGap]:
    """Each variant's declared capacity at the SLO vs the perfmodel's, and the latency ratio
    at each declared profile point."""
    out = []
    for v in spec.variants:
        table = tables[v.name]
        rates, lats = _curve(table)
        derived, cap = derived_profile(table)
        ratios: list[float] = []
        for p in v.profile or []:
            lat = latency_at_rate_s(rates, lats, p.requests_per_second)
            ratios.append(lat / p.latency_seconds if lat is not None else float("inf"))
        declared, basis = variant_capacity(
            v, spec.slo.seconds, None, None, spec.slo.latency, None, BUILTIN, spec.slo.percentile
        )
        out.append(
            ProfileGap(
                variant=v.name,
                basis=basis,
                declared_capacity_rps=declared,
                perfmodel_capacity_rps=cap,
                perfmodel_max_rps=rates[-1] / X_MAX,
                latency_ratios=tuple(ratios),
                derived=derived,
            )
        )
    return out


def with_profiles(spec: ModelDeploymentSpec, gaps: list[ProfileGap]) -> ModelDeploymentSpec:
    """The spec with every variant's profile replaced by the perfmodel-derived one (a variant
    the perfmodel says cannot meet the SLO at any load gets a profile that says so too)."""
    by_name = {g.variant: g for g in gaps}
    variants = [
        v.model_copy(update={"profile": list(by_name[v.name].derived)})
        if len(by_name[v.name].derived) >= 2
        else v
        for v in spec.variants
    ]
    return spec.model_copy(update={"variants": variants})


def without_profiles(spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The spec with every variant's profile and profileTokens removed: decide() plans with
    the performance-model prior (basis "model") where it applies."""
    variants = [
        v.model_copy(update={"profile": None, "profile_tokens": None}) for v in spec.variants
    ]
    return spec.model_copy(update={"variants": variants})


def gaps_text(name: str, spec: ModelDeploymentSpec, gaps: list[ProfileGap]) -> str:
    """The comparison and the derived profiles, as YAML a user can paste under variants."""
    slo = spec.slo
    lines = [
        f"# {name}: p{slo.percentile:g} {slo.latency} <= {slo.seconds:g}s; declared profiles vs "
        "the simulator's performance model (paretoscale.sim)",
        f"# {'VARIANT':<16} {'BASIS':<9} {'DECLARED CAP':>12} {'PERFMODEL CAP':>13} "
        f"{'RATIO':>6} {'PERF MAX':>8}  LATENCY perf/declared at the profile's rates",
    ]
    for g in gaps:
        ratio = "-" if g.capacity_ratio is None else f"{g.capacity_ratio:.2f}"
        lat = " ".join(f"{r:.2f}" for r in g.latency_ratios) or "-"
        lines.append(
            f"# {g.variant:<16} {g.basis:<9} {g.declared_capacity_rps:>12.2f} "
            f"{g.perfmodel_capacity_rps:>13.2f} {ratio:>6} {g.perfmodel_max_rps:>8.2f}  {lat}"
        )
    lines.append("variants:")
    for g in gaps:
        lines.append(f"- name: {g.variant}")
        if g.perfmodel_capacity_rps <= 0:
            lines.append("  # the perfmodel misses the SLO even at the lowest load")
        lines.append("  profile:")
        for p in g.derived:
            lines.append(
                f"  - {{requestsPerSecond: {p.requests_per_second:g}, "
                f"latencySeconds: {p.latency_seconds:g}}}"
            )
    return "\n".join(lines)
