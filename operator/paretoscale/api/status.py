"""The ModelDeployment status as types: what the operator observed, decided and is doing.

Written only by the operator (through the status subresource), read by people
(`kubectl get mdep`, `kubectl describe`), by the printer columns and by the operator itself on
restart: the rollout state machine resumes from `status.rollout`, the learned profiles
from `status.learned`. Money is a decimal string, rounded to cents.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Phase = Literal["Stable", "Preparing", "Verifying", "Switching", "Draining", "RollingBack"]
Basis = Literal["live", "priors", "model", "estimate"]
ConditionType = Literal[
    "Ready",
    "Progressing",
    "Degraded",
    "MetricsAvailable",
    "SpecValid",
    "ResourceConflict",
    "ReconcileError",
    "CapacityPending",
    "SLOUnreachable",
]


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(_Status):
    """A Kubernetes condition (metav1.Condition)."""

    type: ConditionType = Field(
        description="Ready, Progressing, Degraded, MetricsAvailable, SpecValid, "
        "ResourceConflict (True: an object of the same name exists that this ModelDeployment "
        "does not own; nothing is applied), ReconcileError (True: the last reconcile "
        "failed or timed out), CapacityPending (True: pods the scheduler cannot place, "
        "named in the message) or SLOUnreachable (True: no variant can meet the SLO at the "
        "load; the one with the highest net value at the capacity it delivers runs)."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field("", max_length=32768, description="What happened, in words.")
    last_transition_time: str = Field(description="RFC 3339 time of the last status change.")
    observed_generation: int | None = Field(None, description="Spec generation this was set for.")


class ObservedStatus(_Status):
    """What the last tick read from Prometheus (or assumed, when it could not)."""

    requests_per_second: float | None = Field(None, description="Total request rate, all variants.")
    latency_seconds: float | None = Field(None, description="At the SLO metric and percentile.")
    tokens_per_request: float | None = Field(
        None, description="Prompt + generated tokens per request."
    )
    running_requests: float | None = Field(None, description="vllm:num_requests_running, summed.")
    waiting_requests: float | None = Field(None, description="vllm:num_requests_waiting, summed.")
    kv_cache_usage: float | None = Field(None, description="vllm:kv_cache_usage_perc, mean 0-1.")
    spec_decode_acceptance: float | None = Field(
        None, description="Accepted / proposed draft tokens."
    )
    basis: Literal["live", "priors"] = Field(
        "priors",
        description="live: from Prometheus; priors: spec.traffic.expectedRequestsPerSecond.",
    )
    at: str | None = Field(None, description="When Prometheus was read (RFC 3339).")
    price_basis: dict[str, Literal["live", "fallback", "spec"]] | None = Field(
        None,
        description=(
            "Where each GPU type's price came from: live (Prometheus' gpu_price query; needs "
            "kube-state-metrics' --metric-labels-allowlist=nodes=[nvidia.com/gpu.product]), "
            "fallback (the operator's --price), spec (spec.gpus[].usdPerHour)."
        ),
    )
    gpus_available: dict[str, int] | None = Field(
        None,
        description="GPUs per type this ModelDeployment can hold now, as the nodes and pods "
        "show them (allocatable of nodes taking pods, minus other pods' requests); replicas "
        "are planned within it and spec.gpus[].available. Absent with --no-gpu-inventory.",
    )


class VariantStatus(_Status):
    """One row of the frontier table."""

    name: str = Field(description="Variant name.")
    feasible: bool = Field(
        description="Meets the SLO at the needed replicas within bounds and inventory."
    )
    on_frontier: bool = Field(description="No feasible variant is both cheaper and better.")
    replicas: int = Field(description="Replicas needed at the observed load.")
    capacity_per_replica: float = Field(description="Requests/s one replica serves at the SLO.")
    hourly_cost: str = Field(description="USD per hour at those replicas.")
    cost_per_1k_requests: str | None = Field(None, alias="costPer1kRequests")
    value_per_hour: str = Field(description="Value of the served quality, USD per hour.")
    net_value_per_hour: str = Field(description="Value minus GPU cost, USD per hour.")
    basis: Basis = Field(
        description="Where its capacity comes from: priors (the profile: the spec's, or the "
        "in-cluster profiling's), model (the performance model's prior, no profile), live "
        "(either, corrected by what its replicas served) or estimate (FLOP proxy)."
    )
    reason: str = Field("", description="Why it is infeasible, when it is.")


class DecisionStatus(_Status):
    """What the last tick decided."""

    variant: str = Field(description="Variant to run (in Recommend mode: to recommend).")
    replicas: int = Field(description="Replicas of it.")
    action: Literal["stay", "scale", "switch", "hold"] = Field(
        description="What the decision changes."
    )
    reasons: list[str] = Field(default_factory=list, description="Why, in words.")
    at: str = Field(description="When (RFC 3339).")


class RolloutStatus(_Status):
    """The rollout state machine, persisted so that a restart resumes it."""

    phase: Phase = "Stable"
    active: str | None = Field(None, description="Variant the Service routes to.")
    target: str | None = Field(None, description="Variant being rolled to, while not Stable.")
    target_replicas: int | None = Field(None, description="Replicas the target is scaled to.")
    started_at: str | None = Field(None, description="When the rollout began.")
    phase_since: str | None = Field(None, description="When the current phase began.")
    message: str = Field("", description="What the rollout waits for or did last.")


class SwitchRecord(_Status):
    """One past switch (newest first in lastSwitches)."""

    from_variant: str | None = Field(None, alias="from", description="Variant before.")
    to_variant: str = Field(alias="to", description="Variant rolled to.")
    at: str = Field(description="When it ended (RFC 3339).")
    reason: str = Field(description="Why it started, or why it was rolled back.")
    outcome: Literal["completed", "rolledBack"] = Field("completed", description="How it ended.")


class ScaleDownIntent(_Status):
    """A lower replica target waiting out the stabilization window."""

    since: str = Field(description="When a lower target was first seen.")
    replicas: int = Field(description="Highest lower target seen since.")


class SaturationStatus(_Status):
    """The saturation guard's consecutive-tick counters for the serving variant."""

    variant: str | None = Field(None, description="Variant the counters are about.")
    over_slo_ticks: int = Field(0, description="Ticks in a row with latency above the SLO.")
    waiting_ticks: int = Field(0, description="Ticks in a row with the queue growing or high.")
    last_waiting: float | None = Field(None, description="Requests waiting at the last tick.")
    missing_ticks: int | None = Field(None, description="Ticks since every signal was read.")


