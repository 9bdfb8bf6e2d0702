"""A replay: one scenario (spec, demand, prices, reality) and the policies run through it.

`build_scenario` does the expensive, shared part once (the perf tables of every variant at
its reality speed, prices per tick); `run_policy` runs one policy tick by tick through the
fleet (fleet.py) with its own Prometheus view (observe.py); `run_oracle` computes the
hindsight ceiling (oracle.py). Deterministic: the demand is drawn once from the seed, and
each policy's observation noise from (seed, policy name).

Inventory events (`Scenario.inventory`: from tick k on, N GPUs of a type exist): new
replicas get only the GPUs left, and replicas beyond N are evicted at once (`evict`: GPUs
reclaimed, as spot capacity is); the oracle is bounded by the same N in each tick.

Per tick, each run also records the latency at the SLO percentile relative to the SLO
(`PolicyRun.latency_vs_slo`, `tick_latency_s`), for report.py's p95LatencyVsSlo.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import spec_calibration
from paretoscale.replay.demand import Demand
from paretoscale.replay.fleet import (
    Economy,
    Fleet,
    FleetTarget,
    Served,
    VariantInfo,
    startup_ticks,
    step,
)
from paretoscale.replay.observe import PromView, Scrapes
from paretoscale.replay.operator_policy import OperatorMemory
from paretoscale.replay.oracle import oracle_plan
from paretoscale.replay.perf import (
    BUCKETS_S,
    PerfTable,
    build_table,
    scale_grid,
    scale_index,
    token_scales,
)
from paretoscale.replay.policies import Policy, TickInput, bounds
from paretoscale.replay.traces import FloatArray, PriceSeries

Progress = Callable[[int], None]
TableCache = MutableMapping[tuple[object, ...], PerfTable]


@dataclass(frozen=True)
class Scenario:
    """Everything every policy of one replay shares."""

    spec: ModelDeploymentSpec
    demand: Demand
    variants: tuple[VariantInfo, ...]
    tables: tuple[PerfTable, ...]  # reality: the perfmodel at each variant's reality speed
    scale_idx: tuple[int, ...]  # per tick: the token scale row of the tables
    prices: tuple[FloatArray, ...]  # per variant: USD per GPU-hour in each tick
    prices_by_gpu: Mapping[str, FloatArray]
    available: Mapping[str, int]
    eco: Economy
    delay_ticks: int
    window_ticks: int
    seed: int
    inventory: tuple[tuple[int, str, int], ...] = ()  # (from tick, GPU type, GPUs available)

    @property
    def ticks(self) -> int:
        return self.demand.ticks

    def available_at(self, gpu_type: str) -> FloatArray:
        """GPUs of `gpu_type` available in each tick: spec.gpus, then the inventory events."""
        out = np.full(self.ticks, float(self.available.get(gpu_type, 0)))
        for k, g, n in sorted(self.inventory):
            if g == gpu_type:
                out[max(0, k) :] = float(n)
        return out


@dataclass(frozen=True)
class PolicyRun:
    """What one policy did, per tick."""

    name: str
    arrivals: FloatArray
    in_slo: FloatArray
    cost_usd: FloatArray
    value_usd: FloatArray
    gpus: FloatArray
    replicas: np.ndarray  # [tick, variant] replicas that exist (loading included)
    primary: np.ndarray  # [tick] variant that got the most traffic (-1: none)
    switches: int
    notes: tuple[str, ...] = ()
    latency_vs_slo: FloatArray | None = None  # per tick (tick_latency_s / SLO); NaN: no load


def build_scenario(
    spec: ModelDeploymentSpec,
    demand: Demand,
    prices: PriceSeries | None,
    reality_speed: Mapping[str, float],
    seed: int,
    delay_s: float = 30.0,
    window_s: float = 120.0,
    cache: TableCache | None = None,
) -> Scenario:
    """Tabulate every variant at its reality speed (perf.py) and lay prices out per tick."""
    tick_s = demand.tick_s
    per_tick = token_scales(demand.prompt_mean, demand.output_mean, demand.tokens)
    scales = scale_grid(per_tick)
    tables = []
    for v in spec.variants:
        speed = reality_speed.get(v.name, 1.0)
        key = (spec.model_dump_json(), v.name, speed, scales, id(demand.tokens))
        table = cache.get(key) if cache is not None else None
        if table is None:
            table = build_table(spec, v, demand.tokens, scales, speed)
            if cache is not None:
                cache[key] = table
        tables.append(table)
    times = np.arange(demand.ticks) * tick_s
    by_gpu: dict[str, FloatArray] = {}
    for g in spec.gpus:
        fallback = float(g.usd_per_hour)
        if prices is None or g.type not in prices.times_s:
            by_gpu[g.type] = np.full(demand.ticks, fallback)
        else:
            by_gpu[g.type] = np.array([prices.at(g.type, float(t), fallback) for t in times])
    variants = tuple(
        VariantInfo(
            v.name, v.gpu.type, v.gpu.count, v.quality, startup_ticks(v.startup_seconds, tick_s)
        )
        for v in spec.variants
    )
    eco = Economy(
        tick_s=tick_s,
        usd_per_1k_per_point=float(spec.value.per_quality_point),
        calibration=spec_calibration(spec),
        slo_s=spec.slo.seconds,
        queue_slack_applies=spec.slo.latency in ("e2e", "ttft"),
    )
    return Scenario(
        spec=spec,
        demand=demand,
        variants=variants,
        tables=tuple(tables),
        scale_idx=tuple(scale_index(per_tick, scales)),
        prices=tuple(by_gpu[v.gpu.type] for v in spec.variants),
        prices_by_gpu=by_gpu,
        available={g.type: g.available for g in spec.gpus},
        eco=eco,
        delay_ticks=max(0, round(delay_s / tick_s)),
        window_ticks=max(1, round(window_s / tick_s)),
        seed=seed,
    )


def run_policy(sc: Scenario, policy: Policy, progress: Progress | None = None) -> PolicyRun:
    """Run one policy through the scenario, tick by tick (see the module docstring)."""
    ticks, nv = sc.ticks, len(sc.variants)
    d = sc.demand
    dt = d.tick_s
    seed = zlib.crc32(f"{sc.seed}:{policy.name}".encode())
    scrapes = Scrapes(ticks, nv, BUCKETS_S[sc.spec.slo.latency], policy.needs_histograms, seed)
    tokens = (d.prompt_mean + d.output_mean).tolist()
    prompts = d.prompt_mean.tolist()
    arrivals = d.arrivals.tolist()
    prices_v = [p.tolist() for p in sc.prices]
    gpu_types = list(sc.prices_by_gpu)
    prices_g = [sc.prices_by_gpu[g].tolist() for g in gpu_types]
    prior = arrivals[0] / dt if ticks else 0.0
    available = dict(sc.available)
    events: dict[int, list[tuple[str, int]]] = {}
    for at, g, n in sc.inventory:
        events.setdefault(max(0, at), []).append((g, n))
    latency = np.full(ticks, np.nan)
    in_slo, cost, value, gpus = (np.zeros(ticks) for _ in range(4))
    replicas = np.zeros((ticks, nv), dtype=np.int64)
    primary = np.full(ticks, -1, dtype=np.int64)
    fleet = Fleet.empty(nv)
    memory: object = None
    existing = ready = tuple(0 for _ in range(nv))
    for k in range(ticks):
        view = PromView(scrapes, k, dt, sc.delay_ticks, sc.window_ticks, prior)
        live = {g: prices_g[j][k] for j, g in enumerate(gpu_types)}
        for g, n in events.get(k, ()):
            available[g] = n
        target: FleetTarget = policy.decide(
            TickInput(k, k * dt, view, existing, ready, live, memory, dict(available))
        )
        if k in events:
            target = evict(target, existing, sc.variants, available)
        memory = target.memory
        fleet, res = step(
            fleet, target, k, arrivals[k], sc.scale_idx[k], [p[k] for p in prices_v],
            sc.variants, sc.tables, available, sc.eco, warm=k == 0,
        )  # fmt: skip
        in_slo[k], cost[k], value[k], gpus[k] = res.in_slo, res.cost_usd, res.value_usd, res.gpus
        replicas[k] = res.replicas
        most = lat_sum = lat_n = 0.0
        for v, s in enumerate(res.served):
            if s is None:
                continue
            if s.arrivals > 0:
                lat = tick_latency_s(sc.tables[v], sc.scale_idx[k], s, res.ready[v], sc.eco)
                lat_sum, lat_n = lat_sum + lat * s.arrivals, lat_n + s.arrivals
            scrapes.record(
                k, v, s, res.ready[v], sc.tables[v], sc.scale_idx[k], tokens[k], dt, prompts[k]
            )
            if s.arrivals > most:
                most, primary[k] = s.arrivals, v
        if lat_n > 0:
            latency[k] = lat_sum / lat_n / sc.eco.slo_s
        existing = res.replicas
        ready = tuple(fleet.ready(v, k + 1) for v in range(nv))
        if progress is not None and (k + 1) % 500 == 0:
            progress(500)
    if progress is not None:
        progress(ticks % 500)
    notes: tuple[str, ...] = ()
    if isinstance(memory, OperatorMemory):
        switches = memory.switches
        if memory.rollbacks:
            notes = (f"{memory.rollbacks} rollback(s)",)
        if memory.corrections:
            shown = ", ".join(f"{n} x{f:.2f}" for n, f in sorted(memory.corrections.items()))
            notes = (*notes, f"live capacity factors at the end: {shown}")
        f = memory.tick.forecast
        if f.mape is not None:
            scores = (
                f"; |log(actual/forecast)| at the end: the rate {f.error_rate:.3f}, "
                f"its trend {f.error_trend:.3f}"
                if f.error_rate is not None and f.error_trend is not None
                else ""
            )
            notes = (
                *notes,
                f"rate forecast at the startup horizon: MAPE {f.mape:.1%} over {f.errors} "
                f"forecasts, margin x{f.margin:.2f} at the end{scores}",
            )
    else:
        switches = _changes(primary)
    return PolicyRun(
        policy.name, d.arrivals, in_slo, cost, value, gpus, replicas, primary, switches, notes,
        latency,
    )  # fmt: skip


def evict(
    target: FleetTarget,
    existing: Sequence[int],
    variants: Sequence[VariantInfo],
    available: Mapping[str, int],
) -> FleetTarget:
    """The target with replicas removed where the existing ones hold more GPUs of a type
    than `available`: from variants the target does not serve first, then from the last in
    spec order; a variant keeps min(target, existing) otherwise (fleet.apply_target removes
    loading replicas, then the newest)."""
    want = {
        v.name: min(target.replicas.get(v.name, 0), existing[i]) for i, v in enumerate(variants)
    }
    out = dict(target.replicas)
    for g in {v.gpu_type for v in variants}:
        used = sum(want[v.name] * v.gpus for v in variants if v.gpu_type == g)
        order = sorted(
            (i for i, v in enumerate(variants) if v.gpu_type == g),
            key=lambda i: (variants[i].name in target.serving, -i),
        )
        for i in order:
            v = variants[i]
            while used > available.get(g, 0) and want[v.name] > 0:
                want[v.name] -= 1
                used -= v.gpus
                out[v.name] = want[v.name]
    return dataclasses.replace(target, replicas=out)


def tick_latency_s(table: PerfTable, scale: int, s: Served, ready: int, eco: Economy) -> float:
    """Latency at the SLO percentile of one variant's requests in one tick [s]: the perf
    table's at the tick's load when nothing queued; else the latency at the throughput limit
    plus the mean queue wait (mean of the queue at the tick's start and end / capacity), the
    wait left out for itl SLOs (waiting does not delay tokens); infinite with nothing Ready."""
    mu = table.max_rps[scale]
    queue_start = s.served + s.queue_end + s.dropped - s.arrivals
    if queue_start <= 1e-9 and s.queue_end <= 1e-9 and s.dropped <= 0 and s.load_x < 1.0:
        i, w = table.position(s.load_x)
        return table.at(table.latency_pct_s[scale], i, w)
    if ready <= 0 or mu <= 0:
        return math.inf
    wait = (queue_start + s.queue_end) / 2.0 / (ready * mu) if eco.queue_slack_applies else 0.0
    return table.limit_latency_s[scale] + wait


def _changes(primary: np.ndarray) -> int:
    """How often the variant that got the most traffic changed (ticks without traffic skipped)."""
    seen = primary[primary >= 0]
    return int(np.count_nonzero(seen[1:] != seen[:-1])) if len(seen) > 1 else 0


def run_oracle(sc: Scenario, name: str = "oracle") -> PolicyRun:
    """The hindsight ceiling (oracle.py) as a PolicyRun."""
    spec = sc.spec
    best_v, best_n, in_slo, cost, value = oracle_plan(
        sc.demand.arrivals,
        sc.scale_idx,
        sc.prices,
        sc.variants,
        sc.tables,
        [bounds(spec, v) for v in spec.variants],
        dict(sc.available),
        sc.eco,
        {g: sc.available_at(g) for g in sc.available} if sc.inventory else None,
    )
    ticks, nv = sc.ticks, len(sc.variants)
    replicas = np.zeros((ticks, nv), dtype=np.int64)
    replicas[np.arange(ticks), best_v] = best_n
    gpus = best_n * np.array([sc.variants[v].gpus for v in range(nv)])[best_v]
    primary = np.where(best_n > 0, best_v, -1)
    latency = np.full(ticks, np.nan)
    for k in range(ticks):
        a, v, n = float(sc.demand.arrivals[k]), int(best_v[k]), int(best_n[k])
        if a <= 0:
            continue
        table, scale = sc.tables[v], sc.scale_idx[k]
        x = a / sc.demand.tick_s / (n * table.max_rps[scale]) if n > 0 else math.inf
        if x < 1.0:
            i, w = table.position(x)
            latency[k] = table.at(table.latency_pct_s[scale], i, w) / sc.eco.slo_s
        else:
            latency[k] = math.inf if n <= 0 else table.limit_latency_s[scale] / sc.eco.slo_s
    return PolicyRun(
        name, sc.demand.arrivals, in_slo, cost, value, gpus.astype(np.float64), replicas,
        primary, _changes(primary), ("no startup, no switching cost, best choice per tick",),
        latency,
    )  # fmt: skip
