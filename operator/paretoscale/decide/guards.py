"""Hysteresis: when a better variant is worth switching to, and when replicas may go down.

Four guards hold a switch back, each a pure function that returns the reason it holds (or
None): the gain must beat the switch margin, the current variant must have dwelt its minimum
time, the gain over the dwell time must pay for the cut-over, during which both variants
run, and the gain must hold on average over the load expected within the dwell. Replicas go up at once and down only after the lower target held for the stabilization
window (the highest target seen in the window wins, as the HPA does).
"""

from __future__ import annotations

from collections.abc import Sequence

from paretoscale.decide.types import ScaleDown, VariantEval
from paretoscale.economics.money import usd


def margin_guard(current: VariantEval, best: VariantEval, switch_margin: float) -> str | None:
    """Hold unless gain [USD/h] >= switch_margin x the current variant's hourly cost [USD/h]."""
    gain = best.net_value_per_hour_usd - current.net_value_per_hour_usd
    needed = switch_margin * current.hourly_cost_usd
    if gain <= 0 or gain < needed:
        return (
            f"{best.name} would gain {usd(gain, '/h')}, below the switch margin "
            f"({switch_margin:.0%} of {usd(current.hourly_cost_usd, '/h')} = {usd(needed, '/h')})"
        )
    return None


def dwell_guard(
    current: str, variant_since: float | None, now: float, min_dwell_s: float
) -> str | None:
    """Hold while the current variant has run less than min_dwell_s."""
    if variant_since is None:
        return None
    spent = now - variant_since
    if spent < min_dwell_s:
        return f"{current} has run {spent:.0f}s of its minimum dwell {min_dwell_s:.0f}s"
    return None


def cutover_seconds(startup_s: float, verify_s: float, drain_grace_s: float) -> float:
    """Time both variants run during a switch [s] = target startup + verification + drain grace."""
    return startup_s + verify_s + drain_grace_s


def payback_guard(
    current: VariantEval, best: VariantEval, cutover_s: float, min_dwell_s: float
) -> str | None:
    """Hold unless the gain over the horizon pays for running the target during the cut-over.

    switching cost [USD] = target hourly cost x cutover hours; gain [USD] = (net_best -
    net_current) [USD/h] x horizon hours, horizon = max(min dwell, cutover), the least time the
    new variant will run.
    """
    gain_per_h = best.net_value_per_hour_usd - current.net_value_per_hour_usd
    switching_cost = best.hourly_cost_usd * cutover_s / 3600.0
    horizon_s = max(min_dwell_s, cutover_s)
    if gain_per_h * horizon_s / 3600.0 < switching_cost:
        return (
            f"{best.name} would gain {usd(gain_per_h * horizon_s / 3600)} over "
            f"{horizon_s / 60:.0f} min, less than the {usd(switching_cost)} the cut-over costs"
        )
    return None


def path_guard(
    current: VariantEval,
    best: VariantEval,
    ahead: Sequence[tuple[VariantEval, VariantEval]],
    switch_margin: float,
) -> str | None:
    """Hold unless the switch still pays over the load expected while the target must run.

    `ahead`: (current, best) evaluated at each rate expected over the minimum dwell
    (policy.expected_rates: the forecast's path, or a band around now before it has one). The target must be feasible wherever the current variant is, and
    its mean net value over now and the path must beat the current one's by switch_margin x
    the current hourly cost, as margin_guard asks of now alone: a switch whose gain comes
    from rounding replicas at this hour's load and reverses with the day is not taken."""
    if not ahead:
        return None
    if any(c.feasible and not b.feasible for c, b in ahead):
        return f"{best.name} cannot meet the SLO at the load expected within its dwell"
    pairs = [(current, best), *ahead]
    gain = sum(b.net_value_per_hour_usd - c.net_value_per_hour_usd for c, b in pairs) / len(pairs)
    needed = switch_margin * current.hourly_cost_usd
    if gain < needed:
        return (
            f"{best.name} would gain {usd(gain, '/h')} on average over the load expected "
            f"within its dwell, below the switch margin ({usd(needed, '/h')})"
        )
    return None


def stabilized_replicas(
    current: int, desired: int, pending: ScaleDown | None, now: float, window_s: float
) -> tuple[int, ScaleDown | None, str | None]:
    """Next replica count, the pending scale-down, and a reason when a change is held.

    Up: at once. Down: only when every target in the last window_s was below `current`; then to
    the highest of them.
    """
    if desired >= current:
        return desired, None, None
    if pending is None:
        pending = ScaleDown(since=now, replicas=desired)
    else:
        pending = ScaleDown(since=pending.since, replicas=max(pending.replicas, desired))
    waited = now - pending.since
    if waited >= window_s:
        return pending.replicas, None, None
    return (
        current,
        pending,
        f"scale-down to {pending.replicas} held for stabilization ({waited:.0f}s of {window_s:.0f}s)",
    )