class ForecastStatus(_Status):
    """The request-rate forecast's memory (rates in req/s): daily profile, trend, errors."""

    at: float | None = Field(None, description="Last observation, seconds since the epoch.")
    level: float | None = Field(None, description="Smoothed request rate.")
    trend: float = Field(0.0, description="Trend of the rate, req/s per second.")
    profile: list[float | None] = Field(
        default_factory=list, max_length=48, description="Mean rate per half hour of the day."
    )
    slot: int | None = Field(None, description="Half-hour slot being accumulated.")
    slot_sum: float = Field(0.0, description="Sum of the rates seen in that slot.")
    slot_n: int = Field(0, description="Rates seen in that slot.")
    due_at: float | None = Field(None, description="When the forecast under test falls due.")
    due_rps: float = Field(0.0, description="What it said.")
    margin: float = Field(1.0, description="Error margin: a high quantile of actual/forecast.")
    error_sum: float = Field(0.0, description="Sum of absolute percentage errors.")
    errors: int = Field(0, description="Forecasts scored.")
    rate: float | None = Field(None, description="Last rate observed: persistence's level.")
    due_rate_rps: float = Field(0.0, description="Persistence's forecast under test.")
    due_trend_rps: float = Field(0.0, description="The trend's forecast under test.")
    error_rate: float | None = Field(None, description="Persistence's mean |log(actual/forecast)|.")
    error_trend: float | None = Field(
        None, description="The trend's mean |log(actual/forecast)|; used while lower."
    )


class ProfilePointStatus(_Status):
    """One measured point: latency at the SLO metric and percentile at one request rate."""

    requests_per_second: float = Field(description="Request rate offered to the replica.")
    latency_seconds: float = Field(description="Latency at the SLO metric and percentile.")


class ProfiledVariant(_Status):
    """A profile measured in the cluster (spec.profiling), as `paretoscale profile` reads it."""

    profile: list[ProfilePointStatus] = Field(description="Rates ascending.")
    prompt_tokens: float | None = Field(None, description="Prompt tokens per request measured.")
    output_tokens: float | None = Field(None, description="Output tokens per request measured.")
    config_map: str = Field(description="ConfigMap holding the vllm bench serve result files.")
    measured_at: str = Field(description="When the results were read (RFC 3339).")
    gpu_hours: float = Field(description="GPU-hours its Job used.")


