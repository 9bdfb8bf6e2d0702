"""A scenario suite: named replays, one YAML file each (bench/scenarios/), run side by side.

A scenario file names what a replay needs, every path relative to the repository root:

    name: prompt-shift                 # defaults to the file's stem
    description: one line, shown above the scenario's table
    modelDeployment: examples/assistant-llama-8b.yaml   # its first ModelDeployment
    traffic:
      rateSeries: data/traces/servegen_m-large_rate.csv  # window_start_s,rate_rps; or
      # trace: data/traces/AzureLLMInferenceTrace_conv.csv  (per-request, as recorded)
      startHour: 0          # the window of the series to replay (hours from its start) ...
      hours: 24             # ... and its length (default: to the end)
      peakRps: 60           # the window's peak, scaled to (a trace: its peak tick; optional)
      burst: {atHour: 12, minutes: 10, factor: 10}   # optional: arrivals x factor
    tokens:
      source: data/traces/AzureLLMInferenceTrace_conv.csv
      switchTo: data/traces/AzureLLMInferenceTrace_code.csv   # optional, with switchAtHour
      switchAtHour: 12
    prices:                 # optional; without it the spec's usdPerHour
      aws: data/prices/aws_p5.48xlarge_us-east-1_daily.csv
      gpu: H100             # the GPU type the file prices
      gpusPerInstance: 8
      startDate: "2025-06-02"   # calendar day of the replay's hour 0; one replay day = one day
    inventory:              # optional: from atHour on, `available` GPUs of the type exist
    - {atHour: 9, gpu: H100, available: 4}
    quick: {startHour: 8, hours: 2}   # the window `--quick` replays (scenario hours)

Hours count from the replay's start (the window's start). Arrivals are Poisson in each tick
of the rate series (demand.py), the same for every policy. A token switch at hour T: ticks
before T draw prompt and output lengths from `source`, later ones from `switchTo` (the
arrivals are the same); each variant's perf table gets the rows of both token pools
(`switch_tokens`). Prices from the AWS tracker: the day's instance price / gpusPerInstance
from the day's start, day for day (not compressed onto the replay as the CLI's --prices
does), so a real price change falls on its calendar day. Inventory events: see run.py.

Errors name the file and what to change (SpecError).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.errors import SpecError
from paretoscale.replay.demand import Demand, TokenPool, demand_from_rates, demand_from_trace
from paretoscale.replay.inputs import build_policies
from paretoscale.replay.perf import PerfTable
from paretoscale.replay.run import (
    PolicyRun,
    Scenario,
    TableCache,
    build_scenario,
    run_oracle,
    run_policy,
)
from paretoscale.replay.traces import (
    PriceSeries,
    RateSeries,
    load_rate_series,
    load_request_trace,
)
from paretoscale.sim.prices import read_price_series

SUITE_POLICIES = (
    "static:best+hpa",
    "static:cheapest+hpa",
    "keda-queue",
    "llmd-slo-keda",
    "wva-saturation",
    "paretoscale",
    "oracle",
)
TICK_S = 30.0


@dataclass(frozen=True)
class Burst:
    at_hour: float
    minutes: float
    factor: float


@dataclass(frozen=True)
class ScenarioFile:
    """One scenario file, read and checked (see the module docstring)."""

    name: str
    description: str
    model_deployment: str
    rate_series: str | None
    trace: str | None
    start_hour: float
    hours: float | None
    peak_rps: float | None
    burst: Burst | None
    tokens: str
    switch_to: str | None
    switch_at_hour: float | None
    aws_prices: str | None
    prices_gpu: str | None
    gpus_per_instance: float
    price_start: date | None
    inventory: tuple[tuple[float, str, int], ...]
    quick_start_hour: float
    quick_hours: float
    policies: tuple[str, ...]

    def paths(self) -> tuple[str, ...]:
        """Every file the scenario names (repository-relative)."""
        named = (self.model_deployment, self.rate_series, self.trace, self.tokens)
        more = (self.switch_to, self.aws_prices)
        return tuple(p for p in (*named, *more) if p)


def _get(doc: Mapping[str, Any], key: str, source: str, kind: type, default: Any = None) -> Any:
    value = doc.get(key, default)
    if value is None:
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind):
        raise SpecError(source, [f"{key}: expected {kind.__name__}, got {value!r}"])
    return value


def _section(doc: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise SpecError(source, [f"{key}: expected a mapping, got {value!r}"])
    return value


def parse_scenario(text: str, source: str) -> ScenarioFile:
    """A scenario file's text -> ScenarioFile; SpecError(source, ...) on what is wrong."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(source, [f"not YAML: {e}"]) from None
    if not isinstance(doc, dict):
        raise SpecError(source, ["expected a mapping with modelDeployment, traffic, tokens"])
    known = {"name", "description", "modelDeployment", "traffic", "tokens", "prices",
             "inventory", "quick", "policies"}  # fmt: skip
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SpecError(source, [f"unknown key(s) {', '.join(unknown)}; known: {sorted(known)}"])
    md = _get(doc, "modelDeployment", source, str)
    if not md:
        raise SpecError(source, ["modelDeployment: the path of a ModelDeployment YAML"])
    traffic = _section(doc, "traffic", source)
    rate, trace = _get(traffic, "rateSeries", source, str), _get(traffic, "trace", source, str)
    if (rate is None) == (trace is None):
        raise SpecError(source, ["traffic: give one of rateSeries (with peakRps) or trace"])
    peak = _get(traffic, "peakRps", source, float)
    if rate is not None and not (peak and peak > 0):
        raise SpecError(source, ["traffic.peakRps: a rate series needs a peak > 0 req/s"])
    burst = None
    if "burst" in traffic:
        b = _section(traffic, "burst", source)
        burst = Burst(
            _get(b, "atHour", source, float, 0.0),
            _get(b, "minutes", source, float, 10.0),
            _get(b, "factor", source, float, 10.0),
        )
    tokens = _section(doc, "tokens", source)
    token_source = _get(tokens, "source", source, str)
    if not token_source:
        raise SpecError(source, ["tokens.source: a per-request trace to draw lengths from"])
    switch_to = _get(tokens, "switchTo", source, str)
    switch_at = _get(tokens, "switchAtHour", source, float)
    if (switch_to is None) != (switch_at is None):
        raise SpecError(source, ["tokens: switchTo and switchAtHour go together"])
    prices = _section(doc, "prices", source)
    aws = _get(prices, "aws", source, str)
    start = prices.get("startDate")
    if aws is not None:
        if not _get(prices, "gpu", source, str):
            raise SpecError(source, ["prices.gpu: the GPU type the AWS file prices (e.g. H100)"])
        try:
            start = date.fromisoformat(str(start))
        except ValueError:
            raise SpecError(
                source, ["prices.startDate: YYYY-MM-DD of the replay's day 0"]
            ) from None
    events = []
    for i, ev in enumerate(doc.get("inventory") or []):
        if not isinstance(ev, dict) or not {"atHour", "gpu", "available"} <= set(ev):
            raise SpecError(source, [f"inventory[{i}]: expected {{atHour, gpu, available}}"])
        events.append((float(ev["atHour"]), str(ev["gpu"]), int(ev["available"])))
    quick = _section(doc, "quick", source)
    policies = doc.get("policies") or list(SUITE_POLICIES)
    if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
        raise SpecError(source, ["policies: a list of policy names"])
    return ScenarioFile(
        name=_get(doc, "name", source, str) or Path(source).stem,
        description=_get(doc, "description", source, str) or "",
        model_deployment=md,
        rate_series=rate,
        trace=trace,
        start_hour=_get(traffic, "startHour", source, float, 0.0),
        hours=_get(traffic, "hours", source, float),
        peak_rps=peak,
        burst=burst,
        tokens=token_source,
        switch_to=switch_to,
        switch_at_hour=switch_at,
        aws_prices=aws,
        prices_gpu=_get(prices, "gpu", source, str),
        gpus_per_instance=_get(prices, "gpusPerInstance", source, float, 8.0),
        price_start=start if isinstance(start, date) else None,
        inventory=tuple(events),
        quick_start_hour=_get(quick, "startHour", source, float, 0.0),
        quick_hours=_get(quick, "hours", source, float, 2.0),
        policies=tuple(policies),
    )


