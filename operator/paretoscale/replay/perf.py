"""What one replica of a variant delivers at a load, tabulated from the simulator's model.

A thin adapter over `paretoscale.sim` (the same performance model as `paretoscale sim`, not a
copy): the variant's `vllm serve` argv (api/vllm.py, as actuate renders it) is parsed by
sim/vllm_args.py into a `ReplicaModel` (sim/perfmodel.py) with the reality speed factor, and
`steady_state`
(sim/steady.py) gives the operating point at each per-replica rate. The replay runs for days
of 30 s ticks, so everything a tick needs is tabulated once per variant:

- load grid: x = rate / max_rps in [0, X_MAX], uniform in u = -ln(1 - x) (dense near the
  limit, where latency rises fastest); one row per token scale s (prompt and output lengths
  of the pool multiplied by s), max_rps(s) the replica's throughput limit;
- latency distribution at the SLO metric: the token pool's request lengths, cut into length
  classes, mixed as sim/mixture.py does (the operator's prior reads percentiles the same way);
- within-SLO share: share(x) = min(1, F(slo_s) / (percentile / 100)): a replica whose p-th
  percentile meets the bound serves all its requests within the SLO (the objective lets
  100 - p % be slower); past that, the share falls with F;
- per replica: KV-cache usage, waiting requests (Little: rate x mean queue wait), running
  sequences (the decode batch), and F at vLLM's histogram bucket edges of the SLO metric
  (for the Prometheus view, observe.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.api.vllm import vllm_argv
from paretoscale.errors import SpecError
from paretoscale.replay.demand import TokenPool
from paretoscale.replay.traces import FloatArray
from paretoscale.sim.mixture import LengthClasses, class_quantiles, mixture_cdf, mixture_quantile
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.steady import steady_state
from paretoscale.sim.vllm_args import VllmArgsError, parse_vllm_args

X_MAX = 0.995
GRID_POINTS = 72
GRID_STEP_U = -math.log1p(-X_MAX) / (GRID_POINTS - 1)
# vLLM 0.33 histogram bucket edges (vllm/v1/metrics/buckets.py), by SLO metric.
BUCKETS_S = {
    "ttft": (
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
    ),
    "itl": (
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0, 20.0, 40.0, 80.0,
    ),
    "e2e": (
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
        120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
    ),
}  # fmt: skip


def load_grid() -> FloatArray:
    """x values of the table: x_i = 1 - exp(-u_i), u uniform on [0, -ln(1 - X_MAX)]."""
    u = np.linspace(0.0, -math.log1p(-X_MAX), GRID_POINTS)
    out: FloatArray = -np.expm1(-u)
    return out


@dataclass(frozen=True)
class PerfTable:
    """One replica of one variant, tabulated on (token scale, load fraction). See module doc.

    Rows are Python lists (fast scalar lookups in the tick loop), indexed [scale][grid]."""

    variant: str
    metric: str
    slo_s: float
    percentile: float
    scales: tuple[float, ...]
    max_rps: tuple[float, ...]  # per scale: the replica's throughput limit [req/s]
    slo_share: tuple[tuple[float, ...], ...]
    latency_pct_s: tuple[tuple[float, ...], ...]  # latency at the SLO percentile [s]
    kv_usage: tuple[tuple[float, ...], ...]
    waiting: tuple[tuple[float, ...], ...]  # mean waiting requests per replica
    running: tuple[tuple[float, ...], ...]
    bucket_cdf: tuple[tuple[tuple[float, ...], ...], ...]  # [scale][grid][edge]
    limit_latency_s: tuple[float, ...]  # per scale: percentile latency at the limit, no wait
    limit_share: tuple[float, ...]  # per scale: within-SLO share at the limit, no wait

    def position(self, x: float) -> tuple[int, float]:
        """Grid cell and weight for load fraction x: u = -ln(1 - x) on a uniform u-grid."""
        if x <= 0.0:
            return 0, 0.0
        if x >= X_MAX:
            return GRID_POINTS - 2, 1.0
        pos = -math.log1p(-x) / GRID_STEP_U
        i = min(int(pos), GRID_POINTS - 2)
        return i, pos - i

    def at(self, row: Sequence[float], i: int, w: float) -> float:
        return row[i] + (row[i + 1] - row[i]) * w


def replica_model(spec: ModelDeploymentSpec, variant: VariantSpec, speed: float) -> ReplicaModel:
    """The simulator's model of one replica of `variant`, from its rendered argv."""
    argv = vllm_argv(variant, spec.model)
    try:
        return ReplicaModel.from_vllm_args(parse_vllm_args(argv), variant.gpu.type, speed)
    except (VllmArgsError, ValueError) as e:  # DoesNotFit, UnsupportedOnGpu are ValueErrors
        raise SpecError(
            f"variant {variant.name}",
            [f"the simulator cannot run `vllm serve {' '.join(argv)}`: {e}"],
        ) from None