class ProfilingJobStatus(_Status):
    """The profiling Job running now."""

    variant: str = Field(description="Variant being profiled.")
    job: str = Field(description="Job name.")
    started_at: float = Field(description="When it was created, seconds since the epoch.")
    reserved_gpu_hours: float = Field(description="Its worst case: GPUs x deadline.")


class ProfilingStatus(_Status):
    """In-cluster profiling (spec.profiling): what it measured, spent, and runs now."""

    gpu_hours_spent: float = Field(
        0.0, description="GPU-hours used by finished profiling Jobs (bounded by maxGpuHours)."
    )
    running: ProfilingJobStatus | None = Field(None, description="The Job running now.")
    waiting: str | None = Field(
        None, description="Why no Job starts although a variant waits (the GPU-hour bound)."
    )
    profiles: dict[str, ProfiledVariant] = Field(
        default_factory=dict, description="Per variant: the profile measured in the cluster."
    )
    failed: dict[str, str] = Field(
        default_factory=dict,
        description="Per variant: why its profiling failed; not retried until profiling is "
        "disabled and enabled again.",
    )


class LearnedSamples(_Status):
    """A variant's window of live samples, oldest first, as parallel arrays (decide/learned.py)."""

    since: int = Field(0, description="When the oldest sample was taken, seconds since the epoch.")
    at: list[int] = Field(
        default_factory=list, max_length=64, description="Seconds after `since` of each sample."
    )
    requests_per_second: list[float] = Field(
        default_factory=list,
        max_length=64,
        description="Completions per replica, at the profile's token mix.",
    )
    latency_seconds: list[float] = Field(
        default_factory=list,
        max_length=64,
        description="Latency at the SLO percentile (0: none read).",
    )
    factor: list[float] = Field(
        default_factory=list,
        max_length=64,
        description="Capacity / declared capacity the reading says.",
    )
    weight: list[float] = Field(
        default_factory=list, max_length=64, description="Its weight in the fit."
    )
    bounds: list[int] = Field(
        default_factory=list,
        max_length=64,
        description="Indices of the samples that only bound the factor from above (saturation).",
    )


class LearnedProfileStatus(_Status):
    """A variant's profile learned while serving: declared vs learned capacity at the SLO."""

    declared_rps: float = Field(
        description="Capacity per replica at the SLO the spec declares, at its token mix."
    )
    learned_rps: float = Field(description="The same, on the profile fitted to the samples.")
    confidence: float = Field(
        description="0..1: how far the decision follows the fit rather than the declared "
        "profile (capacityCorrections)."
    )
    samples: LearnedSamples = Field(default_factory=LearnedSamples)


class ModelDeploymentStatus(_Status):
    """Written by the operator only."""

    observed_generation: int | None = Field(None, description="Spec generation last acted on.")
    phase: Phase = Field("Stable", description="Rollout phase.")
    active_variant: str | None = Field(None, description="Variant the Service routes to.")
    target_variant: str | None = Field(
        None, description="Variant being rolled to, or the best one now."
    )
    replicas: int | None = Field(None, description="Replicas of the active variant.")
    hourly_cost: str | None = Field(
        None, description="GPU cost of the active variant, USD per hour."
    )
    net_value_per_hour: str | None = Field(None, description="Its value minus cost, USD per hour.")
    observed: ObservedStatus | None = Field(None, description="What the last tick read.")
    frontier: list[VariantStatus] = Field(
        default_factory=list, description="Every variant at the observed load."
    )
    decision: DecisionStatus | None = Field(None, description="The last decision and its reasons.")
    rollout: RolloutStatus = Field(
        default_factory=RolloutStatus, description="Rollout state machine."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Degraded, MetricsAvailable, SpecValid.",
    )
    last_switches: list[SwitchRecord] = Field(
        default_factory=list, max_length=10, description="Newest first."
    )
    capacity_corrections: dict[str, float] = Field(
        default_factory=dict,
        description="Per variant: the capacity factor the decision uses (1.0 = as profiled): "
        "the learned profile's, shrunk toward 1 by its confidence.",
    )
    learned: dict[str, LearnedProfileStatus] = Field(
        default_factory=dict,
        description="Per variant: its window of live samples and the profile fitted to them.",
    )
    variant_since: str | None = Field(None, description="When the active variant took over.")
    scale_down: ScaleDownIntent | None = None
    saturation: SaturationStatus | None = Field(None, description="Saturation guard counters.")
    forecast: ForecastStatus | None = Field(None, description="Request-rate forecast memory.")
    profiling: ProfilingStatus | None = Field(
        None, description="In-cluster profiling (spec.profiling): results and GPU-hours."
    )