def load_scenario(path: Path) -> ScenarioFile:
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), [f"cannot read: {e.strerror}"]) from None
    return parse_scenario(text, str(path))


def window(series: RateSeries, start_s: float, duration_s: float | None) -> RateSeries:
    """The windows of a rate series that overlap [start_s, start_s + duration_s), times
    shifted so that start_s is 0 (a window cut at the start keeps its rate)."""
    end = series.start_s + series.window_s
    stop = math.inf if duration_s is None else start_s + duration_s
    keep = (end > start_s) & (series.start_s < stop)
    if keep.sum() < 2:
        raise SpecError("traffic", [f"fewer than two windows from {start_s:g} s on"])
    return RateSeries(series.start_s[keep] - start_s, series.window_s[keep], series.rates_rps[keep])


def concat_tables(a: PerfTable, b: PerfTable) -> PerfTable:
    """One table with a's token-scale rows, then b's (same variant, metric and SLO)."""
    rows = ("scales", "max_rps", "slo_share", "latency_pct_s", "kv_usage", "waiting", "running",
            "bucket_cdf", "limit_latency_s", "limit_share")  # fmt: skip
    return dataclasses.replace(a, **{f: getattr(a, f) + getattr(b, f) for f in rows})


def switch_tokens(a: Scenario, b: Scenario, at_tick: int) -> Scenario:
    """Scenario a until tick at_tick, then b's token lengths: the same arrivals (a's), b's
    per-tick token means, perf rows of b's pool (appended to a's tables)."""
    at = min(max(at_tick, 0), a.ticks)
    da, db = a.demand, b.demand
    demand = Demand(
        da.tick_s,
        da.arrivals,
        np.concatenate([da.prompt_mean[:at], db.prompt_mean[at:]]),
        np.concatenate([da.output_mean[:at], db.output_mean[at:]]),
        da.tokens,
    )
    offset = len(a.tables[0].scales) if a.tables else 0
    return dataclasses.replace(
        a,
        demand=demand,
        tables=tuple(concat_tables(x, y) for x, y in zip(a.tables, b.tables, strict=True)),
        scale_idx=(*a.scale_idx[:at], *(i + offset for i in b.scale_idx[at:])),
    )


