"""The policies a replay compares, each behind one small interface: decide(tick) -> target.

A policy is frozen configuration; what it remembers between ticks travels in
`FleetTarget.memory` and comes back as `TickInput.memory`, so every policy is a pure function
of its inputs. What the baselines run, as teams run them today:

- `static:<variant>+hpa`: one variant, scaled by the Kubernetes HPA on utilization = request
  rate per replica / the variant's declared capacity at the SLO, target = spec
  targetUtilization (what KServe users run); `hpa_step` is the HPA's rule. Every HPA-based
  baseline takes the spec's traffic block as its HPA would be written: min/max replicas and
  scaleDownStabilizationSeconds (behavior.scaleDown.stabilizationWindowSeconds; the spec's
  default, 300 s, is the HPA's).
- `keda-queue`: the best-quality variant, scaled by KEDA on vllm:num_requests_waiting with an
  average-value target of 5 per replica (vLLM production-stack's default), through the HPA.
- `wva-saturation`: llm-d workload-variant-autoscaler's saturation analyzer (`wva_targets`)
  on the variants a WVA user deploys (`wva_variants`): the cheapest per unit of capacity
  and the best quality, each pre-deployed at its minimum replicas, traffic balanced by
  capacity; the other variants are not deployed.
- `llmd-slo-keda`: llm-d's SLO-aware KEDA control law (its recommendation since the variant
  autoscaler was deprecated) on the best-quality variant (`LlmdSloKeda`).
The operator's own policy is in operator_policy.py; the hindsight ceiling in oracle.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from paretoscale.api.accelerators import BUILTIN
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.decide.evaluate import evaluate, variant_capacity
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.observe import PromView

HPA_TOLERANCE = 0.1
KEDA_WAITING_PER_REPLICA = 5.0
WVA_KV_THRESHOLD = 0.80
WVA_QUEUE_THRESHOLD = 5.0
WVA_KV_SPARE_TRIGGER = 0.10
WVA_QUEUE_SPARE_TRIGGER = 3.0
LLMD_QUANTILE = 0.90
LLMD_SIGNAL_CAP = 2.0


@dataclass(frozen=True)
class TickInput:
    """What a policy sees at the start of a tick: Prometheus (delayed, noisy), the replicas
    the Kubernetes API shows per variant (spec order), live GPU prices, its own memory."""

    tick: int
    now_s: float
    view: PromView
    existing: tuple[int, ...]
    ready: tuple[int, ...]
    prices: Mapping[str, float]
    memory: object
    # GPUs of each type the cluster has now (spec.gpus, then the inventory events), as
    # Kubernetes shows it in the nodes' allocatable GPUs
    available: Mapping[str, int] = field(default_factory=dict)


class Policy(Protocol):
    """One way to run a ModelDeployment's fleet."""

    @property
    def name(self) -> str: ...

    @property
    def needs_histograms(self) -> bool: ...

    def decide(self, tick: TickInput) -> FleetTarget: ...


def bounds(spec: ModelDeploymentSpec, variant: VariantSpec, floor: int = 0) -> tuple[int, int]:
    """(min, max) replicas of a variant: its own bounds, else spec.traffic's; min >= floor."""
    lo = variant.min_replicas if variant.min_replicas is not None else spec.traffic.min_replicas
    hi = variant.max_replicas if variant.max_replicas is not None else spec.traffic.max_replicas
    return max(lo, floor), max(hi, floor)


def declared_capacity_rps(spec: ModelDeploymentSpec, variant: VariantSpec) -> float:
    """The variant's capacity per replica at the SLO from its declared profile (else the
    performance-model prior, else the FLOP estimate), as decide/evaluate.py computes it,
    without live correction [req/s]."""
    slo = spec.slo
    cap, _ = variant_capacity(
        variant, slo.seconds, None, None, slo.latency, None, BUILTIN, slo.percentile
    )
    return cap


def best_quality_variant(spec: ModelDeploymentSpec, rate_rps: float) -> str:
    """The highest-quality variant; ties go to the lower hourly cost at rate_rps."""
    evals = {e.name: e for e in evaluate(spec, rate_rps, {}, {})}
    return min(spec.variants, key=lambda v: (-v.quality, evals[v.name].hourly_cost_usd)).name


def cheapest_feasible_variant(spec: ModelDeploymentSpec, peak_rps: float) -> str:
    """The variant with the lowest hourly cost that the declared profiles say can serve
    peak_rps within the SLO and the inventory; the best-quality one if none can."""
    feasible = [e for e in evaluate(spec, peak_rps, {}, {}) if e.feasible]
    if not feasible:
        return best_quality_variant(spec, peak_rps)
    return min(feasible, key=lambda e: (e.hourly_cost_usd, -e.quality, e.name)).name


