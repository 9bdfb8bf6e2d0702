"""Analytic steady state of one vLLM replica at a given request rate: latency percentiles,
utilization and the throughput limit, in ~15 microseconds per call (for trace replay over
days; pure Python floats, no numpy).

A fluid balance of continuous batching, with the step-time formula of perfmodel:
- requests arrive at lambda req/s with P prompt and O output tokens; a decoding sequence
  emits E tokens per step (1, or the speculative E), so it decodes for D = (O - 1) / E steps;
- with B sequences decoding, Little's law gives lambda = B / (D x E[T](B)), and each step
  prefills mu = B / D prompts on average, so the step time is explicit in B. Prefills are
  lumpy (a 1,000-token prompt is compute-bound on its own), so the GEMM term is averaged over
  a two-point mixture: with probability e^-mu no prompt, else k1 = mu / (1 - e^-mu) prompts:
  E[T](B) = a0 + a1 B + e^-mu G(qB) + (1 - e^-mu) G(qB + k1 P),  G(N) = sqrt(w^2 + (c N)^2),
  where q = 1 + k query tokens per decoding sequence, w the weight-read time, c the GEMM
  seconds per token, a0 the fixed and a1 the per-sequence costs (overheads, activations, KV
  reads of P + O/2 context tokens, prefill attention, drafting);
- B solves B = lambda x D x E[T](B) (regula falsi on [0, B_cap]; increasing in lambda);
- the throughput limit: B is capped by seats (max_num_seqs / (1 + 1/D)), KV tokens
  (kv_cache_tokens / (P + O/2)) and the token budget (max_num_batched_tokens / (q + P/D));
  max_requests_per_s = B_cap / (D x E[T](B_cap)).
Latencies, seen by a request that joins B others:
- ITL = E[T](B + 1) (TPOT = ITL / E); its percentiles are the step with the q-quantile of
  Poisson(mu) prefills;
- TTFT = residual of the running step (E[T^2] / 2 E[T]) + the step(s) that prefill the
  prompt, whose co-arriving prompts average lambda E[T^2] / E[T] (a request lands in a
  length-biased step) + queue wait;
- queue wait below the limit: M/D/c-ish, the Sakasegawa approximation of the M/M/c wait
  halved for deterministic service: Wq = rho^(sqrt(2(c+1)) - 1) / (c (1 - rho)) x S / 2 with
  c = seats at the limit and S = the time a request holds a seat (exponential tail);
- above the limit (saturated): a fluid queue growing at lambda - max_requests_per_s req/s;
  the mean wait over a window of `window_s` seconds starting with `queued_requests` waiting is
  (queued_requests + growth x window_s / 2) / max_requests_per_s, and `queued_requests_end`
  carries the queue into the next window (a queue left from before drains at
  max_requests_per_s - lambda);
- e2e = TTFT + D x ITL (+ a CLT spread of the step times for percentiles).
Output lengths are taken as fixed at their mean: percentiles show queueing and step-time
variation, not length variation (call per output length for that).
Checked against discrete-event runs of the same scheduler in tests/unit/sim/test_steady.py
(means within 15% up to 70% of the limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from paretoscale.sim.perfmodel import ReplicaModel

Metric = Literal["ttft", "itl", "tpot", "e2e"]


@dataclass(frozen=True)
class _Coef:
    """Step time at B decoding sequences and mu = B / D prefills per step:
    T = a0 + a1 B + e^-mu G(qB) + (1 - e^-mu) G(qB + k1 P), G(N) = sqrt(w^2 + (c N)^2),
    k1 = mu / (1 - e^-mu) (the mean number of prefills in a step that has any)."""

    a0: float
    a1: float
    w: float
    c: float  # linear_s_per_token / speed
    d_steps: float
    q: float
    prompt_tokens: float
    prompt_extra_s: float  # non-GEMM cost of one more prompt in a step


@dataclass(frozen=True)
class SteadyState:
    """Operating point of one replica at `requests_per_s`. Seconds; rates per second."""

    requests_per_s: float
    max_requests_per_s: float
    saturated: bool
    utilization: float  # requests_per_s / max_requests_per_s
    batch_size: float  # mean sequences decoding
    step_time_s: float  # mean step time, as seen by a decoding request
    tokens_per_step: float  # per decoding sequence (E)
    ttft_s: float  # means
    itl_s: float
    tpot_s: float
    e2e_s: float
    queue_wait_s: float
    queued_requests_end: float  # waiting requests at the end of the window (fluid)
    kv_cache_usage: float
    # internals for percentiles (a step with k prefills: see step_with_prefills_s)
    arrivals_per_step: float  # mu: prompts prefilled per step
    prefill_s_per_request: float  # marginal step time of one more prompt in a step
    prefill_step_s: float  # the step(s) that prefill a request's prompt, at mean load
    prefill_chunks: float
    co_arrivals_per_step: float  # other prompts in a request's own prefill step (length-biased)
    decode_steps: float
    queue_tail_rate_per_s: float  # exponential tail of the queue wait (0: no wait)
    queue_wait_probability: float
    step_no_prefill_s: float  # a step with no prompt in it
    step_tokens: float  # decode tokens of a step (q x (B + 1))
    weight_read_s: float
    linear_s_per_token: float
    prompt_tokens: float
    prompt_extra_s: float  # non-GEMM cost of one prompt in a step

    def step_with_prefills_s(self, prefills: float) -> float:
        """A step that also prefills `prefills` prompts: the no-prefill step plus the GEMM
        curve from N0 to N0 + k x P and k times the prompts' non-GEMM cost."""
        n0 = self.step_tokens
        n1 = n0 + prefills * self.prompt_tokens
        w, c = self.weight_read_s, self.linear_s_per_token
        gemm = math.sqrt(w * w + (c * n1) ** 2) - math.sqrt(w * w + (c * n0) ** 2)
        return self.step_no_prefill_s + gemm + prefills * self.prompt_extra_s

    def latency_at_percentile(self, metric: Metric, pct: float) -> float:
        """The `pct` percentile (0-100) of `metric` ("ttft", "itl", "tpot" or "e2e"), s.

        ITL: the step with the q-quantile of Poisson(mu) prefills. TTFT: q of the running
        step + the prefill step(s) with the q-quantile of co-arriving prompts + the
        queue-wait quantile.
        E2E: TTFT + D steps whose mean has a CLT spread. All nondecreasing in the load."""
        if not 0.0 < pct < 100.0:
            raise ValueError(f"percentile must be in (0, 100), got {pct}")
        q = pct / 100.0
        step_q = self.step_with_prefills_s(_poisson_quantile(self.arrivals_per_step, q))
        if metric == "itl":
            return step_q
        if metric == "tpot":
            return self._decode_step_quantile(q) / self.tokens_per_step
        wait = self._queue_wait_quantile(q)
        co = self.co_arrivals_per_step
        co_q = _poisson_quantile(co, q)
        spread = self.prefill_chunks * (
            self.step_with_prefills_s(co_q) - self.step_with_prefills_s(co)
        )
        ttft = q * self.step_time_s + max(self.prefill_step_s + spread, 0.0) + wait
        if metric == "ttft":
            return ttft
        if metric == "e2e":
            return ttft + self.decode_steps * self._decode_step_quantile(q)
        raise ValueError(f"unknown metric {metric!r}; use ttft, itl, tpot or e2e")

    def _decode_step_quantile(self, q: float) -> float:
        """Mean step time over the D decode steps of one request at quantile q (CLT)."""
        var = self.arrivals_per_step * self.prefill_s_per_request**2
        spread = math.sqrt(var / max(self.decode_steps, 1.0))
        return self.step_time_s + _z(q) * spread

    def _queue_wait_quantile(self, q: float) -> float:
        if self.saturated:
            return self.queue_wait_s * q / 0.5 if q < 1.0 else self.queue_wait_s
        p = self.queue_wait_probability
        if p <= 0 or self.queue_tail_rate_per_s <= 0 or 1.0 - q >= p:
            return 0.0
        return math.log(p / (1.0 - q)) / self.queue_tail_rate_per_s