def build_table(
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    pool: TokenPool,
    scales: Sequence[float] = (1.0,),
    speed: float = 1.0,
) -> PerfTable:
    """Tabulate one replica of `variant` at reality speed `speed` (see the module docstring)."""
    model = replica_model(spec, variant, speed)
    metric = spec.slo.latency
    classes = LengthClasses.of(pool.prompt_tokens, pool.output_tokens, metric)
    p_mean, o_mean = pool.prompt_mean, pool.output_mean
    edges = BUCKETS_S[metric]
    pct = spec.slo.percentile
    need = pct / 100.0
    grid = load_grid()
    rows: dict[str, list[list[float]]] = {k: [] for k in ("share", "lat", "kv", "wait", "run")}
    cdf_rows: list[tuple[tuple[float, ...], ...]] = []
    max_rps, limit_lat, limit_share = [], [], []
    for s in scales:
        prompt, output = p_mean * s, max(o_mean * s, 1.0)
        mu = steady_state(model, 0.0, prompt, output).max_requests_per_s
        max_rps.append(mu)
        share, lat, kv, wait, run, cdfs = [], [], [], [], [], []
        for x in grid:
            rate = max(x, 1e-4) * mu
            st = steady_state(model, rate, prompt, output)
            q = class_quantiles(st, metric, classes, s, prompt)
            f_slo = float(mixture_cdf(q, classes.weight, [spec.slo.seconds])[0])
            share.append(min(1.0, f_slo / need))
            lat.append(mixture_quantile(q, classes.weight, need))
            kv.append(st.kv_cache_usage)
            wait.append(rate * st.queue_wait_s if math.isfinite(st.queue_wait_s) else 0.0)
            run.append(st.batch_size)
            cdfs.append(tuple(float(v) for v in mixture_cdf(q, classes.weight, edges)))
        rows["share"].append(share)
        rows["lat"].append(lat)
        rows["kv"].append(kv)
        rows["wait"].append(wait)
        rows["run"].append(run)
        cdf_rows.append(tuple(cdfs))
        at_limit = steady_state(model, mu * 1.0001, prompt, output)
        q = class_quantiles(at_limit, metric, classes, s, prompt)
        limit_lat.append(mixture_quantile(q, classes.weight, need))
        f_slo = float(mixture_cdf(q, classes.weight, [spec.slo.seconds])[0])
        limit_share.append(min(1.0, f_slo / need))

    def frozen(key: str) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(r) for r in rows[key])

    return PerfTable(
        variant=variant.name, metric=metric, slo_s=spec.slo.seconds, percentile=pct,
        scales=tuple(scales), max_rps=tuple(max_rps), slo_share=frozen("share"),
        latency_pct_s=frozen("lat"), kv_usage=frozen("kv"), waiting=frozen("wait"),
        running=frozen("run"), bucket_cdf=tuple(cdf_rows), limit_latency_s=tuple(limit_lat),
        limit_share=tuple(limit_share),
    )  # fmt: skip


def token_scales(prompt_mean: FloatArray, output_mean: FloatArray, pool: TokenPool) -> FloatArray:
    """Token scale of each tick: its mean prompt + output tokens over the pool's [ratio]."""
    out: FloatArray = (prompt_mean + output_mean) / (pool.prompt_mean + pool.output_mean)
    return out


def scale_grid(per_tick: FloatArray, step: float = 0.1) -> tuple[float, ...]:
    """Log-spaced scales covering the ticks' range, `step` apart in ln (1.0 alone when the
    range is within +-3%). Ticks use the nearest (scale_index)."""
    lo = float(np.clip(per_tick.min(), 0.25, 4.0)) if len(per_tick) else 1.0
    hi = float(np.clip(per_tick.max(), 0.25, 4.0)) if len(per_tick) else 1.0
    if lo > 0.97 and hi < 1.03:
        return (1.0,)
    a, b = math.floor(math.log(lo) / step), math.ceil(math.log(hi) / step)
    return tuple(math.exp(k * step) for k in range(a, b + 1))


def scale_index(per_tick: FloatArray, scales: Sequence[float]) -> list[int]:
    """The nearest scale (in ln) for each tick."""
    logs = np.log(np.asarray(scales))
    idx = np.abs(np.log(np.clip(per_tick, 1e-6, None))[:, None] - logs[None, :]).argmin(axis=1)
    return [int(i) for i in idx]