@dataclass(frozen=True)
class HpaMemory:
    """The HPA's replica count and its recent recommendations (time [s], replicas)."""

    replicas: int
    recommendations: tuple[tuple[float, int], ...] = ()


def hpa_step(
    current: int,
    ratio: float,
    lo: int,
    hi: int,
    memory: HpaMemory | None,
    now_s: float,
    window_s: float,
) -> HpaMemory:
    """The HPA's rule: raw = ceil(current x ratio) (ratio = metric / target), kept at current
    when |ratio - 1| <= 0.1, bounded to [lo, hi]; up at once, down only to the highest raw
    recommendation of the last window_s (scale-down stabilization)."""
    if current <= 0:
        raw = lo
    elif abs(ratio - 1.0) <= HPA_TOLERANCE:
        raw = current
    else:
        raw = math.ceil(current * ratio - 1e-9)
    raw = min(max(raw, lo), hi)
    past = memory.recommendations if memory else ()
    recent = (*((t, r) for t, r in past if t > now_s - window_s), (now_s, raw))
    new = raw if raw > current else min(current, max(r for _, r in recent))
    return HpaMemory(new, recent)


def _window(spec: ModelDeploymentSpec) -> float:
    """The HPA's scale-down stabilization window: the spec's."""
    return float(spec.traffic.scale_down_stabilization_seconds)


@dataclass(frozen=True)
class StaticHpa:
    """One variant, scaled by the HPA on request rate per replica vs its declared capacity."""

    spec: ModelDeploymentSpec
    variant: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"static:{self.variant}+hpa"

    @property
    def needs_histograms(self) -> bool:
        return False

    def decide(self, tick: TickInput) -> FleetTarget:
        v = next(v for v in self.spec.variants if v.name == self.variant)
        lo, hi = bounds(self.spec, v, floor=1)
        memory = tick.memory if isinstance(tick.memory, HpaMemory) else None
        target_rps = declared_capacity_rps(self.spec, v) * self.spec.traffic.target_utilization
        rate = tick.view.rate_rps()
        if memory is None:  # the first tick: sized for the load the metrics show
            need = math.ceil(rate / target_rps - 1e-9) if target_rps > 0 else hi
            memory = HpaMemory(min(max(need, lo), hi))
        current = memory.replicas
        ratio = rate / (current * target_rps) if current > 0 and target_rps > 0 else 1.0
        new = hpa_step(current, ratio, lo, hi, memory, tick.now_s, _window(self.spec))
        return FleetTarget({self.variant: new.replicas}, (self.variant,), "pods", new)


@dataclass(frozen=True)
class KedaQueue:
    """One variant, scaled on sum(vllm:num_requests_waiting) / 5 per replica (KEDA -> HPA)."""

    spec: ModelDeploymentSpec
    variant: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"keda-queue:{self.variant}"

    @property
    def needs_histograms(self) -> bool:
        return False

    def decide(self, tick: TickInput) -> FleetTarget:
        index = [v.name for v in self.spec.variants].index(self.variant)
        v = self.spec.variants[index]
        lo, hi = bounds(self.spec, v, floor=1)
        memory = tick.memory if isinstance(tick.memory, HpaMemory) else HpaMemory(lo)
        current = memory.replicas
        waiting = tick.view.waiting_total(index) or 0.0
        ratio = waiting / (current * KEDA_WAITING_PER_REPLICA) if current > 0 else 1.0
        new = hpa_step(current, ratio, lo, hi, memory, tick.now_s, _window(self.spec))
        return FleetTarget({self.variant: new.replicas}, (self.variant,), "pods", new)