def _z(q: float) -> float:
    """Standard normal quantile (Acklam-free: Abramowitz-Stegun 26.2.23, |err| < 4.5e-4)."""
    if q == 0.5:
        return 0.0
    p = q if q < 0.5 else 1.0 - q
    t = math.sqrt(-2.0 * math.log(p))
    z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (
        1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3
    )
    return -z if q < 0.5 else z


def _poisson_quantile(mean: float, q: float) -> float:
    """Smallest k with P(K <= k) >= q for K ~ Poisson(mean); normal approximation above 50."""
    if mean <= 0:
        return 0.0
    if mean > 50:
        return max(0.0, mean + _z(q) * math.sqrt(mean))
    term = cdf = math.exp(-mean)
    k = 0
    while cdf < q and k < 1000:
        k += 1
        term *= mean / k
        cdf += term
    return float(k)


def _coef(model: ReplicaModel, prompt_tokens: float, output_tokens: float) -> _Coef:
    """The coefficients of T(B) for a workload (see the module docstring). A request of one
    output token decodes for half a step (D >= 0.5) to keep the balance defined."""
    m = model
    q = float(m.query_tokens_per_decode_seq)
    d = max((output_tokens - 1.0) / m.tokens_per_decode_step, 0.5)
    per_b_tokens = q + prompt_tokens / d
    speed = m.speed_factor
    a0 = m.step_overhead_s + m.allreduce_fixed_s + m.attn_floor_s
    a1 = m.seq_overhead_s * (1.0 + 1.0 / d)
    a1 += (m.activation_s_per_token + m.allreduce_s_per_token) * per_b_tokens
    a1 += m.kv_read_s_per_token * (prompt_tokens + output_tokens / 2.0)
    a1 += m.prefill_attn_s_per_pair * prompt_tokens**2 / (2.0 * d)
    if m.spec is not None:
        a0 += m.spec.num_speculative_tokens * m.spec.pass_fixed_s
        a1 += m.spec.num_speculative_tokens * m.spec.pass_per_seq_s
    per_prompt = (
        m.seq_overhead_s
        + (m.activation_s_per_token + m.allreduce_s_per_token) * prompt_tokens
        + m.prefill_attn_s_per_pair * prompt_tokens**2 / 2.0
    )
    return _Coef(
        a0 / speed, a1 / speed, m.weight_read_s / speed, m.linear_s_per_token / speed, d, q,
        prompt_tokens, per_prompt / speed,
    )  # fmt: skip


