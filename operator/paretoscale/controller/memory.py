"""The tick's memory <-> the ModelDeployment status (pure).

The status is the memory that survives a restart: the rollout state, the active variant's
replicas last decided (status.replicas, what "hold" holds), the dwell start, the pending
scale-down, the learned profiles' windows of samples (status.learned), the rolled-back
switches (lastSwitches), the saturation counters and the forecast. Between two writes the
process keeps the newest saturation, forecast and samples itself (`fresh`): they move every
tick, and the status is written only when something else changed or the forecast's half-hour
slot moved on (`status_changed`; figures-only changes such as new samples at most every
STATUS_REFRESH_S), so a restart resumes from a forecast at most one slot old and from the
samples of at most one refresh ago (`refresh_interval_s`: 300-600 s, spread over the fleet).
"""

from __future__ import annotations

import math
import zlib

from paretoscale.api.status import (
    Condition,
    ForecastStatus,
    LearnedProfileStatus,
    LearnedSamples,
    ModelDeploymentStatus,
    SaturationStatus,
)
from paretoscale.controller.status import comparable, parse_time, rollout_state, scale_down_of
from paretoscale.decide.forecast import SLOTS_PER_DAY, ForecastMemory
from paretoscale.decide.learned import LearnedProfile, Sample, fit
from paretoscale.decide.saturation import SaturationMemory
from paretoscale.tick.memory import MAX_ROLLED_BACK, RolledBack, TickMemory


def _sig(x: float, digits: int = 4) -> float:
    """x rounded to `digits` significant digits (keeps the status small)."""
    if x == 0 or not math.isfinite(x):
        return 0.0 if not math.isfinite(x) else x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _opt_sig(x: float | None) -> float | None:
    return None if x is None else _sig(x)


def tick_memory(status: ModelDeploymentStatus, fresh: TickMemory | None = None) -> TickMemory:
    """The tick's memory from the last status; saturation, forecast and the learned profiles'
    samples from `fresh` (this process's newest) when there is one."""
    rolled = tuple(
        RolledBack(sw.to_variant, at, sw.reason)
        for sw in status.last_switches
        if sw.outcome == "rolledBack" and (at := parse_time(sw.at)) is not None
    )[:MAX_ROLLED_BACK]
    recommended = (status.decision.variant, status.decision.replicas) if status.decision else None
    return TickMemory(
        rollout=rollout_state(status.rollout),
        variant_since=parse_time(status.variant_since),
        scale_down=scale_down_of(status),
        learned=fresh.learned if fresh else {n: _learned(p) for n, p in status.learned.items()},
        rolled_back=rolled,
        recommended=recommended,
        replicas=status.replicas,
        saturation=fresh.saturation if fresh else _saturation(status.saturation),
        forecast=fresh.forecast if fresh else _forecast(status.forecast),
    )


def _learned(p: LearnedProfileStatus) -> LearnedProfile:
    s = p.samples
    rows = zip(  # arrays of unequal length (edited by hand): the rows all of them hold
        s.at, s.requests_per_second, s.latency_seconds, s.factor, s.weight, strict=False
    )
    bounds = set(s.bounds)
    return LearnedProfile(
        p.declared_rps,
        tuple(
            Sample(float(s.since + a), r, lat, f, i in bounds, w)
            for i, (a, r, lat, f, w) in enumerate(rows)
        ),
    )


def learned_status(p: LearnedProfile) -> LearnedProfileStatus:
    """One variant's window for the status: numbers to 3 significant digits (weights 2),
    times in whole seconds after the oldest sample's."""
    f = fit(p.samples)
    s = p.samples
    since = math.floor(s[0].at) if s else 0
    return LearnedProfileStatus(
        declared_rps=_sig(p.declared_rps, 3),
        learned_rps=_sig(p.declared_rps * f.factor, 3),
        confidence=f.confidence,
        samples=LearnedSamples(
            since=since,
            at=[round(x.at - since) for x in s],
            requests_per_second=[_sig(x.rate_rps, 3) for x in s],
            latency_seconds=[_sig(x.latency_s, 3) for x in s],
            factor=[_sig(x.factor, 3) for x in s],
            weight=[_sig(x.weight, 2) for x in s],
            bounds=[i for i, x in enumerate(s) if x.bound],
        ),
    )


def _saturation(s: SaturationStatus | None) -> SaturationMemory:
    if s is None:
        return SaturationMemory()
    return SaturationMemory(
        s.variant, s.over_slo_ticks, s.waiting_ticks, s.last_waiting, s.missing_ticks
    )


def _forecast(f: ForecastStatus | None) -> ForecastMemory:
    if f is None:
        return ForecastMemory()
    profile = tuple(f.profile[:SLOTS_PER_DAY]) + (None,) * (SLOTS_PER_DAY - len(f.profile))
    return ForecastMemory(
        at=f.at,
        level=f.level,
        trend=f.trend,
        profile=profile,
        slot=f.slot,
        slot_sum=f.slot_sum,
        slot_n=f.slot_n,
        due_at=f.due_at,
        due_rps=f.due_rps,
        margin=f.margin,
        error_sum=f.error_sum,
        errors=f.errors,
        rate=f.rate,
        due_rate_rps=f.due_rate_rps,
        due_trend_rps=f.due_trend_rps,
        error_rate=f.error_rate,
        error_trend=f.error_trend,
    )