@dataclass(frozen=True)
class LlmdSloKeda:
    """llm-d's SLO-aware autoscaling with KEDA, on one variant (the best quality).

    llm-d's signal is s = max(P90 TTFT / TTFT target, P90 TPOT / TPOT target), each P90 a
    histogram_quantile(0.9) over 1-minute bucket rates, clamped at 2.0, an idle pool reading
    0; KEDA's formula asks for ceil(replicas x s), discounted by Ready / existing replicas
    while replicas load (so loading replicas are not asked for again); the HPA applies its
    10% tolerance and the spec's scale-down stabilization (`hpa_step`). Here:
    - a ModelDeployment has one latency objective (spec.slo: e2e, ttft or itl at a
      percentile), and the replay records the histogram of that metric only. So s = P90 of
      the SLO metric / slo.seconds: for `ttft` that is llm-d's TTFT term, for `itl` its TPOT
      term (vLLM's inter-token latency is the time per output token), for `e2e` the one
      latency the spec bounds (e2e = TTFT + TPOT x (output - 1), so its ratio lies between
      the two terms'). The quantile is llm-d's 0.90, not the spec's percentile;
    - the histogram is read over the replay's rate window (2 min, Prometheus view delayed
      like every policy's), not llm-d's 1 min with a 45 s average; no dead band beyond the
      HPA's tolerance;
    - no reading (no request finished in the window) with load: replicas held; no load: s = 0.
    """

    spec: ModelDeploymentSpec
    variant: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"llmd-slo-keda:{self.variant}"

    @property
    def needs_histograms(self) -> bool:
        return True

    def decide(self, tick: TickInput) -> FleetTarget:
        index = [v.name for v in self.spec.variants].index(self.variant)
        v = self.spec.variants[index]
        lo, hi = bounds(self.spec, v, floor=1)
        memory = tick.memory if isinstance(tick.memory, HpaMemory) else None
        if memory is None:  # the first tick: sized for the load, like the other HPA policies
            cap = declared_capacity_rps(self.spec, v) * self.spec.traffic.target_utilization
            need = math.ceil(tick.view.rate_rps() / cap - 1e-9) if cap > 0 else hi
            memory = HpaMemory(min(max(need, lo), hi))
        current = memory.replicas
        ready = tick.ready[index]
        reading = tick.view.latency_reading(index, LLMD_QUANTILE)
        rate = tick.view.rate_rps(index)
        ratio = llmd_ratio(
            None if reading is None else reading[0], self.spec.slo.seconds, rate, ready, current
        )
        new = hpa_step(current, ratio, lo, hi, memory, tick.now_s, _window(self.spec))
        return FleetTarget({self.variant: new.replicas}, (self.variant,), "pods", new)


def llmd_ratio(
    p90_s: float | None, target_s: float, rate_rps: float, ready: int, current: int
) -> float:
    """The HPA ratio of llm-d's SLO-aware law: s = min(p90 / target, 2.0) (0 with no load,
    1 = hold with load but no reading), times Ready / current replicas (the credit for
    replicas still loading), so that ceil(current x ratio) = ceil(Ready x s)."""
    if p90_s is None:
        if rate_rps > 1e-9:
            return 1.0
        s = 0.0
    else:
        s = min(p90_s / target_s, LLMD_SIGNAL_CAP) if target_s > 0 else LLMD_SIGNAL_CAP
    if current <= 0:
        return 1.0
    return s * min(ready, current) / current


@dataclass(frozen=True)
class WvaVariant:
    """One variant as the saturation analyzer sees it: Ready replicas and their gauges."""

    name: str
    ready: int
    existing: int
    kv_usage: float | None  # max_over_time[1m] per replica
    waiting: float | None
    usd_per_capacity: float  # hourly cost of a replica / its capacity: the cheapness order
    min_replicas: int
    max_replicas: int
    room: bool  # GPUs are free for one more replica


def wva_targets(variants: Sequence[WvaVariant]) -> dict[str, int]:
    """llm-d WVA's saturation rule (capacity-only mode).

    A replica is saturated at KV >= 0.80 or >= 5 waiting. Over non-saturated Ready replicas:
    spare_kv = mean(0.80 - kv), spare_queue = mean(5 - waiting). Scale up when there is none,
    or spare_kv < 0.10 or spare_queue < 3: the cheapest variant (USD per unit of capacity;
    name breaks ties) with room gets Ready + 1, unless replicas are still loading (no cascade).
    Scale down when safe: >= 2 non-saturated replicas and the load spread over one fewer
    keeps spare_kv >= 0.10 and spare_queue >= 3: the most expensive variant above its minimum
    gets Ready - 1. Others keep their replicas.
    """
    targets = {v.name: max(v.existing, v.min_replicas) for v in variants}
    measured = [v for v in variants if v.ready > 0 and v.kv_usage is not None]
    if not measured:
        return targets
    calm = [
        v
        for v in measured
        if (v.kv_usage or 0.0) < WVA_KV_THRESHOLD and (v.waiting or 0.0) < WVA_QUEUE_THRESHOLD
    ]
    n_calm = sum(v.ready for v in calm)
    kv_load = sum((v.kv_usage or 0.0) * v.ready for v in calm)
    queue_load = sum((v.waiting or 0.0) * v.ready for v in calm)
    if n_calm == 0:
        scale_up = True
    else:
        spare_kv = WVA_KV_THRESHOLD - kv_load / n_calm
        spare_queue = WVA_QUEUE_THRESHOLD - queue_load / n_calm
        scale_up = spare_kv < WVA_KV_SPARE_TRIGGER or spare_queue < WVA_QUEUE_SPARE_TRIGGER
    loading = any(v.existing > v.ready for v in variants)
    if scale_up:
        if loading:
            return targets
        grow = [v for v in variants if v.room and v.existing < v.max_replicas]
        if grow:
            pick = min(grow, key=lambda v: (v.usd_per_capacity, v.name))
            targets[pick.name] = pick.ready + 1
        return targets
    if n_calm >= 2:
        after_kv = WVA_KV_THRESHOLD - kv_load / (n_calm - 1)
        after_queue = WVA_QUEUE_THRESHOLD - queue_load / (n_calm - 1)
        if after_kv >= WVA_KV_SPARE_TRIGGER and after_queue >= WVA_QUEUE_SPARE_TRIGGER:
            shrink = [v for v in variants if v.ready > v.min_replicas and v.ready == v.existing]
            if shrink:
                pick = max(shrink, key=lambda v: (v.usd_per_capacity, v.name))
                targets[pick.name] = pick.ready - 1
    return targets


