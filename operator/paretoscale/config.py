"""Operator settings, read once at start-up from flags and PARETOSCALE_* environment variables.

`paretoscale run --help` lists the flags; each has an environment variable of the same name
(`--prometheus-url` = PARETOSCALE_PROMETHEUS_URL), which is how the Helm chart sets them.
Settings are injected into the handlers through kopf's memo, never read at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    rate_window: str = Field("2m", description="PromQL range for rate() and histograms.")
    stale_after_seconds: float = Field(
        120.0, gt=0, description="A metrics snapshot older than this counts as unavailable."
    )
    queries_file: str | None = Field(
        None, description="YAML mapping of query name -> PromQL template overriding the defaults."
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
    price_fallback: dict[str, float] = Field(
        default_factory=dict,
        description="USD per GPU-hour by GPU type when Prometheus has none; wins over spec.gpus.",
    )