def _gemm(c: _Coef, tokens: float) -> float:
    x = c.c * tokens
    return math.sqrt(c.w * c.w + x * x)


def _step_moments(c: _Coef, b: float, extra_seqs: float = 0.0) -> tuple[float, float, float]:
    """(E[T], E[T^2], mu) of a step with B decoding sequences (+ `extra_seqs` that decode
    without adding arrivals: the observing request itself)."""
    mu = b / c.d_steps
    p0 = math.exp(-mu)
    k1 = mu / (1.0 - p0) if mu > 1e-12 else 1.0
    base = c.a0 + c.a1 * (b + extra_seqs) - c.prompt_extra_s * mu
    decode_tokens = c.q * (b + extra_seqs)
    t0 = base + _gemm(c, decode_tokens)
    t1 = base + _gemm(c, decode_tokens + k1 * c.prompt_tokens) + c.prompt_extra_s * k1
    mean = p0 * t0 + (1.0 - p0) * t1
    return mean, p0 * t0 * t0 + (1.0 - p0) * t1 * t1, mu


def _batch_for_rate(c: _Coef, requests_per_s: float, b_cap: float) -> float:
    """B in [0, b_cap] solving B = lambda x D x T(B) (Illinois regula falsi; f is increasing
    where it crosses zero). Returns b_cap when the rate is at or past the limit."""
    if requests_per_s <= 0:
        return 0.0
    k = requests_per_s * c.d_steps

    def f(b: float) -> float:
        return b - k * _step_moments(c, b)[0]

    lo, hi = 0.0, b_cap
    f_lo, f_hi = f(lo), f(hi)
    if f_hi <= 0:
        return b_cap
    side = 0
    for _ in range(60):
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_mid = f(mid)
        if abs(f_mid) < 1e-9 * max(1.0, mid) or hi - lo < 1e-9 * max(1.0, hi):
            return mid
        if f_mid < 0:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi /= 2.0
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo /= 2.0
            side = 1
    return (lo + hi) / 2.0


