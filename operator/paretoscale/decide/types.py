"""The decision engine's inputs and outputs, as frozen data.

`Observation` is what the shell read (Prometheus snapshot, or nothing); `CurrentState` is what
runs now (from status); `Decision` is what should run, with its reasons in words. Times are
seconds since the epoch, passed in: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.economics.work import TokenMix

Action = Literal["stay", "scale", "switch", "hold"]
CapacityBasis = Literal["profile", "model", "live", "estimate"]

# Tokens per request assumed by the FLOP proxy when nothing was observed: the mean of the
# Azure LLM inference trace 2023, conversation (1,155 prompt + 211 output tokens).
DEFAULT_TOKENS_PER_REQUEST = 1366.0


@dataclass(frozen=True)
class LatencyReading:
    """A histogram quantile at the SLO percentile [s] and the bucket (lower, upper] holding it.

    The value is interpolated inside the bucket (as histogram_quantile does); only the bucket
    is measured. upper = +inf: above the highest finite edge (the value is that edge).
    Where the SLO is one of the histogram's edges, the histogram also says exactly which share
    of the window's requests met it (`within_slo`, of `count` observations)."""

    value: float
    lower_edge: float
    upper_edge: float
    within_slo: float | None = None  # share of observations <= the SLO (an edge), 0-1
    count: float | None = None  # observations in the window

    @property
    def in_overflow_bucket(self) -> bool:
        return self.upper_edge == float("inf")


@dataclass(frozen=True)
class VariantSignals:
    """One variant's live readings, as the shell read them; None = not read, never zero."""

    requests_per_s: float | None = None  # completions/s over the rate window
    # requests served (finished, aborted excluded) per reporting replica-second
    requests_per_replica_s: float | None = None
    requests_in_window: float | None = None  # completions in the rate window
    latency: LatencyReading | None = None  # at the spec's SLO metric and percentile
    waiting: float | None = None  # vllm:num_requests_waiting, summed over replicas
    running: float | None = None  # vllm:num_requests_running, summed over replicas
    kv_cache_usage: float | None = None  # vllm:kv_cache_usage_perc, mean over replicas 0-1
    # Requests finished since its replicas started (vllm:request_success_total, the counter
    # itself, summed over replicas): every reason, and of those finished_reason="error"
    # (answered HTTP 500) and "abort". The rollout analysis reads them for a target, whose
    # replicas started for the rollout: what it served during verification.
    finished_total: float | None = None
    errors_total: float | None = None
    aborts_total: float | None = None


@dataclass(frozen=True)
class Observation:
    """What the shell knows about the world at `at` [s since epoch]."""

    at: float
    requests_per_s: float | None = None  # None: metrics unavailable
    tokens_per_request: float | None = None
    usd_per_gpu_hour: Mapping[str, float] = field(default_factory=dict)  # live prices by type
    capacity_factors: Mapping[str, float] = field(default_factory=dict)  # live corrections
    metrics_problem: str | None = None  # why metrics are unavailable, in words
    # False when no Prometheus is configured: the priors (expected load) then decide, since
    # nothing better will ever come; True means missing data is a failure and holds.
    metrics_expected: bool = True
    # Per variant, what the serving replicas show (saturation guard, live correction, analysis).
    variants: Mapping[str, VariantSignals] = field(default_factory=dict)
    # Demand in the units that cost; None = not measured. Arrivals [req/s] = completions (all
    # finish reasons, aborted included) + the growth of running + waiting requests: a
    # saturated fleet completes at its capacity, so completions alone hide demand.
    arrivals_per_s: float | None = None
    aborted_per_s: float | None = None  # finished_reason="abort", part of requests_per_s
    # Arrivals since the last poll [req/s]: completions + growth of the waiting gauge over
    # one tick (tick() derives it when the caller gives none); a burst shows here a rate
    # window before it shows in arrivals_per_s. None = not measured.
    arrivals_recent_per_s: float | None = None
    # The range the rates were read over [s] (rate(...[window])); None: not known. With
    # the rate it gives the count of requests a reading rests on (decide/headroom.py).
    rate_window_s: float | None = None
    prompt_tokens_per_request: float | None = None  # the observed token mix
    output_tokens_per_request: float | None = None
    # GPUs of each type this ModelDeployment can hold now, as the cluster shows it (the
    # operator: allocatable GPUs of the type's nodes minus what other pods request); a type
    # absent: unknown, spec.gpus[].available alone bounds it. The lower of the two applies.
    gpus_available: Mapping[str, int] = field(default_factory=dict)
    # The cluster's GPU type mapping (api/accelerators.py): the FLOP proxy reads its figures.
    gpu_types: GpuTypes = BUILTIN

    @property
    def demand_per_s(self) -> float | None:
        """Requests/s to plan for: arrivals where measured (never below 0), else completions;
        None when metrics are unavailable."""
        if self.requests_per_s is None:
            return None
        if self.arrivals_per_s is None:
            return self.requests_per_s
        return max(self.arrivals_per_s, 0.0)

    @property
    def token_mix(self) -> TokenMix | None:
        """Prompt and output tokens per request, when both were observed."""
        p, o = self.prompt_tokens_per_request, self.output_tokens_per_request
        if p is None or o is None or p <= 0 or o <= 0:
            return None
        return TokenMix(p, o)


@dataclass(frozen=True)
class ScaleDown:
    """A lower replica target waiting out the stabilization window."""

    since: float
    replicas: int


@dataclass(frozen=True)
class CurrentState:
    """What runs now, as the status records it."""

    active: str | None = None
    replicas: int = 0
    variant_since: float | None = None
    scale_down: ScaleDown | None = None
    rollout_in_progress: bool = False
    pods_loading: bool = False
    # Variants whose rollout failed recently -> why; not chosen again until the dwell passes.
    recently_failed: Mapping[str, str] = field(default_factory=dict)
    # The active variant's replicas run and hold their GPUs (Auto mode); in Recommend mode
    # nothing the operator recommends runs, so another variant has every GPU.
    running: bool = True


@dataclass(frozen=True)
class HeldGpus:
    """GPUs the serving variant holds while a rollout to another runs both: on its type,
    another variant has only the rest."""

    variant: str
    gpu_type: str
    count: int


@dataclass(frozen=True)
class VariantEval:
    """One variant at the current load: can it meet the SLO, at what cost, for what value."""

    name: str
    gpu_type: str
    quality: float
    feasible: bool
    reason: str
    capacity_rps: float
    capacity_basis: CapacityBasis
    replicas: int
    hourly_cost_usd: float
    cost_per_1k_requests_usd: float | None
    value_per_hour_usd: float
    net_value_per_hour_usd: float
    on_frontier: bool = False
    payback_days: float | None = None


@dataclass(frozen=True)
class Decision:
    """What should run, and why."""

    variant: str
    replicas: int
    action: Action
    reasons: tuple[str, ...]
    best: str  # the best variant now, before hysteresis (what Recommend mode recommends)
    evaluations: tuple[VariantEval, ...]
    requests_per_s: float
    rate_basis: Literal["live", "priors"]
    slo_met: bool
    scale_down: ScaleDown | None = None

    def evaluation(self, name: str) -> VariantEval:
        for e in self.evaluations:
            if e.name == name:
                return e
        raise KeyError(name)
