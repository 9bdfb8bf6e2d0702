"""How many requests one replica serves within the SLO, and how many replicas a load needs.

A profile is a measured curve (request rate per replica -> latency at the SLO percentile).
The capacity at an SLO is the highest rate whose interpolated latency stays within it.
Interpolation is piecewise linear on a monotone envelope (latency never falls as load rises),
so it never invents a bump; below the first point the first point's latency holds, and beyond
the last point nothing is known, so it is infeasible rather than extrapolated.

Without a profile the FLOP proxy (economics/cost.py) estimates capacity; it says nothing about
latency, so `flop_proxy_latency_floor_s` bounds the latency of one request on an idle replica
from below (prefill at peak compute, every generated token reading all weights once): a
variant whose floor exceeds the SLO is refused (capacity 0) rather than called feasible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _envelope(latencies_s: Sequence[float]) -> list[float]:
    out: list[float] = []
    for latency in latencies_s:
        out.append(max(latency, out[-1]) if out else latency)
    return out


def capacity_at_slo_rps(
    rates_rps: Sequence[float], latencies_s: Sequence[float], slo_s: float
) -> float:
    """Highest per-replica rate [req/s] whose latency [s] meets slo_s; 0 if none does.

    With the monotone envelope L(r), capacity = max r in [0, r_last] with L(r) <= slo, found
    by linear interpolation inside the segment where L crosses slo.
    """
    lat = _envelope(latencies_s)
    if not rates_rps or lat[0] > slo_s:
        return 0.0
    for i in range(1, len(rates_rps)):
        if lat[i] > slo_s:
            r0, r1, l0, l1 = rates_rps[i - 1], rates_rps[i], lat[i - 1], lat[i]
            return r0 + (slo_s - l0) / (l1 - l0) * (r1 - r0)
    return float(rates_rps[-1])


def latency_at_rate_s(
    rates_rps: Sequence[float], latencies_s: Sequence[float], rate_rps: float
) -> float | None:
    """Latency [s] the profile predicts at rate_rps; None beyond the last measured rate."""
    lat = _envelope(latencies_s)
    if rate_rps > rates_rps[-1]:
        return None
    if rate_rps <= rates_rps[0]:
        return lat[0]
    for i in range(1, len(rates_rps)):
        if rate_rps <= rates_rps[i]:
            r0, r1 = rates_rps[i - 1], rates_rps[i]
            return lat[i - 1] + (rate_rps - r0) / (r1 - r0) * (lat[i] - lat[i - 1])
    return lat[-1]


def rate_at_latency_rps(
    rates_rps: Sequence[float], latencies_s: Sequence[float], latency_s: float
) -> float | None:
    """Inverse of the profile: the rate [req/s] at which it predicts latency_s.

    None where the profile cannot say (latency below the first point's or above the last).
    """
    lat = _envelope(latencies_s)
    if latency_s < lat[0] or latency_s > lat[-1]:
        return None
    if lat[-1] == lat[0]:
        return None
    return capacity_at_slo_rps(rates_rps, lat, latency_s)


def replicas_for_rate(
    requests_per_s: float,
    capacity_rps: float,
    target_utilization: float,
    min_replicas: int,
    max_replicas: int,
) -> int | None:
    """Replicas so that each runs at most target_utilization of its capacity at the SLO.

    n = max(min, ceil(rate / (capacity x utilization))); None when n > max, or when capacity
    is 0: a variant that misses the SLO even at its lightest measured load is infeasible at any
    load, idle included.
    """
    usable = capacity_rps * target_utilization
    if usable <= 0:
        return None
    if requests_per_s <= 0:
        return min_replicas
    needed = math.ceil(requests_per_s / usable - 1e-9)
    n = max(min_replicas, needed, 1)
    return n if n <= max_replicas else None


def corrected_capacity_factor(
    rates_rps: Sequence[float],
    latencies_s: Sequence[float],
    observed_rate_per_replica_rps: float,
    observed_latency_s: float,
) -> float | None:
    """Live correction of a profile [ratio]: observed rate / rate the profile gives that latency.

    If a replica shows latency L at rate r, and the profile reaches L only at r_p, reality is
    r / r_p as fast as profiled (below 1: slower). None when the profile cannot say (latency
    outside its range) or the load is too low to learn from.
    """
    if observed_rate_per_replica_rps <= 0 or observed_latency_s <= 0:
        return None
    profiled = rate_at_latency_rps(rates_rps, latencies_s, observed_latency_s)
    if profiled is None or profiled <= 0:
        return None
    return observed_rate_per_replica_rps / profiled


BYTES_PER_PARAMETER = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


def flop_proxy_latency_floor_s(
    parameters: int,
    bytes_per_parameter: float,
    prompt_tokens: float,
    output_tokens: float,
    peak_flops: float,
    hbm_bytes_per_s: float,
    gpus: int,
    metric: str = "e2e",
    utilization: float = 0.70,
) -> float:
    """The least latency [s] one request can see on an idle replica, where the FLOP proxy
    estimates capacity (no profile): a lower bound, so a variant above the SLO at this floor
    cannot meet it at any load.

    prefill = 2 x parameters x prompt tokens / (GPUs x peak FLOP/s x utilization); each
    generated token reads every weight once (parameters x bytes / (GPUs x HBM bytes/s)) and
    computes 2 x parameters FLOPs, whichever is slower. ttft = prefill; itl = one generated
    token; e2e = prefill + output tokens x one generated token.
    """
    compute = gpus * peak_flops * utilization
    bandwidth = gpus * hbm_bytes_per_s
    if compute <= 0 or bandwidth <= 0:
        return math.inf
    prefill = 2.0 * parameters * prompt_tokens / compute
    per_token = max(parameters * bytes_per_parameter / bandwidth, 2.0 * parameters / compute)
    if metric == "ttft":
        return prefill
    if metric == "itl":
        return per_token
    return prefill + output_tokens * per_token
