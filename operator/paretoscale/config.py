"""Operator settings, read once at start-up from flags and PARETOSCALE_* environment variables.

`paretoscale run --help` lists the flags; each has an environment variable of the same name
(`--prometheus-url` = PARETOSCALE_PROMETHEUS_URL), which is how the Helm chart sets them.
Settings are injected into the handlers through kopf's memo, never read at import time.
`read_gpu_types` reads the GPU type mapping the settings name (the pure core gets the value).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from paretoscale.api.accelerators import GpuTypes, Preset, gpu_types
from paretoscale.errors import SpecError


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARETOSCALE_", frozen=True, extra="ignore")

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty = all (cluster scope)."
    )
    prometheus_url: str | None = Field(
        None, description="Prometheus base URL; without it the operator decides on priors alone."
    )
    prometheus_bearer_token_file: str | None = Field(
        None, description="File with a bearer token for Prometheus (e.g. a projected token)."
    )
    prometheus_ca_file: str | None = Field(None, description="CA bundle for an https Prometheus.")
    prometheus_timeout_seconds: float = Field(10.0, gt=0)
    tick_seconds: float = Field(30.0, gt=0, description="Metrics poll and decision interval.")
    reconcile_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="One ModelDeployment's reconcile gives up after this (condition "
        "ReconcileError); the others go on.",
    )
    resync_seconds: float = Field(
        300.0,
        gt=0,
        description="Every watched kind is listed again this often; what the listing no "
        "longer shows is dropped from the cache and the metrics.",
    )
    rate_window: str = Field("2m", description="PromQL range for rate() and histograms.")
    stale_after_seconds: float = Field(
        120.0, gt=0, description="A metrics snapshot older than this counts as unavailable."
    )
    queries_file: str | None = Field(
        None, description="YAML mapping of query name -> PromQL template overriding the defaults."
    )
    gpu_types_file: str | None = Field(
        None,
        description="YAML `gpuTypes: {NAME: {...}}` adding GPU types to the built-in table or "
        "overriding their fields (node label, extended resource, figures).",
    )
    gpu_types_preset: Literal["nfd", "gke"] = Field(
        "nfd",
        description="How nodes label the built-in GPU types: nfd (nvidia.com/gpu.product, GPU "
        "Feature Discovery) or gke (cloud.google.com/gke-accelerator).",
    )
    gpu_inventory: bool = Field(
        True,
        description="Watch nodes and pods to plan only replicas the cluster's free GPUs can "
        "hold (needs list/watch on nodes and pods); off: spec.gpus[].available alone bounds "
        "them, and pods that cannot be placed show as CapacityPending.",
    )
    default_mode: Literal["Recommend"] | None = Field(
        None, description="Force every ModelDeployment to Recommend (set 'Recommend')."
    )
    metrics_port: int = Field(9090, description="Port of the operator's own /metrics.")
    health_port: int = Field(8080, description="Port of /healthz (kopf liveness).")
    leader_election: bool = Field(
        False, description="Run several replicas; one holds a Lease and acts (HA)."
    )
    lease_name: str = Field("paretoscale", description="Name of the leader-election Lease.")
    lease_namespace: str = Field(
        "default", description="Namespace of the Lease (the chart sets the operator's own)."
    )
    lease_duration_seconds: float = Field(
        15.0, gt=0, description="A standby takes the Lease over after this without renewal."
    )
    lease_renew_deadline_seconds: float = Field(
        10.0,
        gt=0,
        description="The leader makes no write once its last renewal is older than this "
        "(monotonic clock), and steps down.",
    )
    lease_retry_seconds: float = Field(2.0, gt=0, description="Interval of Lease renewals.")
    api_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Every Kubernetes API call gives up after this; at most "
        "leaseDuration - leaseRenewDeadline, so no write of a deposed leader lands late.",
    )
    price_fallback: dict[str, float] = Field(
        default_factory=dict,
        description="USD per GPU-hour by GPU type when Prometheus has none; wins over spec.gpus.",
    )

    @model_validator(mode="after")
    def _lease_timings(self) -> OperatorSettings:
        """retry < renew deadline < duration, and an API call ends within the margin between
        the renew deadline and the duration (so a write never outlives the leadership)."""
        if not (
            self.lease_retry_seconds
            < self.lease_renew_deadline_seconds
            < self.lease_duration_seconds
        ):
            raise ValueError(
                "need lease_retry_seconds < lease_renew_deadline_seconds < lease_duration_seconds"
            )
        margin = self.lease_duration_seconds - self.lease_renew_deadline_seconds
        if self.api_timeout_seconds > margin or (
            self.api_timeout_seconds >= self.lease_renew_deadline_seconds
        ):
            raise ValueError(
                "api_timeout_seconds must be below lease_renew_deadline_seconds and at most "
                f"lease_duration_seconds - lease_renew_deadline_seconds ({margin:g})"
            )
        return self


def read_gpu_types(path: str | None, preset: Preset = "nfd") -> GpuTypes:
    """The GPU type mapping: the built-in table labelled the `preset` way, with the entries of
    the YAML file at `path` (if any) merged over it; raises SpecError naming the file."""
    if path is None:
        return gpu_types(None, "", preset)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SpecError(path, [f"cannot read the GPU types file: {e.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(path, [f"not valid YAML: {e}"]) from None
    return gpu_types(document, path, preset)
