"""The hindsight ceiling: in every tick, the variant and replica count with the highest net
value for the demand that actually came, with no startup, no switching cost and no queue
carried between ticks. An upper bound on the net value of any single-variant policy.

For each variant v and replicas n within its bounds and the GPU inventory, per tick k (all
ticks at once, numpy): in-SLO requests = fleet.serve(...) with an empty queue, cost =
n x GPUs x price_k x tick_s / 3600, value = in-SLO x USD per request of quality q_v (the
value_per_hour_usd formula per request), net = value - cost; the oracle takes the argmax.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from paretoscale.replay.fleet import Economy, VariantInfo
from paretoscale.replay.perf import GRID_POINTS, GRID_STEP_U, X_MAX, PerfTable
from paretoscale.replay.traces import FloatArray


def shares_vec(table: PerfTable, scale_idx: np.ndarray, x: FloatArray) -> FloatArray:
    """fleet.share_at for arrays of ticks: linear in the u = -ln(1 - x) grid."""
    rows = np.asarray(table.slo_share)
    xc = np.clip(x, 0.0, X_MAX)
    pos = -np.log1p(-xc) / GRID_STEP_U
    i = np.minimum(pos.astype(np.int64), GRID_POINTS - 2)
    w = np.where(x >= X_MAX, 1.0, pos - i)
    lo, hi = rows[scale_idx, i], rows[scale_idx, i + 1]
    out: FloatArray = lo + (hi - lo) * w
    return out


def in_slo_empty_queue(
    table: PerfTable, scale_idx: np.ndarray, ready: int, arrivals: FloatArray, eco: Economy
) -> FloatArray:
    """fleet.serve's in-SLO requests with no queue at the tick's start, for all ticks."""
    dt = eco.tick_s
    if ready <= 0:
        return np.zeros_like(arrivals)
    mu = np.asarray(table.max_rps)[scale_idx]
    cap = ready * mu
    lam = arrivals / dt
    under = lam < cap
    x = np.where(under, lam / cap, 1.0)
    fresh = arrivals * shares_vec(table, scale_idx, x)
    growth = np.maximum(lam - cap, 1e-12)
    if eco.queue_slack_applies:
        slack = np.maximum(0.0, eco.slo_s - np.asarray(table.limit_latency_s)[scale_idx])
        ok = np.minimum(slack * cap / growth, dt)
    else:
        ok = np.full_like(arrivals, dt)
    late = arrivals * ok / dt * np.asarray(table.limit_share)[scale_idx]
    out: FloatArray = np.where(under, fresh, late)
    return out


def oracle_plan(
    arrivals: FloatArray,
    scale_idx: Sequence[int],
    prices: Sequence[FloatArray],
    variants: Sequence[VariantInfo],
    tables: Sequence[PerfTable],
    bounds: Sequence[tuple[int, int]],
    available: dict[str, int],
    eco: Economy,
    available_by_tick: Mapping[str, FloatArray] | None = None,
) -> tuple[np.ndarray, np.ndarray, FloatArray, FloatArray, FloatArray]:
    """Per tick: (variant index, replicas, in-SLO requests, cost [USD], value [USD]) of the
    best choice in hindsight. prices[v] is variant v's GPU price per tick; with
    `available_by_tick` (GPUs per type per tick), n replicas are a choice only in ticks where
    n x GPUs fit."""
    ticks = len(arrivals)
    sidx = np.asarray(scale_idx, dtype=np.int64)
    hours = eco.tick_s / 3600.0
    per_request = eco.usd_per_1k_per_point / 1000.0 * 100.0 * eco.calibration
    best_net = np.full(ticks, -math.inf)
    best_v = np.zeros(ticks, dtype=np.int64)
    best_n = np.zeros(ticks, dtype=np.int64)
    best_slo = np.zeros(ticks)
    best_cost = np.zeros(ticks)
    best_value = np.zeros(ticks)
    for v, info in enumerate(variants):
        lo, hi = bounds[v]
        hi = min(hi, available.get(info.gpu_type, 0) // info.gpus)
        per_tick = available_by_tick.get(info.gpu_type) if available_by_tick else None
        if per_tick is not None:
            hi = min(bounds[v][1], int(per_tick.max()) // info.gpus)
        for n in range(lo, hi + 1):
            slo = in_slo_empty_queue(tables[v], sidx, n, arrivals, eco)
            cost = n * info.gpus * prices[v] * hours
            value = slo * per_request * info.quality
            net = value - cost
            if per_tick is not None:
                net = np.where(n * info.gpus <= per_tick, net, -math.inf)
            better = net > best_net
            best_net = np.where(better, net, best_net)
            best_v = np.where(better, v, best_v)
            best_n = np.where(better, n, best_n)
            best_slo = np.where(better, slo, best_slo)
            best_cost = np.where(better, cost, best_cost)
            best_value = np.where(better, value, best_value)
    return best_v, best_n, best_slo, best_cost, best_value
