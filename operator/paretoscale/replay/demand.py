"""Demand per tick: how many requests arrive in each operator tick and how long they are.

Pure and seeded: the same inputs and seed give the same arrays, and every policy in a run
replays the very same arrivals.

From a rate series (10-minute windows): the rate at a tick is interpolated linearly between
window midpoints (a 10-minute mean is the rate at the middle of its window), then
- `poisson`: arrivals ~ Poisson(rate x tick_s);
- `bursty`: arrivals ~ Poisson(rate x tick_s x G), G ~ Gamma(shape m / (D - 1), scale
  (D - 1) / m), m = rate x tick_s: a negative binomial whose variance is D x mean, D the index
  of dispersion of per-tick counts measured on a per-request trace (`dispersion_index`).
From a per-request trace: arrivals are the trace's own requests counted per tick, optionally
multiplied by a rate factor (counts may then be fractional).

Token lengths: a tick's mean prompt and output lengths are those of its arrivals drawn from a
token pool (a per-request trace): an exact draw of n requests for n <= 64, else the normal
approximation mean +- sd / sqrt(n) (the pool's mean and standard deviation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from paretoscale.replay.traces import FloatArray, RateSeries, RequestTrace

EXACT_DRAW_MAX = 64

# The Azure LLM inference trace 2023, conversation: means used when no token file is given
# (decide/types.DEFAULT_TOKENS_PER_REQUEST = 1155 + 211).
AZURE_CONV_PROMPT_MEAN = 1155.0
AZURE_CONV_OUTPUT_MEAN = 211.0


@dataclass(frozen=True)
class TokenPool:
    """Prompt and output lengths of real requests, drawn from for each tick."""

    prompt_tokens: FloatArray
    output_tokens: FloatArray

    @property
    def prompt_mean(self) -> float:
        return float(self.prompt_tokens.mean())

    @property
    def output_mean(self) -> float:
        return float(self.output_tokens.mean())

    @classmethod
    def constant(cls, prompt: float, output: float) -> TokenPool:
        return cls(np.array([prompt]), np.array([output]))

    @classmethod
    def of(cls, trace: RequestTrace) -> TokenPool:
        return cls(trace.prompt_tokens, trace.output_tokens)


@dataclass(frozen=True)
class Demand:
    """What arrives in each tick k = [k x tick_s, (k + 1) x tick_s)."""

    tick_s: float
    arrivals: FloatArray  # requests per tick
    prompt_mean: FloatArray  # mean prompt tokens of the tick's arrivals
    output_mean: FloatArray  # mean output tokens of the tick's arrivals
    tokens: TokenPool

    @property
    def ticks(self) -> int:
        return len(self.arrivals)

    @property
    def rate_rps(self) -> FloatArray:
        return self.arrivals / self.tick_s

    @property
    def duration_s(self) -> float:
        return self.ticks * self.tick_s


def rate_at_ticks(series: RateSeries, tick_s: float, duration_s: float) -> FloatArray:
    """Rate [req/s] at each tick's midpoint, linear between window midpoints."""
    ticks = int(duration_s // tick_s)
    mid_ticks = (np.arange(ticks) + 0.5) * tick_s
    mid_windows = series.start_s + series.window_s / 2.0
    out: FloatArray = np.interp(mid_ticks, mid_windows, series.rates_rps)
    return out


def _token_means(
    arrivals: FloatArray, pool: TokenPool, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    n = len(arrivals)
    p_mean, o_mean = pool.prompt_mean, pool.output_mean
    p_sd, o_sd = float(pool.prompt_tokens.std()), float(pool.output_tokens.std())
    counts = np.maximum(np.rint(arrivals), 1.0)
    scale = 1.0 / np.sqrt(counts)
    prompt = p_mean + p_sd * scale * rng.standard_normal(n)
    output = o_mean + o_sd * scale * rng.standard_normal(n)
    small = np.flatnonzero(counts <= EXACT_DRAW_MAX)
    size = len(pool.prompt_tokens)
    for k in small:
        idx = rng.integers(0, size, int(counts[k]))
        prompt[k] = pool.prompt_tokens[idx].mean()
        output[k] = pool.output_tokens[idx].mean()
    return np.maximum(prompt, 1.0), np.maximum(output, 1.0)


def demand_from_rates(
    series: RateSeries,
    tick_s: float,
    duration_s: float,
    pool: TokenPool,
    seed: int,
    dispersion: float | None = None,
) -> Demand:
    """Arrivals per tick from a rate series: Poisson, or negative binomial with index of
    dispersion `dispersion` (> 1) when given. See the module docstring."""
    rng = np.random.default_rng([seed, 1])
    mean = rate_at_ticks(series, tick_s, duration_s) * tick_s
    if dispersion is not None and dispersion > 1.0:
        shape = np.maximum(mean, 1e-9) / (dispersion - 1.0)
        mean = mean * rng.gamma(shape, 1.0 / shape)
    arrivals = rng.poisson(mean).astype(np.float64)
    prompt, output = _token_means(arrivals, pool, rng)
    return Demand(tick_s, arrivals, prompt, output, pool)


def demand_from_trace(
    trace: RequestTrace,
    tick_s: float,
    duration_s: float,
    pool: TokenPool | None = None,
    rate_factor: float = 1.0,
) -> Demand:
    """The trace's requests counted per tick (times rate_factor); token means per tick are the
    tick's own requests' (the pool's means in a tick without requests)."""
    ticks = max(1, math.ceil(duration_s / tick_s))
    k = np.minimum((trace.arrival_s // tick_s).astype(np.int64), ticks)
    keep = k < ticks
    k = k[keep]
    counts = np.bincount(k, minlength=ticks).astype(np.float64)
    p_sum = np.bincount(k, weights=trace.prompt_tokens[keep], minlength=ticks)
    o_sum = np.bincount(k, weights=trace.output_tokens[keep], minlength=ticks)
    own = pool or TokenPool.of(trace)
    with np.errstate(invalid="ignore", divide="ignore"):
        prompt = np.where(counts > 0, p_sum / np.maximum(counts, 1), own.prompt_mean)
        output = np.where(counts > 0, o_sum / np.maximum(counts, 1), own.output_mean)
    return Demand(tick_s, counts * rate_factor, prompt, output, own)


def dispersion_index(trace: RequestTrace, tick_s: float, smooth_ticks: int = 20) -> float:
    """Index of dispersion of a trace's per-tick counts around their local mean [ratio]:
    D = var(c_k - m_k) / mean(c_k), m_k the centered moving average over smooth_ticks ticks
    (so the slow diurnal trend is not counted as burstiness). 1 for a Poisson process."""
    ticks = max(1, int(trace.duration_s // tick_s))
    counts = np.bincount(
        np.minimum((trace.arrival_s // tick_s).astype(np.int64), ticks - 1), minlength=ticks
    ).astype(np.float64)
    if ticks < 3 or counts.mean() <= 0:
        return 1.0
    width = max(1, min(smooth_ticks, ticks))
    kernel = np.ones(width) / width
    local = np.convolve(
        np.pad(counts, (width // 2, width - 1 - width // 2), mode="edge"), kernel, "valid"
    )
    return float(np.var(counts - local) / counts.mean())