def aws_daily_prices(
    path: str, gpu: str, per_instance: float, start: date, offset_s: float
) -> PriceSeries:
    """The AWS tracker's daily instance prices, day for day: a day's price / per_instance
    holds from (day - start) x 86400 - offset_s replay seconds on."""
    points = read_price_series(path)
    times = np.array([(p.day - start).days * 86400.0 - offset_s for p in points])
    usd = np.array([p.usd_per_hour / per_instance for p in points])
    return PriceSeries({gpu: times}, {gpu: usd})


@dataclass(frozen=True)
class Built:
    """A scenario ready to run: the spec, the replay scenario, the nominal peak."""

    file: ScenarioFile
    spec: ModelDeploymentSpec
    scenario: Scenario
    peak_rps: float


def _demand(
    sf: ScenarioFile, root: Path, pool: TokenPool, offset_s: float, duration_s: float | None,
    seed: int,
) -> tuple[Demand, float]:  # fmt: skip
    """The scenario's arrivals from offset_s (scenario seconds) for duration_s; a rate
    series is scaled to the peak of the scenario's whole window, then cut."""
    start_s = sf.start_hour * 3600.0 + offset_s
    if sf.rate_series is not None:
        whole = None if sf.hours is None else sf.hours * 3600.0
        series = window(load_rate_series(str(root / sf.rate_series)), sf.start_hour * 3600, whole)
        series = window(series.scaled_to_peak(sf.peak_rps or 1.0), offset_s, duration_s)
        length = duration_s if duration_s is not None else series.duration_s
        demand = demand_from_rates(series, TICK_S, length, pool, seed)
        return demand, sf.peak_rps or float(demand.rate_rps.max())
    trace = load_request_trace(str(root / (sf.trace or "")))
    length = duration_s if duration_s is not None else trace.duration_s - start_s
    shifted = dataclasses.replace(trace, arrival_s=trace.arrival_s - start_s)
    keep = shifted.arrival_s >= 0
    shifted = dataclasses.replace(
        shifted, arrival_s=shifted.arrival_s[keep], prompt_tokens=shifted.prompt_tokens[keep],
        output_tokens=shifted.output_tokens[keep],
    )  # fmt: skip
    demand = demand_from_trace(shifted, TICK_S, length, pool)
    peak = float(demand.rate_rps.max())
    if sf.peak_rps and peak > 0:
        demand = demand_from_trace(shifted, TICK_S, length, pool, sf.peak_rps / peak)
        peak = sf.peak_rps
    return demand, peak


