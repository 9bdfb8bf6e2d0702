"""A latency percentile over a mixture of request lengths, from the analytic steady state.

`steady_state` (steady.py) takes mean prompt and output lengths, so its percentiles show
queueing and step-time variation only. Request-length variation is added here: requests are
cut into equal-weight length classes (by output length for e2e, prompt length for ttft; one
class for itl and tpot); a request of class c has D_c = (O_c - 1) / E decode steps and a
prefill time scaled by P_c / P_mean, at the operating point of the whole mix. Class c's CDF
is read off its latencies at QUANTILES (linear between them), and the mix's CDF is
F(t) = sum_c w_c F_c(t); the latency at percentile p is where F reaches p / 100.

The replay's perf tables (replay/perf.py) and the operator's prior (prior.py) both read
percentiles this way. Pure (numpy arrays, no I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from paretoscale.sim.steady import Metric, SteadyState

FloatArray = NDArray[np.float64]

LENGTH_CLASSES = 12
QUANTILES = (
    0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999,
)  # fmt: skip


@dataclass(frozen=True)
class LengthClasses:
    """Equal-weight classes of requests: mean prompt and output tokens of each [tokens]."""

    prompt: FloatArray
    output: FloatArray
    weight: FloatArray

    @classmethod
    def of(
        cls,
        prompt_tokens: FloatArray,
        output_tokens: FloatArray,
        metric: str,
        classes: int = LENGTH_CLASSES,
    ) -> LengthClasses:
        """Cut requests (their prompt and output lengths) into `classes` by output length
        (e2e), prompt length (ttft), or keep one class (itl, tpot)."""
        n = len(output_tokens)
        if metric in ("itl", "tpot") or n < classes:
            return cls.single(float(prompt_tokens.mean()), float(output_tokens.mean()))
        key = prompt_tokens if metric == "ttft" else output_tokens
        order = np.argsort(key, kind="stable")
        parts = np.array_split(order, classes)
        return cls(
            np.array([prompt_tokens[p].mean() for p in parts]),
            np.array([output_tokens[p].mean() for p in parts]),
            np.array([len(p) / n for p in parts]),
        )

    @classmethod
    def single(cls, prompt: float, output: float) -> LengthClasses:
        """Every request at the mean lengths."""
        return cls(np.array([prompt]), np.array([output]), np.ones(1))


def class_quantiles(
    state: SteadyState, metric: Metric, classes: LengthClasses, scale: float, prompt_mean: float
) -> FloatArray:
    """Latency [s] of each class (lengths x `scale`) at each of QUANTILES, monotone in the
    quantile; `state` is the operating point of the whole mix, `prompt_mean` its prompt."""
    out = np.empty((len(classes.weight), len(QUANTILES)))
    e = state.tokens_per_step
    for c in range(len(classes.weight)):
        st = state
        if len(classes.weight) > 1:
            st = replace(
                state,
                decode_steps=max(classes.output[c] * scale - 1.0, 0.0) / e,
                prefill_step_s=state.prefill_step_s * classes.prompt[c] / max(prompt_mean, 1.0),
            )
        for j, q in enumerate(QUANTILES):
            out[c, j] = st.latency_at_percentile(metric, q * 100.0)
    return np.maximum.accumulate(out, axis=1)


def mixture_cdf(
    latencies: FloatArray, weights: FloatArray, t_s: Sequence[float] | FloatArray
) -> FloatArray:
    """F(t) = sum_c w_c F_c(t), F_c linear between class c's quantile latencies, 0 below the
    first and 1 above the last."""
    t = np.asarray(t_s, dtype=np.float64)
    qs = np.asarray(QUANTILES)
    total = np.zeros_like(t)
    for c in range(len(weights)):
        lat = latencies[c]
        f = np.interp(t, lat, qs, left=0.0, right=1.0)
        total += weights[c] * np.where(t < lat[0], 0.0, f)
    return total


def mixture_quantile(latencies: FloatArray, weights: FloatArray, q: float) -> float:
    """The latency [s] at which the mixture CDF reaches q. F is piecewise linear between the
    union of the classes' quantile latencies, so it is inverted exactly on those knots."""
    knots = np.unique(latencies)
    f = np.maximum.accumulate(mixture_cdf(latencies, weights, knots))
    i = int(np.searchsorted(f, q, side="left"))
    if i <= 0:
        return float(knots[0])
    if i >= len(knots):
        return float(knots[-1])
    f0, f1 = f[i - 1], f[i]
    w = (q - f0) / (f1 - f0) if f1 > f0 else 1.0
    return float(knots[i - 1] + w * (knots[i] - knots[i - 1]))
