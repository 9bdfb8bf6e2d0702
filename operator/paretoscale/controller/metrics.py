"""The operator's own Prometheus metrics, on a registry created at start-up (no globals)."""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

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
    deferred: Gauge
    status_writes: Counter
    decision_age: Gauge
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
            status_writes=Counter(
                "paretoscale_status_writes",
                "ModelDeployment status writes (each a watch event for every watcher).",
                registry=r,
            ),
            deferred=Gauge(
                "paretoscale_tick_deferred_modeldeployments",
                "ModelDeployments the last tick left to a later one (its budget was spent).",
                registry=r,
            ),
            decision_age=Gauge(
                "paretoscale_decision_age_max_seconds",
                "Longest time since any ModelDeployment was last reconciled.",
                registry=r,
            ),
            apply_errors=Counter(
                "paretoscale_apply_errors", "Failed applies to the Kubernetes API.", md, registry=r
            ),
        )

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of one ModelDeployment (it is gone), so /metrics shows only
        objects that exist."""
        md = (namespace, name)
        series: list[tuple[Any, tuple[str, ...]]] = [
            (self.hourly_cost, md),
            (self.net_value, md),
            (self.apply_errors, md),
            *((self.decisions, (*md, action)) for action in ACTIONS),
            *((self.switches, (*md, outcome)) for outcome in OUTCOMES),
        ]
        for metric, labels in series:
            with contextlib.suppress(KeyError):
                metric.remove(*labels)


ACTIONS = ("stay", "scale", "switch", "hold")  # the decision actions (decide/types.py)
OUTCOMES = ("completed", "rolledBack")  # the switch outcomes (rollout/machine.py)


def package_version() -> str:
    """The installed paretoscale version; "unknown" when run from a source tree uninstalled."""
    try:
        return version("paretoscale")
    except PackageNotFoundError:
        return "unknown"
