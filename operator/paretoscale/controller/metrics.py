"""The operator's own Prometheus metrics, on a registry created at start-up (no globals)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


@dataclass(frozen=True)
class OperatorMetrics:
    registry: CollectorRegistry
    decisions: Counter
    switches: Counter
    reconcile_seconds: Histogram
    hourly_cost: Gauge
    net_value: Gauge
    apply_errors: Counter
    tick_seconds: Histogram
    queries_per_tick: Gauge
    modeldeployments: Gauge
    build_info: Info

    @classmethod
    def create(cls) -> OperatorMetrics:
        r = CollectorRegistry()
        build = Info("paretoscale_build", "The running operator's version.", registry=r)
        build.info({"version": package_version(), "python": platform.python_version()})
        md = ["namespace", "modeldeployment"]
        return cls(
            registry=r,
            build_info=build,
            decisions=Counter(
                "paretoscale_decisions", "Decisions made, by action.", [*md, "action"], registry=r
            ),
            switches=Counter(
                "paretoscale_switches",
                "Variant switches, by outcome.",
                [*md, "outcome"],
                registry=r,
            ),
            reconcile_seconds=Histogram(
                "paretoscale_reconcile_duration_seconds",
                "Time of one reconcile.",
                registry=r,
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            ),
            hourly_cost=Gauge(
                "paretoscale_predicted_hourly_cost_usd",
                "Predicted GPU cost of the serving variant, USD/h.",
                md,
                registry=r,
            ),
            net_value=Gauge(
                "paretoscale_predicted_net_value_usd_per_hour",
                "Predicted net value of the serving variant, USD/h.",
                md,
                registry=r,
            ),
            tick_seconds=Histogram(
                "paretoscale_tick_duration_seconds",
                "Time to reconcile every ModelDeployment once.",
                registry=r,
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            ),
            queries_per_tick=Gauge(
                "paretoscale_prometheus_queries_per_tick",
                "PromQL queries the last poll ran.",
                registry=r,
            ),
            modeldeployments=Gauge(
                "paretoscale_modeldeployments", "ModelDeployments in the cache.", registry=r
            ),
            apply_errors=Counter(
                "paretoscale_apply_errors", "Failed applies to the Kubernetes API.", md, registry=r
            ),
        )


def package_version() -> str:
    """The installed paretoscale version; "unknown" when run from a source tree uninstalled."""
    try:
        return version("paretoscale")
    except PackageNotFoundError:
        return "unknown"