def steady_state(
    model: ReplicaModel,
    requests_per_s: float,
    prompt_tokens_mean: float,
    output_tokens_mean: float,
    *,
    queued_requests: float = 0.0,
    window_s: float = 0.0,
) -> SteadyState:
    """The operating point of `model` serving `requests_per_s` requests of the given mean
    lengths (see the module docstring for every formula). `queued_requests` waiting at the
    start of a window of `window_s` seconds make it a fluid transient: the queue drains at
    max_requests_per_s - requests_per_s or grows at requests_per_s - max_requests_per_s."""
    if requests_per_s < 0 or prompt_tokens_mean < 0 or output_tokens_mean < 1:
        raise ValueError(
            f"need requests_per_s >= 0, prompt_tokens_mean >= 0, output_tokens_mean >= 1; got "
            f"{requests_per_s}, {prompt_tokens_mean}, {output_tokens_mean}"
        )
    m = model
    c = _coef(m, prompt_tokens_mean, output_tokens_mean)
    d = c.d_steps
    ctx = prompt_tokens_mean + output_tokens_mean / 2.0
    b_cap = min(
        m.max_num_seqs / (1.0 + 1.0 / d),
        m.kv_cache_tokens / max(ctx, 1.0),
        m.max_num_batched_tokens / (c.q + prompt_tokens_mean / d),
    )
    max_rate = b_cap / (d * _step_moments(c, b_cap)[0])
    growth = requests_per_s - max_rate
    queued = max(queued_requests, 0.0)
    if growth > 0:
        saturated, queued_end = True, queued + growth * window_s
        mean_queue = queued + growth * window_s / 2.0
    elif queued > 0 and window_s > 0:
        drain_s = queued / -growth if growth < 0 else math.inf
        saturated = True
        if drain_s >= window_s:
            queued_end = queued + growth * window_s
            mean_queue = (queued + queued_end) / 2.0
        else:
            queued_end = 0.0
            mean_queue = queued * drain_s / (2.0 * window_s)
    else:
        saturated, queued_end, mean_queue = False, 0.0, 0.0
    b = b_cap if saturated else _batch_for_rate(c, requests_per_s, b_cap)
    extra_seqs = 0.0 if saturated else 1.0
    seen, seen_sq, mu = _step_moments(c, b, extra_seqs)
    decode_tokens = c.q * (b + extra_seqs)
    t_no_prefill = c.a0 + c.a1 * (b + extra_seqs) - c.prompt_extra_s * mu + _gemm(c, decode_tokens)
    e = m.tokens_per_decode_step
    free_budget = max(m.max_num_batched_tokens - c.q * (b + 1.0), 1.0)
    chunks = max(1.0, math.ceil(prompt_tokens_mean / free_budget))
    chunk = prompt_tokens_mean / chunks
    # a request arrives in a length-biased step, so its step's co-arrivals average
    # lambda x E[T^2] / E[T] (not mu = lambda x E[T])
    co_arrivals = mu * seen_sq / (seen * seen) if seen > 0 else mu
    others = c.q * (b + 1.0) + co_arrivals * c.prompt_tokens
    marginal = (
        _gemm(c, others + chunk)
        - _gemm(c, others)
        + c.prompt_extra_s * chunk / max(prompt_tokens_mean, 1.0)
    )
    step_k = (
        t_no_prefill
        + _gemm(c, decode_tokens + co_arrivals * c.prompt_tokens)
        - _gemm(c, decode_tokens)
        + co_arrivals * c.prompt_extra_s
    )
    prefill_s = chunks * (step_k + marginal)
    residual_s = seen_sq / (2.0 * seen)
    arrivals_per_step = mu
    if saturated:
        wait, p_wait, tail_rate = mean_queue / max_rate, 1.0, 0.0
    else:
        rho = requests_per_s / max_rate
        seats = max(b_cap * (1.0 + 1.0 / d), 1.0)
        service_s = prefill_s + c.d_steps * seen
        p_wait = min(1.0, rho ** (math.sqrt(2.0 * (seats + 1.0)) - 1.0))
        wait = p_wait / (seats * (1.0 - rho)) * service_s / 2.0 if rho < 1 else math.inf
        tail_rate = p_wait / wait if wait > 0 else 0.0
    ttft = residual_s + prefill_s + wait
    e2e = ttft + c.d_steps * seen
    return SteadyState(
        requests_per_s=requests_per_s, max_requests_per_s=max_rate, saturated=saturated,
        utilization=requests_per_s / max_rate if max_rate > 0 else math.inf,
        batch_size=b, step_time_s=seen, tokens_per_step=e, ttft_s=ttft, itl_s=seen,
        tpot_s=seen / e, e2e_s=e2e, queue_wait_s=wait, queued_requests_end=queued_end,
        kv_cache_usage=min(1.0, b * ctx / m.kv_cache_tokens),
        arrivals_per_step=arrivals_per_step, prefill_s_per_request=marginal,
        prefill_step_s=prefill_s, prefill_chunks=chunks, co_arrivals_per_step=co_arrivals,
        decode_steps=c.d_steps, queue_tail_rate_per_s=tail_rate, queue_wait_probability=p_wait,
        step_no_prefill_s=t_no_prefill, step_tokens=decode_tokens, weight_read_s=c.w,
        linear_s_per_token=c.c, prompt_tokens=prompt_tokens_mean, prompt_extra_s=c.prompt_extra_s,
    )  # fmt: skip
