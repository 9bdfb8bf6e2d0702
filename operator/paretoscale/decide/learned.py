"""Profiles that learn: a bounded window of live samples per variant, fitted to one factor on
the declared profile's rate axis (pure).

Every tick, each variant's trustworthy reading (tick.py: `_evidence`) goes through the rules
of decide/corrections.py (`evidence_factor`: light load, bucket edges, saturation, the FLOP
proxy), read against the factor the window gives now. A reading those rules accept becomes a
`Sample`: when, the per-replica rate at the profile's own token mix (the observed rate moved
by the declared capacity's ratio between the two mixes, economics/work.py), the latency at
the SLO percentile, what it says about the speed (capacity / declared capacity), whether it
is only an upper bound (at saturation: capacity <= completions per replica) and its weight
(latency / SLO, at least MIN_WEIGHT: a reading far below the SLO counts little). The window
keeps the newest MAX_SAMPLES samples not older than MAX_AGE_S, so a reading taken in an
unusual hour (pods loading, a burst) drops out and never holds a factor forever.

The learned profile is the declared one (whatever evaluate.variant_capacity's prior is: the
profile, or the estimate of a variant without one) with its rate axis scaled by k (`fit`):
weighted least squares of log k against each sample's log factor, where upper bounds count
only while k lies above them (one-sided), and count as one, at their median and the weight
of all, once MIN_BOUNDS of them are in the window (a single reading at "saturation" may be a
backlog draining onto new replicas, or a run of long prompts that pushed the latency past the
SLO at 60% of the capacity, and say less than the replica can do; most of them do not),
plus a prior sample at k = 1 of weight PRIOR_WEIGHT. The confidence is W / (W + PRIOR_WEIGHT), W the weight of the samples that count: the factor the
decision uses (`Fit.applied`) is the data's k shrunk toward 1 by it, so one reading moves it
part of the way and a window of agreeing ones all the way. Clamped to [FACTOR_MIN,
FACTOR_MAX]. Variants that do not serve keep their window until it ages out, and then are
planned on the declared profile again. PRIOR_WEIGHT 0.5 and MAX_AGE_S 6 h are what the
replay did best with: a heavier prior (1, 2) left a 2x optimistic profile more slowly and
missed the SLO more meanwhile, a lighter one (0.25) lost net value on diurnal-14d-70b; a
longer age (24 h, 72 h) switched a little less there but gained no net value, and lost it
on h100-price-cut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.corrections import FACTOR_MAX, FACTOR_MIN, Evidence, evidence_factor
from paretoscale.decide.evaluate import spec_capacity
from paretoscale.economics.work import TokenMix

MAX_SAMPLES = 64
MAX_AGE_S = 6 * 3600.0
PRIOR_WEIGHT = 0.5
MIN_WEIGHT = 0.25
MIN_BOUNDS = 2


@dataclass(frozen=True)
class Sample:
    """One reading the fit uses (see the module docstring)."""

    at: float  # seconds since the epoch
    rate_rps: float  # completions per replica, at the profile's token mix
    latency_s: float  # at the SLO percentile (0: none read)
    factor: float  # capacity / declared capacity this reading says
    bound: bool = False  # only capacity <= factor x declared (saturation)
    weight: float = 1.0


@dataclass(frozen=True)
class LearnedProfile:
    """One variant's window and its declared capacity at the SLO at the profile's mix."""

    declared_rps: float
    samples: tuple[Sample, ...] = ()


@dataclass(frozen=True)
class Fit:
    """The window fitted: k from the data alone, its confidence, what the decision uses."""

    factor: float = 1.0
    confidence: float = 0.0
    applied: float = 1.0


def _clamp(k: float) -> float:
    return min(FACTOR_MAX, max(FACTOR_MIN, k))


def _solve(
    points: Sequence[tuple[float, float]], bounds: Sequence[tuple[float, float]], prior: float
) -> tuple[float, float]:
    """(log k, weight of the samples that count) minimising the one-sided weighted squares
    with a prior sample at log k = 0 of weight `prior` (> 0): a bound counts while k lies
    above it (an active set, grown and shrunk until it holds)."""
    active: list[tuple[float, float]] = []
    x, w = 0.0, 0.0
    for _ in range(len(bounds) + 2):
        used = [*points, *active]
        w = sum(wt for _, wt in used)
        x = sum(lg * wt for lg, wt in used) / (w + prior)
        now_active = [b for b in bounds if b[0] < x]
        if now_active == active:
            break
        active = now_active
    return x, w


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2 if n else 1.0


def fit(samples: Sequence[Sample]) -> Fit:
    """The window's factor and confidence (see the module docstring)."""
    points = [(math.log(s.factor), s.weight) for s in samples if not s.bound and s.factor > 0]
    held = [s for s in samples if s.bound and s.factor > 0]
    bounds = [(math.log(_median([s.factor for s in held])), sum(s.weight for s in held))]
    if len(held) < MIN_BOUNDS:
        bounds = []
    raw = _solve(points, bounds, 1e-9)  # the data alone (a bound alone: k at the bound)
    shrunk = _solve(points, bounds, PRIOR_WEIGHT)
    if shrunk[1] <= 0:
        return Fit()
    confidence = shrunk[1] / (shrunk[1] + PRIOR_WEIGHT)
    return Fit(
        round(_clamp(math.exp(raw[0])), 4),
        round(confidence, 3),
        round(_clamp(math.exp(shrunk[0])), 4),
    )