def _burst(demand: Demand, burst: Burst | None, start_s: float) -> Demand:
    if burst is None:
        return demand
    first = int((burst.at_hour * 3600.0 - start_s) // TICK_S)
    last = first + max(1, round(burst.minutes * 60.0 / TICK_S))
    arrivals = demand.arrivals.copy()
    lo, hi = max(first, 0), min(last, demand.ticks)
    if lo < hi:
        arrivals[lo:hi] = np.rint(arrivals[lo:hi] * burst.factor)
    return dataclasses.replace(demand, arrivals=arrivals)


def build(
    sf: ScenarioFile, root: Path, quick: bool = False, seed: int = 1,
    cache: TableCache | None = None,
) -> Built:  # fmt: skip
    """Read the files a scenario names and build its replay (the whole window, or the
    quick one)."""
    md_path = root / sf.model_deployment
    try:
        text = md_path.read_text()
    except OSError as e:
        raise SpecError(str(md_path), [f"cannot read: {e.strerror}"]) from None
    spec = parse_manifests(text, str(md_path))[0].spec
    offset_h = sf.quick_start_hour if quick else 0.0
    duration = (
        sf.quick_hours * 3600.0 if quick else (None if sf.hours is None else sf.hours * 3600.0)
    )
    if sf.hours is not None and quick:
        duration = min(sf.quick_hours, sf.hours - offset_h) * 3600.0
    pool = TokenPool.of(load_request_trace(str(root / sf.tokens)))
    # the burst, the token switch and the events are in scenario hours (from its start)
    rel = offset_h * 3600.0
    demand, peak = _demand(sf, root, pool, rel, duration, seed)
    demand = _burst(demand, sf.burst, rel)
    prices = None
    if sf.aws_prices and sf.prices_gpu and sf.price_start:
        prices = aws_daily_prices(
            str(root / sf.aws_prices), sf.prices_gpu, sf.gpus_per_instance, sf.price_start,
            (sf.start_hour + offset_h) * 3600.0,
        )  # fmt: skip
    sc = build_scenario(spec, demand, prices, {}, seed, cache=cache)
    if sf.switch_to is not None and sf.switch_at_hour is not None:
        other = TokenPool.of(load_request_trace(str(root / sf.switch_to)))
        demand_b, _ = _demand(sf, root, other, rel, duration, seed)
        demand_b = _burst(demand_b, sf.burst, rel)
        sc_b = build_scenario(spec, demand_b, prices, {}, seed, cache=cache)
        sc = switch_tokens(sc, sc_b, int((sf.switch_at_hour * 3600.0 - rel) // TICK_S))
    if sf.inventory:
        events = tuple(
            sorted((math.floor((h * 3600.0 - rel) / TICK_S), g, n) for h, g, n in sf.inventory)
        )
        sc = dataclasses.replace(sc, inventory=events)
    return Built(sf, spec, sc, peak)


def run(built: Built) -> tuple[list[PolicyRun], PolicyRun]:
    """Every policy of the scenario through it; (runs in the file's order, the oracle)."""
    policies = build_policies(list(built.file.policies), built.spec, built.peak_rps)
    oracle = run_oracle(built.scenario)
    runs = [oracle if isinstance(p, str) else run_policy(built.scenario, p) for p in policies]
    return runs, oracle


def scenario_files(directory: Path) -> list[Path]:
    """The suite's scenario files, sorted by name."""
    return sorted(directory.glob("*.yaml"))


def missing_files(sf: ScenarioFile, root: Path) -> Sequence[str]:
    """The paths a scenario names that do not exist under root."""
    return [p for p in sf.paths() if not (root / p).is_file()]