def usd_per_capacity(spec: ModelDeploymentSpec) -> dict[str, float]:
    """USD per hour per req/s of declared capacity, per variant (spec prices): WVA's
    cheapness order."""
    prices = {g.type: float(g.usd_per_hour) for g in spec.gpus}
    return {
        v.name: v.gpu.count * prices[v.gpu.type] / max(declared_capacity_rps(spec, v), 1e-9)
        for v in spec.variants
    }


def wva_variants(spec: ModelDeploymentSpec, rate_rps: float) -> tuple[str, ...]:
    """The variants a WVA user deploys, in spec order: the cheapest per unit of capacity
    (name breaks ties) and the best quality (`best_quality_variant`); one when they agree."""
    order = usd_per_capacity(spec)
    cheapest = min(spec.variants, key=lambda v: (order[v.name], v.name)).name
    best = best_quality_variant(spec, rate_rps)
    return tuple(v.name for v in spec.variants if v.name in (cheapest, best))


@dataclass(frozen=True)
class WvaSaturation:
    """The variants a WVA user deploys (`wva_variants`, chosen from the first tick's rate
    unless given), pre-deployed at their minimum; replicas moved by `wva_targets`; no
    quality term; the other variants stay at 0."""

    spec: ModelDeploymentSpec
    label: str = "wva-saturation"
    deployed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.label

    @property
    def needs_histograms(self) -> bool:
        return False

    @cached_property
    def _cost_order(self) -> dict[str, float]:
        return usd_per_capacity(self.spec)

    def decide(self, tick: TickInput) -> FleetTarget:
        spec = self.spec
        cost_order = self._cost_order
        if tick.memory is None:  # pre-deployed at their minimum, the cheapest sized for the load
            names = self.deployed or wva_variants(spec, tick.view.rate_rps())
            mine = [v for v in spec.variants if v.name in names]
            first = {v.name: bounds(spec, v)[0] for v in mine}
            cheapest = min(mine, key=lambda v: (cost_order[v.name], v.name))
            cap = declared_capacity_rps(spec, cheapest) * spec.traffic.target_utilization
            lo, hi = bounds(spec, cheapest)
            need = math.ceil(tick.view.rate_rps() / cap - 1e-9) if cap > 0 else hi
            first[cheapest.name] = min(max(need, lo), hi)
            return FleetTarget(first, names, "capacity", names)
        names = tick.memory if isinstance(tick.memory, tuple) else self.deployed
        used: dict[str, int] = {}
        for v, n in zip(spec.variants, tick.existing, strict=True):
            used[v.gpu.type] = used.get(v.gpu.type, 0) + n * v.gpu.count
        inventory = {g.type: g.available for g in spec.gpus}
        rows = []
        for i, v in enumerate(spec.variants):
            if v.name not in names:
                continue
            lo, hi = bounds(spec, v)
            rows.append(
                WvaVariant(
                    v.name,
                    tick.ready[i],
                    tick.existing[i],
                    tick.view.gauge_max(i, "kv"),
                    tick.view.gauge_max(i, "waiting"),
                    cost_order[v.name],
                    lo,
                    hi,
                    used[v.gpu.type] + v.gpu.count <= inventory[v.gpu.type],
                )
            )
        return FleetTarget(wva_targets(rows), names, "capacity", names)
