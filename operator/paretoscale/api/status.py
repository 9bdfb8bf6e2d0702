"""The ModelDeployment status as types: what the operator observed, decided and is doing.

Written only by the operator (through the status subresource), read by people
(`kubectl get mdep`, `kubectl describe`), by the printer columns and by the operator itself on
restart: the rollout state machine resumes from `status.rollout`, the live capacity corrections
from `status.capacityCorrections`. Money is a decimal string, rounded to cents.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Phase = Literal["Stable", "Preparing", "Verifying", "Switching", "Draining", "RollingBack"]
Basis = Literal["live", "priors", "estimate"]
ConditionType = Literal["Ready", "Progressing", "Degraded", "MetricsAvailable", "SpecValid"]


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(_Status):
    """A Kubernetes condition (metav1.Condition)."""

    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field("", max_length=32768)
    last_transition_time: str = Field(description="RFC 3339 time of the last status change.")
    observed_generation: int | None = None


class ObservedStatus(_Status):
    """What the last tick read from Prometheus (or assumed, when it could not)."""

    requests_per_second: float | None = None
    latency_seconds: float | None = Field(None, description="At the SLO metric and percentile.")
    tokens_per_request: float | None = None
    running_requests: float | None = None
    waiting_requests: float | None = None
    kv_cache_usage: float | None = None
    spec_decode_acceptance: float | None = None
    basis: Literal["live", "priors"] = "priors"
    at: str | None = None


class VariantStatus(_Status):
    """One row of the frontier table."""

    name: str
    feasible: bool
    on_frontier: bool
    replicas: int
    capacity_per_replica: float = Field(description="Requests/s one replica serves at the SLO.")
    hourly_cost: str = Field(description="USD per hour at those replicas.")
    cost_per_1k_requests: str | None = Field(None, alias="costPer1kRequests")
    value_per_hour: str
    net_value_per_hour: str
    basis: Basis
    reason: str = ""


class DecisionStatus(_Status):
    variant: str
    replicas: int
    action: Literal["stay", "scale", "switch", "hold"]
    reasons: list[str] = Field(default_factory=list)
    at: str


class RolloutStatus(_Status):
    """The rollout state machine, persisted so that a restart resumes it."""

    phase: Phase = "Stable"
    active: str | None = Field(None, description="Variant the Service routes to.")
    target: str | None = Field(None, description="Variant being rolled to, while not Stable.")
    target_replicas: int | None = None
    started_at: str | None = None
    phase_since: str | None = None
    message: str = ""


class SwitchRecord(_Status):
    from_variant: str | None = Field(None, alias="from")
    to_variant: str = Field(alias="to")
    at: str
    reason: str
    outcome: Literal["completed", "rolledBack"] = "completed"


class ScaleDownIntent(_Status):
    """A lower replica target waiting out the stabilization window."""

    since: str
    replicas: int


class ModelDeploymentStatus(_Status):
    observed_generation: int | None = None
    phase: Phase = "Stable"
    active_variant: str | None = None
    target_variant: str | None = None
    replicas: int | None = None
    hourly_cost: str | None = None
    net_value_per_hour: str | None = None
    observed: ObservedStatus | None = None
    frontier: list[VariantStatus] = Field(default_factory=list)
    decision: DecisionStatus | None = None
    rollout: RolloutStatus = Field(default_factory=RolloutStatus)
    conditions: list[Condition] = Field(default_factory=list)
    last_switches: list[SwitchRecord] = Field(default_factory=list, max_length=10)
    capacity_corrections: dict[str, float] = Field(
        default_factory=dict,
        description="Per variant: live capacity / profiled capacity (1.0 = as profiled).",
    )
    variant_since: str | None = Field(None, description="When the active variant took over.")
    scale_down: ScaleDownIntent | None = None
