"""Saturation of the serving variant: a hard signal that guards the capacity model (pure).

A variant is saturated when any of its replicas' own signals says the load is beyond them:
- KV cache: vllm:kv_cache_usage_perc (mean over replicas) >= KV_SATURATED;
- queue: vllm:num_requests_waiting (summed) grew, or stayed above WAITING_PER_REPLICA x
  replicas, for WAITING_TICKS consecutive ticks;
- latency: the SLO percentile read from the histogram above the SLO (`above_slo`) for
  LATENCY_TICKS consecutive ticks, while requests wait or more run than there are
  replicas. With no queue and at most one request per replica the latency is the service
  time of the requests at this mix, not queueing or batching: more replicas would not lower
  it (a variant whose p95 with no load sits near the SLO was scaled 3 -> 11 replicas at
  0.7 req/s that way). Such a reading blocks scale-down but adds no replica, and it is not a
  saturated reading the live correction learns capacity from.
Saturated: replicas go up at once, whatever the profile predicts:
    n' = max(n + 1, ceil(n x min(MAX_STEP, max(latency / SLO, (running + waiting) / running))))
(the caller bounds n' by maxReplicas and the GPU inventory). Scale-down is allowed only when
every signal agrees the variant is not saturated (`calm`): KV below the threshold, no request
waiting beyond the bound and none growing, latency within the SLO. A signal that was read
before and is now missing counts as "not calm" for at most STALE_TICKS ticks, then it is
ignored: a stale signal never blocks scale-down forever. A signal never read (e.g. a vLLM
without the metric, or no Prometheus) is ignored from the start.
The consecutive-tick counters live in SaturationMemory, which the operator keeps in status.

A reading above the SLO. Where the SLO is a bucket edge, the histogram says which share
of the window's n requests met it (within_slo); the percentile q is above the SLO only when
that share is significantly below q: within_slo < q - Z x sqrt(q (1 - q) / n). A p95 read as
a quantile there jumps across the edge on sampling noise alone (with long and short requests
mixed, the latency distribution has a cliff right above the p95). Without that share, where
the SLO sits on (within EDGE_NEAR of) the lower edge of the quantile's bucket, the reading
counts as above from DECISIVE of the bucket on (interpolation puts a p95 at lower + (upper -
lower) x (1 - 0.05 / share above): 10% or more above the edge); elsewhere it is the value
against the SLO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paretoscale.decide.types import LatencyReading, VariantSignals

KV_SATURATED = 0.9
WAITING_PER_REPLICA = 2.0
WAITING_TICKS = 2
LATENCY_TICKS = 2
STALE_TICKS = 4
MAX_STEP = 2.0
EDGE_NEAR = 0.05
DECISIVE = 0.5
Z = 2.0


def _noise(q: float, n: float) -> float:
    return Z * math.sqrt(q * (1 - q) / n)


def above_slo(reading: LatencyReading, slo_s: float, q: float) -> bool:
    """Whether a reading says the q-quantile is above the SLO (module docstring)."""
    if reading.within_slo is not None and reading.count:
        return reading.within_slo < q - _noise(q, reading.count)
    lo, hi = reading.lower_edge, reading.upper_edge
    if reading.in_overflow_bucket:
        return lo >= slo_s * (1 - EDGE_NEAR)
    if abs(lo - slo_s) <= EDGE_NEAR * slo_s and hi > lo:
        return reading.value >= lo + DECISIVE * (hi - lo)
    return reading.value > slo_s


def below_slo(reading: LatencyReading, slo_s: float, q: float) -> bool:
    """Whether a reading says the q-quantile is below the SLO, beyond noise."""
    if reading.within_slo is not None and reading.count:
        return reading.within_slo > q + _noise(q, reading.count)
    lo, hi = reading.lower_edge, reading.upper_edge
    if abs(hi - slo_s) <= EDGE_NEAR * slo_s and hi > lo:
        return reading.value <= hi - DECISIVE * (hi - lo)
    return reading.value < slo_s


@dataclass(frozen=True)
class SaturationMemory:
    """Consecutive-tick counters of one serving variant (reset when the variant changes)."""

    variant: str | None = None
    over_slo_ticks: int = 0  # ticks in a row with the SLO percentile above the SLO
    waiting_ticks: int = 0  # ticks in a row with the queue growing or above the bound
    last_waiting: float | None = None
    missing_ticks: int | None = None  # ticks since every signal was read; None: never read


@dataclass(frozen=True)
class Saturation:
    """What the signals say about the serving variant this tick."""

    saturated: bool
    calm: bool  # every signal agrees it is not saturated: scale-down may proceed
    replicas: int  # the replicas the signals ask for (> current when saturated)
    reason: str  # in words; "" when calm
    memory: SaturationMemory


def assess(
    variant: str | None,
    signals: VariantSignals | None,
    replicas: int,
    slo_s: float,
    memory: SaturationMemory,
    q: float = 0.95,
    advance: bool = True,
) -> Saturation:
    """Read the serving variant's signals against its memory (see the module docstring).

    `advance` False: a reconcile between two ticks (same metrics): the counters do not move
    (a reading that clears a signal still resets it)."""
    if variant is None:
        return Saturation(False, True, replicas, "", SaturationMemory())
    m = memory if memory.variant == variant else SaturationMemory(variant=variant)
    step = 1 if advance else 0
    s = signals or VariantSignals()
    kv, waiting, running, lat = s.kv_cache_usage, s.waiting, s.running, s.latency
    idle = s.requests_per_s is not None and s.requests_per_s <= 0 and not waiting
    n = max(replicas, 1)

    over = lat is not None and above_slo(lat, slo_s, q)
    over_ticks = m.over_slo_ticks + step if over else 0
    bound = WAITING_PER_REPLICA * n
    growing = (
        waiting is not None
        and m.last_waiting is not None
        and waiting >= 1
        and waiting > m.last_waiting
    )
    queued = waiting is not None and (waiting > bound or growing)
    waiting_ticks = m.waiting_ticks + step if queued else 0
    read = [kv is not None, waiting is not None, lat is not None or idle]
    if all(read):
        missing: int | None = 0
    else:
        missing = None if m.missing_ticks is None else m.missing_ticks + step
    last = waiting if advance else m.last_waiting
    new = SaturationMemory(variant, over_ticks, waiting_ticks, last, missing)

    why: list[str] = []
    if kv is not None and kv >= KV_SATURATED:
        why.append(f"KV cache {kv:.0%} used (>= {KV_SATURATED:.0%})")
    if waiting_ticks >= WAITING_TICKS and waiting is not None:
        why.append(
            f"{waiting:.0f} requests waiting, growing or above {bound:.0f} for {waiting_ticks} ticks"
        )
    contended = running is None or (waiting or 0.0) >= 1 or running > n
    if over_ticks >= LATENCY_TICKS and lat is not None and contended:
        why.append(f"latency {lat.value:.3g}s above the {slo_s:g}s SLO for {over_ticks} ticks")
    if why:
        factor = 1.0
        if lat is not None and over_ticks >= LATENCY_TICKS and contended:
            factor = max(factor, lat.value / slo_s)
        if waiting is not None and running is not None and running > 0:
            factor = max(factor, (running + waiting) / running)
        wanted = max(replicas + 1, math.ceil(n * min(MAX_STEP, factor) - 1e-9))
        return Saturation(True, False, wanted, f"{variant} saturated: " + "; ".join(why), new)

    unsure: list[str] = []
    if waiting is not None and (waiting > bound or growing):
        unsure.append(f"{waiting:.0f} requests waiting")
    if over and contended:
        unsure.append("latency above the SLO")
    elif over:
        unsure.append(
            "latency above the SLO with no queue and no more requests running than "
            "replicas (service time, which more replicas would not lower)"
        )
    if missing is not None and 0 < missing <= STALE_TICKS:
        unsure.append(f"signals missing for {missing} tick(s)")
    if unsure:
        return Saturation(False, False, replicas, f"{variant}: " + "; ".join(unsure), new)
    return Saturation(False, True, replicas, "", new)