def window(samples: Sequence[Sample], now: float) -> tuple[Sample, ...]:
    """The samples still in the window at `now`: not older than MAX_AGE_S, the newest
    MAX_SAMPLES."""
    return tuple(s for s in samples if now - s.at <= MAX_AGE_S)[-MAX_SAMPLES:]


def factors(learned: Mapping[str, LearnedProfile]) -> dict[str, float]:
    """The capacity factor the decision uses per variant with samples (Fit.applied)."""
    return {n: fit(p.samples).applied for n, p in learned.items() if p.samples}


def learn(
    spec: ModelDeploymentSpec,
    learned: Mapping[str, LearnedProfile],
    observed: Mapping[str, Evidence],
    now: float,
    mix: TokenMix | None = None,
    gpus: GpuTypes = BUILTIN,
) -> dict[str, LearnedProfile]:
    """The windows after this tick's evidence: aged (`window`), each accepted reading added.
    A reading is judged (corrections.evidence_factor) against the factor its window gives
    before it, at the observed token `mix`. Variants no longer in the spec and empty windows
    are dropped."""
    variants = {v.name: v for v in spec.variants}
    out: dict[str, LearnedProfile] = {}
    for name, p in learned.items():
        if name in variants and (kept := window(p.samples, now)):
            out[name] = LearnedProfile(p.declared_rps, kept)
    slo = spec.slo.seconds
    for name, ev in observed.items():
        v = variants.get(name)
        if v is None or ev.rate_per_replica <= 0:
            continue
        before = out.get(name)
        current = fit(before.samples).applied if before else 1.0
        measured = evidence_factor(spec, name, ev, current, mix, gpus)
        if measured is None or measured <= 0:
            continue
        at_mix, _ = spec_capacity(spec, v, mix, gpus)
        declared, _ = spec_capacity(spec, v, None, gpus)
        rate = ev.rate_per_replica * declared / at_mix if at_mix > 0 else ev.rate_per_replica
        latency = ev.latency.value if ev.latency is not None else 0.0
        weight = 1.0 if ev.saturated else min(1.0, max(MIN_WEIGHT, latency / slo))
        sample = Sample(now, rate, latency, measured, ev.saturated, weight)
        kept = before.samples if before else ()
        out[name] = LearnedProfile(declared, (*kept, sample)[-MAX_SAMPLES:])
    return out
