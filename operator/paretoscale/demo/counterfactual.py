"""The day without paretoscale: the best-quality variant all day, scaled by the Kubernetes HPA
as teams run it today, replayed by `paretoscale replay` (policy `static:best+hpa`) on the
demo's day: the same load shape and peak, token lengths drawn from the same trace, the same
GPU prices (the price cut at noon included). CPU work only, no cluster: a day of 30 s ticks
takes a few seconds.

The replay runs in real day time (the HPA's 300 s scale-down window, startup, 30 s metrics
delay), through the same performance model the simulators run; see docs/replay.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.demo.schedule import DAY_S, DemoDay, PricePlan
from paretoscale.demo.summary import Figures
from paretoscale.replay.demand import TokenPool, demand_from_rates
from paretoscale.replay.inputs import build_policies
from paretoscale.replay.policies import best_quality_variant
from paretoscale.replay.report import summarize
from paretoscale.replay.run import build_scenario, run_policy
from paretoscale.replay.traces import PriceSeries, RateSeries

POLICY = "static:best+hpa"


@dataclass(frozen=True)
class Baseline:
    """What the best-quality variant all day did, per replay tick and in total."""

    figures: Figures
    variant: str
    tick_s: float  # day seconds per tick
    usd_per_hour: tuple[float, ...]  # per tick: what its GPUs cost
    replicas: tuple[int, ...]  # per tick: replicas that existed


def price_series(prices: PricePlan) -> PriceSeries:
    """The plan as the replay's step functions of day time."""
    times = {g: np.array([0.0]) for g in prices.base}
    usd = {g: np.array([float(p)]) for g, p in prices.base.items()}
    times[prices.gpu_type] = np.array([0.0, prices.change_at_day_s])
    usd[prices.gpu_type] = np.array([prices.before, prices.after])
    return PriceSeries(times, usd)


def best_quality_all_day(
    spec: ModelDeploymentSpec,
    day: DemoDay,
    prices: PricePlan,
    tokens: TokenPool,
    seed: int = 1,
    tick_s: float = 30.0,
) -> Baseline:
    """Replay `static:best+hpa` over `day` (its windows in day time) at `prices`."""
    n = len(day.rates_rps)
    series = RateSeries(
        np.array(day.window_start_s, dtype=np.float64),
        np.full(n, day.window_s, dtype=np.float64),
        np.array(day.rates_rps, dtype=np.float64),
    )
    demand = demand_from_rates(series, tick_s, DAY_S, tokens, seed)
    scenario = build_scenario(spec, demand, price_series(prices), {}, seed)
    policy = build_policies([POLICY], spec, day.peak_rps)[0]
    assert not isinstance(policy, str)
    run = run_policy(scenario, policy)
    totals = summarize([run], tick_s)[0]
    variant = best_quality_variant(spec, day.peak_rps)
    quality = next(v.quality for v in spec.variants if v.name == variant)
    return Baseline(
        figures=Figures(
            label=f"{variant} all day, HPA (replay)",
            gpu_cost_usd=totals.gpu_cost_usd,
            gpu_hours=totals.gpu_hours,
            slo_attainment=totals.slo_attainment,
            mean_quality=quality,
            switches=totals.switches,
        ),
        variant=variant,
        tick_s=tick_s,
        usd_per_hour=tuple(float(c) * 3600.0 / tick_s for c in run.cost_usd),
        replicas=tuple(int(r) for r in run.replicas.sum(axis=1)),
    )