def with_memory(status: ModelDeploymentStatus, m: TickMemory) -> ModelDeploymentStatus:
    """The status with the memory only the tick keeps (saturation counters, forecast, the
    learned profiles' samples)."""
    s, f = m.saturation, m.forecast
    saturation = SaturationStatus(
        variant=s.variant,
        over_slo_ticks=s.over_slo_ticks,
        waiting_ticks=s.waiting_ticks,
        last_waiting=_sig(s.last_waiting) if s.last_waiting is not None else None,
        missing_ticks=s.missing_ticks,
    )
    forecast = (
        ForecastStatus(
            at=f.at,
            level=_sig(f.level) if f.level is not None else None,
            trend=_sig(f.trend),
            profile=[_sig(x) if x is not None else None for x in f.profile],
            slot=f.slot,
            slot_sum=_sig(f.slot_sum),
            slot_n=f.slot_n,
            due_at=f.due_at,
            due_rps=_sig(f.due_rps),
            margin=_sig(f.margin),
            error_sum=_sig(f.error_sum),
            errors=f.errors,
            rate=_opt_sig(f.rate),
            due_rate_rps=_sig(f.due_rate_rps),
            due_trend_rps=_sig(f.due_trend_rps),
            error_rate=_opt_sig(f.error_rate),
            error_trend=_opt_sig(f.error_trend),
        )
        if f.at is not None
        else None
    )
    learned = {n: learned_status(p) for n, p in sorted(m.learned.items())}
    return status.model_copy(
        update={"saturation": saturation, "forecast": forecast, "learned": learned}
    )


STATUS_REFRESH_S = 300.0  # figures-only changes are written at most this often


def refresh_interval_s(uid: str) -> float:
    """An object's interval between figures-only writes: STATUS_REFRESH_S to twice that,
    fixed per object by a hash of its uid. Objects first written in the same tick (a fleet
    the operator starts on) then refresh on different ticks: with one interval for all,
    10,000 of them rewrote their status in one tick every 300 s (a tick of twice the CPU,
    and 10,000 writes at once for the API server)."""
    return STATUS_REFRESH_S * (1.0 + zlib.crc32(uid.encode()) / 2**32)


def status_changed(
    new: ModelDeploymentStatus,
    old: ModelDeploymentStatus,
    since_write_s: float | None = None,
    refresh_s: float = STATUS_REFRESH_S,
) -> bool:
    """Whether the status must be written. Never when only the decision/observation times
    or the forecast's per-tick figures moved (the forecast is written when its slot moves).
    Within `refresh_s` of the last write (`since_write_s`; None: unknown), only a change in
    substance is written (`substance`): live figures that move every tick (rates, latency,
    costs, the words of reasons and messages) then wait for the next refresh, so a fleet
    whose decisions hold writes about once per `refresh_s` per object, not once per tick."""
    if since_write_s is not None and since_write_s < refresh_s:
        return substance(new) != substance(old)  # cheap: no dump of either status
    return _key(new) != _key(old)


def _key(s: ModelDeploymentStatus) -> dict[str, object]:
    doc = comparable(s)
    f = doc.pop("forecast", None)
    doc["forecastSlot"] = f.get("slot") if isinstance(f, dict) else None
    return doc


# Conditions whose message is what a reader acts on, not words about figures: the Pending
# pods CapacityPending names (a pod added to the list is written at once, not at the refresh).
MESSAGE_IS_SUBSTANCE = frozenset({"CapacityPending"})


def _message_if_substance(c: Condition) -> str | None:
    return c.message if c.type in MESSAGE_IS_SUBSTANCE else None


def substance(s: ModelDeploymentStatus) -> tuple[object, ...]:
    """What a reader or a restarted operator acts on: the decision (variant and replicas;
    its action and reasons are words about the same choice), the rollout, each condition's
    type/status/reason (and CapacityPending's message: the pods it names), each variant's
    feasibility and replicas, the memory's counters and windows, corrections to two
    significant digits, the forecast's slot; not the figures that move with every scrape."""
    d, sat = s.decision, s.saturation
    return (
        s.observed_generation,
        s.phase,
        s.active_variant,
        s.target_variant,
        s.replicas,
        (d.variant, d.replicas) if d else None,
        s.rollout.model_dump(exclude={"message"}),
        tuple(
            (c.type, c.status, c.reason, c.observed_generation, _message_if_substance(c))
            for c in s.conditions
        ),
        tuple((v.name, v.feasible, v.on_frontier, v.replicas, v.basis) for v in s.frontier),
        tuple((w.to_variant, w.at, w.outcome) for w in s.last_switches),
        tuple(sorted((k, _sig(v, 2)) for k, v in s.capacity_corrections.items())),
        s.variant_since,
        s.scale_down.model_dump() if s.scale_down else None,
        (sat.variant, sat.over_slo_ticks, sat.waiting_ticks) if sat else None,
        s.forecast.slot if s.forecast else None,
        s.observed.basis if s.observed else None,
    )
