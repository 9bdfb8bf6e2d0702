"""The fleet of one ModelDeployment, tick by tick: replicas, routing, queues, cost and value.

Pure: `step(fleet, target, tick)` returns the next fleet and what the tick delivered. A tick k
covers [k x tick_s, (k + 1) x tick_s); at its start the policy's target is applied, then the
tick's arrivals are served by the Ready replicas.

Replicas: a new replica is Ready `startupSeconds` after it is created (rounded up to whole
ticks); scale-down removes loading replicas first, then the newest. Replicas beyond the GPUs
`available` in spec.gpus stay Pending (no cost, never Ready) until GPUs free up. Every
replica that exists, loading or Ready, costs its GPUs for the whole tick:
  cost [USD] = replicas x GPUs per replica x price [USD per GPU-hour] x tick_s / 3600.

Routing: arrivals go to the variants the target serves that have Ready replicas, in
proportion to Ready replicas ("pods": a Kubernetes Service) or to Ready replicas x the
replica's throughput limit ("capacity": a load-aware gateway, as llm-d's).

Serving one variant (`serve`): n Ready replicas, each with throughput limit mu [req/s], so
M = n x mu; A arrivals (rate lambda = A / tick_s) and Q requests already queued.
- no queue and lambda < M: share(lambda / M) of the A requests are within the SLO, where
  share is the perf table's within-SLO share (perf.py);
- otherwise a fluid queue Q(t) = max(0, Q + (lambda - M) t): a request arriving at t waits
  Q(t) / M, and is on time when that wait <= slack = SLO - latency at the limit (for itl/tpot
  SLOs a queue wait does not delay tokens: slack is infinite). On-time arrivals count with
  the share at the limit (queue growing) or share(lambda / M) (queue draining). The queue at
  the end of the tick is capped at M x queue_timeout_s (clients give up); the rest is dropped.
Value of a tick [USD] = value_per_hour_usd(in-SLO requests / tick_s, per point, quality,
calibration) x tick_s / 3600: economics/value.py's formula; late requests earn nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from paretoscale.economics.cost import hourly_cost_usd
from paretoscale.economics.value import value_per_hour_usd
from paretoscale.replay.perf import PerfTable

Routing = Literal["pods", "capacity"]


@dataclass(frozen=True)
class VariantInfo:
    """What the fleet needs to know of one variant."""

    name: str
    gpu_type: str
    gpus: int
    quality: float
    startup_ticks: int


@dataclass(frozen=True)
class FleetTarget:
    """What a policy wants: replicas per variant, the variants the Service routes to, how it
    routes, and the policy's own memory (handed back in the next tick's input)."""

    replicas: dict[str, int]
    serving: tuple[str, ...]
    routing: Routing = "pods"
    memory: object = None


@dataclass(frozen=True)
class Fleet:
    """Per variant (spec order): the tick each existing replica is Ready at, and the queue."""

    ready_at: tuple[tuple[int, ...], ...]
    queue: tuple[float, ...]

    @classmethod
    def empty(cls, variants: int) -> Fleet:
        return cls(tuple(() for _ in range(variants)), tuple(0.0 for _ in range(variants)))

    def existing(self, v: int) -> int:
        return len(self.ready_at[v])

    def ready(self, v: int, tick: int) -> int:
        return sum(1 for r in self.ready_at[v] if r <= tick)


@dataclass(frozen=True)
class Economy:
    """Constants of the accounting: tick length, value per request, queue patience."""

    tick_s: float
    usd_per_1k_per_point: float
    calibration: float
    slo_s: float
    queue_slack_applies: bool  # False for itl/tpot SLOs: waiting does not delay tokens
    queue_timeout_s: float = 120.0


@dataclass(frozen=True)
class Served:
    """One variant in one tick."""

    arrivals: float
    in_slo: float
    served: float
    dropped: float
    queue_end: float
    load_x: float  # per-replica load as a fraction of the throughput limit (1 when queued)
    on_time: float  # arrivals that did not wait past the slack


@dataclass(frozen=True)
class TickResult:
    """What the whole fleet did in one tick."""

    arrivals: float
    in_slo: float
    cost_usd: float
    value_usd: float
    gpus: int
    replicas: tuple[int, ...]  # existing per variant
    ready: tuple[int, ...]
    served: tuple[Served | None, ...]  # per variant; None when it had no Ready replica and no queue


def share_at(table: PerfTable, scale: int, x: float) -> float:
    """Within-SLO share of one replica at load fraction x (linear in the table)."""
    i, w = table.position(x)
    return table.at(table.slo_share[scale], i, w)


def serve(
    table: PerfTable, scale: int, ready: int, arrivals: float, queue: float, eco: Economy
) -> Served:
    """One variant for one tick (formulas in the module docstring)."""
    dt = eco.tick_s
    mu = table.max_rps[scale]
    capacity_rps = ready * mu
    lam = arrivals / dt
    if queue <= 0.0 and lam < capacity_rps:
        x = lam / capacity_rps
        return Served(
            arrivals, arrivals * share_at(table, scale, x), arrivals, 0.0, 0.0, x, arrivals
        )
    growth = lam - capacity_rps
    if eco.queue_slack_applies:
        slack_s = max(0.0, eco.slo_s - table.limit_latency_s[scale])
        k = slack_s * capacity_rps
        if growth > 0:
            ok_s = min(max((k - queue) / growth, 0.0), dt)
        elif growth < 0:
            ok_s = dt - min(max((queue - k) / -growth, 0.0), dt)
        else:
            ok_s = dt if queue <= k else 0.0
    else:
        ok_s = dt
    on_time = arrivals * ok_s / dt if capacity_rps > 0 else 0.0
    share = table.limit_share[scale] if growth >= 0 else share_at(table, scale, lam / capacity_rps)
    end = max(0.0, queue + growth * dt)
    cap = capacity_rps * eco.queue_timeout_s
    dropped = max(0.0, end - cap)
    end -= dropped
    return Served(
        arrivals,
        on_time * share,
        queue + arrivals - end - dropped,
        dropped,
        end,
        1.0 if growth >= 0 else lam / capacity_rps,
        on_time,
    )


def apply_target(
    fleet: Fleet,
    target: FleetTarget,
    variants: Sequence[VariantInfo],
    available: dict[str, int],
    tick: int,
    warm: bool,
) -> Fleet:
    """Scale every variant toward the target: removals first (loading replicas, then the
    newest), then creations in spec order while GPUs of the type are free. `warm`: replicas
    created now are Ready at once (the fleet that runs before the replay starts)."""
    kept: list[tuple[int, ...]] = []
    for v, info in enumerate(variants):
        want = max(0, target.replicas.get(info.name, 0))
        pods = fleet.ready_at[v]
        kept.append(pods[:want] if want < len(pods) else pods)
    used: dict[str, int] = {}
    for v, info in enumerate(variants):
        used[info.gpu_type] = used.get(info.gpu_type, 0) + len(kept[v]) * info.gpus
    out: list[tuple[int, ...]] = []
    for v, info in enumerate(variants):
        pods = kept[v]
        want = max(0, target.replicas.get(info.name, 0))
        if want > len(pods):
            free = available.get(info.gpu_type, 0) - used[info.gpu_type]
            new = min(want - len(pods), max(0, free // info.gpus))
            at = tick if warm else tick + info.startup_ticks
            pods = tuple(sorted(pods + (at,) * new))
            used[info.gpu_type] += new * info.gpus
        out.append(pods)
    return Fleet(tuple(out), fleet.queue)


def step(
    fleet: Fleet,
    target: FleetTarget,
    tick: int,
    arrivals: float,
    scale: int,
    prices: Sequence[float],
    variants: Sequence[VariantInfo],
    tables: Sequence[PerfTable],
    available: dict[str, int],
    eco: Economy,
    warm: bool = False,
) -> tuple[Fleet, TickResult]:
    """Apply the target, route and serve the tick's arrivals, and account for it.

    `prices[v]` is variant v's GPU price [USD per GPU-hour] in this tick."""
    fleet = apply_target(fleet, target, variants, available, tick, warm)
    nv = len(variants)
    ready = tuple(fleet.ready(v, tick) for v in range(nv))
    existing = tuple(fleet.existing(v) for v in range(nv))
    index = {info.name: v for v, info in enumerate(variants)}
    serving = [index[name] for name in target.serving if name in index]
    weights = [0.0] * nv
    for v in serving:
        if ready[v] > 0:
            mu = tables[v].max_rps[scale] if target.routing == "capacity" else 1.0
            weights[v] = ready[v] * mu
    total_w = sum(weights)
    routed = [0.0] * nv
    if total_w > 0:
        for v in range(nv):
            routed[v] = arrivals * weights[v] / total_w
    elif serving:
        routed[serving[0]] = arrivals  # nothing Ready: the requests wait (and time out)
    served: list[Served | None] = []
    queues: list[float] = []
    in_slo = cost = value = 0.0
    gpus = 0
    hours = eco.tick_s / 3600.0
    for v, info in enumerate(variants):
        s: Served | None = None
        if ready[v] > 0 or routed[v] > 0 or fleet.queue[v] > 0:
            s = serve(tables[v], scale, ready[v], routed[v], fleet.queue[v], eco)
            in_slo += s.in_slo
            value += (
                value_per_hour_usd(
                    s.in_slo / eco.tick_s, eco.usd_per_1k_per_point, info.quality, eco.calibration
                )
                * hours
            )
        served.append(s)
        queues.append(s.queue_end if s else 0.0)
        cost += hourly_cost_usd(existing[v], info.gpus, prices[v]) * hours
        gpus += existing[v] * info.gpus
    result = TickResult(arrivals, in_slo, cost, value, gpus, existing, ready, tuple(served))
    return Fleet(fleet.ready_at, tuple(queues)), result


def startup_ticks(startup_s: float, tick_s: float) -> int:
    """Whole ticks until a replica created at a tick's start is Ready: ceil(startup / tick)."""
    return max(0, math.ceil(startup_s / tick_s - 1e-9))
