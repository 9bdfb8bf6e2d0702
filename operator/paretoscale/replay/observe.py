"""What Prometheus would show a policy: scraped vLLM metrics, delayed, windowed and noisy.

The run loop records, per tick and variant, what the Ready replicas exported (`Scrapes`);
a policy deciding at the start of tick k sees `PromView(scrapes, k)`, built like the
operator's queries:
- delay: the last `delay_ticks` ticks are not scraped yet (scrape interval + evaluation lag);
  the window is the `window_ticks` ticks before that (rate(...[2m]) at 30 s ticks: 4);
- request rate: rate(vllm:request_success_total[w]) = requests finished in the window /
  window seconds, times a lognormal scrape-alignment noise (sigma RATE_NOISE). Finished, not
  arrived: requests that clients abandon after the queue timeout count (vLLM counts them
  with finished_reason="abort"; `aborted_rps` alone), but a growing queue is not seen until
  it times out;
- arrivals: the operator's request_rate + queue_growth (deriv of running + waiting over the
  window). A variant's queue obeys queue_start + arrivals = finished + aborted + queue_end,
  so that sum is the arrivals routed to it in the window (exact here; the same noise);
- token mix: prompt and generated tokens of the served requests / served (finished, not
  aborted) requests over the window, as prompt_tokens_rate and generation_tokens_rate /
  (request_rate - aborted rate): an aborted request adds no tokens;
- latency: histogram_quantile(q, sum by (le) (rate(..._bucket[w]))) over the variant's
  replicas: bucket counts drawn per tick (multinomial over vLLM's bucket edges from the perf
  table's latency distribution; requests that waited in a queue land in the bucket of their
  wait) and the quantile interpolated linearly inside its bucket (`histogram_quantile`);
- request counts since a variant's replicas started (the counter itself, request_totals):
  finished and aborted requests summed since it last had no Ready replica; no request fails
  with an error in the replay (finished_reason="error" counts 0);
- gauges: vllm:kv_cache_usage_perc, vllm:num_requests_waiting and vllm:num_requests_running
  per replica, sampled once per tick (waiting, running ~ Poisson(mean), KV x (1 + 0.05
  N(0, 1))); KV read as max_over_time[1m], the request counts as the last scrape's sum.
Before the replay starts the fleet is assumed to have served the first tick's demand; a
window that would reach before tick 0 uses what exists, and with nothing scraped yet the
rate reads as the first tick's demand (the metrics the operator had before the replay).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paretoscale.economics.work import TokenMix
from paretoscale.observe.histogram import Quantile
from paretoscale.observe.histogram import histogram_quantile as operator_quantile
from paretoscale.replay.fleet import Served
from paretoscale.replay.perf import X_MAX, PerfTable

RATE_NOISE = 0.03
KV_NOISE = 0.05


def histogram_quantile(q: float, edges: Sequence[float], counts: Sequence[float]) -> float | None:
    """Prometheus' histogram_quantile over non-cumulative bucket counts (the last count is the
    +Inf bucket): rank = q x total; in the bucket (lo, hi] that holds the rank, the value is
    lo + (hi - lo) x (rank - below) / in_bucket, lo = 0 for the first bucket; a rank in the
    +Inf bucket returns the highest finite edge. None without observations."""
    found = quantile_reading(q, edges, counts)
    return None if found is None else found[0]


def quantile_reading(
    q: float, edges: Sequence[float], counts: Sequence[float]
) -> tuple[float, bool] | None:
    """histogram_quantile's value, and whether the rank fell in the +Inf (overflow) bucket,
    where the value is only a lower bound: observe/histogram.py, the operator's own reading,
    fed the cumulative counts with the +Inf edge."""
    cumulative = list(itertools.accumulate(float(c) for c in counts))
    found = operator_quantile(q, [*edges, math.inf], cumulative)
    if found is None:
        return None
    return found.value, found.in_overflow_bucket


class Scrapes:
    """Per tick and variant, what the variant's Ready replicas exported. Filled by the run
    loop in tick order (the only mutable object of a replay, local to one policy's run)."""

    def __init__(
        self, ticks: int, variants: int, edges: Sequence[float], histograms: bool, seed: int
    ) -> None:
        self.edges = tuple(edges)
        self.completions = np.zeros((ticks, variants))
        self.ready = np.zeros((ticks, variants))
        self.kv = np.zeros((ticks, variants))
        self.waiting = np.zeros((ticks, variants))
        self.running = np.zeros((ticks, variants))
        self.tokens = np.zeros((ticks, variants))
        self.arrivals = np.zeros((ticks, variants))
        self.aborted = np.zeros((ticks, variants))
        self.prompt_tokens = np.zeros((ticks, variants))
        self.has_prompt_tokens = False
        self.hist: npt.NDArray[np.float64] | None = (
            np.zeros((ticks, variants, len(edges) + 1)) if histograms else None
        )
        self.rng = np.random.default_rng([seed, 2])
        self.rng_running = np.random.default_rng([seed, 3])  # keeps the other draws as they were
        self.rate_noise = np.exp(RATE_NOISE * self.rng.standard_normal(ticks))
        # per variant: (end, start) of the last run_start() answer, so each call scans only
        # the ticks scraped since (a scan back to the start made long replays quadratic)
        self._runs: dict[int, tuple[int, int]] = {}

    def run_start(self, v: int, end: int) -> int:
        """The first tick of variant v's run of scraped ticks ending at end - 1, in which it
        had Ready replicas or finished requests (end when tick end - 1 had neither)."""
        last_end, start = self._runs.get(v, (0, 0))
        if end < last_end:  # asked about the past: scan it afresh
            last_end, start = 0, 0
        for k in range(end - 1, last_end - 1, -1):
            if self.ready[k, v] <= 0 and self.completions[k, v] <= 0:
                start = k + 1
                break
        self._runs[v] = (end, start)
        return start

    def record(
        self,
        tick: int,
        v: int,
        s: Served,
        ready: int,
        table: PerfTable,
        scale: int,
        tokens_per_request: float,
        tick_s: float,
        prompt_tokens_per_request: float | None = None,
    ) -> None:
        """Record variant v's scrape of tick k from what it served (see module docstring).
        `prompt_tokens_per_request` splits tokens_per_request into prompt and output; without
        it the replay shows no token mix."""
        self.completions[tick, v] = s.served + s.dropped  # finished_reason stop|length|abort
        self.arrivals[tick, v] = s.arrivals
        self.aborted[tick, v] = s.dropped
        self.ready[tick, v] = ready
        self.tokens[tick, v] = s.served * tokens_per_request
        if prompt_tokens_per_request is not None:
            self.prompt_tokens[tick, v] = s.served * prompt_tokens_per_request
            self.has_prompt_tokens = True
        if ready <= 0:
            return
        i, w = table.position(min(s.load_x, X_MAX))
        kv = table.at(table.kv_usage[scale], i, w)
        queue_start = s.served + s.queue_end + s.dropped - s.arrivals
        queued = (queue_start + s.queue_end) / 2.0
        waiting = table.at(table.waiting[scale], i, w) + queued / ready
        self.kv[tick, v] = min(1.0, max(0.0, kv * (1.0 + KV_NOISE * self.rng.standard_normal())))
        self.waiting[tick, v] = float(self.rng.poisson(max(waiting, 0.0)))
        running = table.at(table.running[scale], i, w)
        self.running[tick, v] = float(self.rng_running.poisson(max(running, 0.0)))
        if self.hist is None or s.served <= 0:
            return
        n = round(s.served)
        if n <= 0:
            return
        late = min(n, max(0, round(s.served - s.on_time)))
        cdf = table.bucket_cdf[scale]
        lo, hi = cdf[i], cdf[i + 1]
        probs = np.diff(
            np.array([0.0, *(a + (b - a) * w for a, b in zip(lo, hi, strict=True)), 1.0])
        )
        counts = self.rng.multinomial(n - late, np.clip(probs, 0.0, None) / max(probs.sum(), 1e-12))
        if late:
            wait_s = queued / (ready * table.max_rps[scale])
            latency = table.limit_latency_s[scale] + wait_s
            counts[bisect.bisect_left(self.edges, latency)] += late
        self.hist[tick, v] = counts


@dataclass(frozen=True)
class PromView:
    """The metrics a policy deciding at the start of `tick` can read."""

    scrapes: Scrapes
    tick: int
    tick_s: float
    delay_ticks: int
    window_ticks: int
    prior_rate_rps: float

    def _window(self) -> slice | None:
        end = self.tick - self.delay_ticks
        if end <= 0:
            return None
        return slice(max(0, end - self.window_ticks), end)

    def rate_rps(self, v: int | None = None) -> float:
        """rate(vllm:request_success_total[w]) summed over all variants (or variant v)."""
        win = self._window()
        if win is None:
            return self.prior_rate_rps
        rows = self.scrapes.completions[win]
        total = float(rows.sum() if v is None else rows[:, v].sum())
        seconds = float(win.stop - win.start) * self.tick_s
        noise = float(self.scrapes.rate_noise[win.stop - 1])
        return total / seconds * noise

    def _windowed_rate(self, values: npt.NDArray[np.float64], v: int | None) -> float | None:
        """Sum of `values` over the window (all variants or variant v) / window seconds, times
        the tick's scrape noise; None before anything was scraped."""
        win = self._window()
        if win is None:
            return None
        rows = values[win]
        total = float(rows.sum() if v is None else rows[:, v].sum())
        seconds = float(win.stop - win.start) * self.tick_s
        return total / seconds * float(self.scrapes.rate_noise[win.stop - 1])

    def arrivals_rps(self, v: int | None = None) -> float:
        """request_rate + queue_growth summed over all variants (or variant v): the arrivals
        over the window (see the module docstring); the prior before any scrape."""
        rate = self._windowed_rate(self.scrapes.arrivals, v)
        return self.prior_rate_rps if rate is None else rate

    def aborted_rps(self, v: int | None = None) -> float | None:
        """rate(vllm:request_success_total{finished_reason="abort"}[w]): requests dropped after
        the queue timeout, per second; None before any scrape."""
        return self._windowed_rate(self.scrapes.aborted, v)

    def _served(self, win: slice) -> float:
        """Requests finished over the window other than aborted ones: the requests the token
        counters count (an aborted request never ran, so it added no tokens)."""
        return float(self.scrapes.completions[win].sum() - self.scrapes.aborted[win].sum())

    def token_mix(self) -> TokenMix | None:
        """(prompt, generated) tokens per served request over the window: prompt_tokens_rate
        and generation_tokens_rate over (request_rate - aborted rate); None before any
        scrape, without served requests, or when the run loop records no prompt split.
        Dividing by every finished request would count aborted ones, which add no tokens,
        and make the mix look light exactly when the fleet is overloaded."""
        win = self._window()
        if win is None or not self.scrapes.has_prompt_tokens:
            return None
        n = self._served(win)
        if n <= 0:
            return None
        prompt = float(self.scrapes.prompt_tokens[win].sum())
        output = float(self.scrapes.tokens[win].sum()) - prompt
        if prompt <= 0 or output <= 0:
            return None
        return TokenMix(prompt / n, output / n)

    def tokens_per_request(self) -> float | None:
        """(prompt + generation tokens) / served (finished, not aborted) requests over the
        window."""
        win = self._window()
        if win is None:
            return None
        n = self._served(win)
        return float(self.scrapes.tokens[win].sum()) / n if n > 0 else None

    def rate_per_replica_rps(self, v: int, served: bool = False) -> float | None:
        """Completions per Ready-replica-second of variant v over the window; `served`:
        aborted requests left out (what the replicas actually served)."""
        win = self._window()
        if win is None:
            return None
        replica_s = float(self.scrapes.ready[win, v].sum()) * self.tick_s
        if replica_s <= 0:
            return None
        done = float(self.scrapes.completions[win, v].sum())
        if served:
            done -= float(self.scrapes.aborted[win, v].sum())
        return max(done, 0.0) / replica_s

    def latency_quantile(self, v: int, q: float, min_count: float = 20.0) -> float | None:
        """histogram_quantile(q) of variant v's latency histogram over the window; None with
        fewer than min_count observations."""
        found = self.latency_reading(v, q, min_count)
        return None if found is None else found[0]

    def latency_reading(
        self, v: int, q: float, min_count: float = 1.0
    ) -> tuple[float, bool] | None:
        """(histogram_quantile(q), in the overflow bucket) of variant v over the window."""
        win = self._window()
        if win is None or self.scrapes.hist is None:
            return None
        counts = self.scrapes.hist[win, v].sum(axis=0)
        if counts.sum() < min_count:
            return None
        return quantile_reading(q, self.scrapes.edges, counts.tolist())

    def latency_bucket(self, v: int, q: float, min_count: float = 1.0) -> Quantile | None:
        """histogram_quantile(q) of variant v over the window, with the bucket holding it."""
        win = self._window()
        if win is None or self.scrapes.hist is None:
            return None
        counts = self.scrapes.hist[win, v].sum(axis=0)
        if counts.sum() < min_count:
            return None
        cumulative = list(itertools.accumulate(float(c) for c in counts.tolist()))
        return operator_quantile(q, [*self.scrapes.edges, math.inf], cumulative)

    def share_within(self, v: int, le: float) -> tuple[float, float] | None:
        """(share of variant v's observations <= le, observations) over the window, where le
        is one of the histogram's edges (within 1e-9 relative); None otherwise or without any."""
        win = self._window()
        if win is None or self.scrapes.hist is None:
            return None
        at = [i for i, e in enumerate(self.scrapes.edges) if abs(e - le) <= 1e-9 * le]
        counts = self.scrapes.hist[win, v].sum(axis=0)
        total = float(counts.sum())
        if not at or total <= 0:
            return None
        return float(counts[: at[0] + 1].sum()) / total, total

    def requests_in_window(self, v: int) -> float | None:
        """Requests variant v finished in the window (rollout analysis needs >= 20)."""
        win = self._window()
        if win is None:
            return None
        return float(self.scrapes.completions[win, v].sum())

    def finished_since_start(self, v: int) -> tuple[float, float] | None:
        """(requests finished, of those aborted) by variant v since its replicas started, as
        the counter vllm:request_success_total reads (request_totals): summed over the
        scraped ticks back to the last one where it had no Ready replica and finished
        nothing. None before anything is scraped."""
        end = self.tick - self.delay_ticks
        if end <= 0:
            return None
        start = self.scrapes.run_start(v, end)
        done = self.scrapes.completions
        return float(done[start:end, v].sum()), float(self.scrapes.aborted[start:end, v].sum())

    def gauge_max(self, v: int, name: str, ticks: int = 2) -> float | None:
        """max_over_time(gauge[ticks x tick_s]) of variant v's per-replica gauge ("kv" or
        "waiting"), over ticks where it had Ready replicas; None when none did."""
        end = self.tick - self.delay_ticks
        if end <= 0:
            return None
        values = self.scrapes.kv if name == "kv" else self.scrapes.waiting
        ready = self.scrapes.ready
        best: float | None = None
        for k in range(max(0, end - ticks), end):
            if ready[k, v] > 0:
                x = float(values[k, v])
                best = x if best is None or x > best else best
        return best

    def waiting_total(self, v: int) -> float | None:
        """sum(vllm:num_requests_waiting) over variant v's Ready replicas at the last scrape."""
        return self._gauge_total(self.scrapes.waiting, v)

    def running_total(self, v: int) -> float | None:
        """sum(vllm:num_requests_running) over variant v's Ready replicas at the last scrape."""
        return self._gauge_total(self.scrapes.running, v)

    def _gauge_total(self, values: npt.NDArray[np.float64], v: int) -> float | None:
        end = self.tick - self.delay_ticks
        if end <= 0:
            return None
        return float(values[end - 1, v] * self.scrapes.ready[end - 1, v])
