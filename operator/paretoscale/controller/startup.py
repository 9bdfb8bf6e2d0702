"""Start the operator: settings once, shared clients in kopf's memo, kopf's own settings.

Nothing here runs at import time. `run_operator` is what `paretoscale run` calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from paretoscale.actuate.kube import Kube
from paretoscale.config import OperatorSettings
from paretoscale.controller.handlers import register
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context

log = logging.getLogger("paretoscale")


def kube_from_environment(kubeconfig: str | None) -> Kube:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
    except config.ConfigException:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return Kube(client.ApiClient(configuration))


def connection_info(c: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration the kubernetes client uses."""
    auth = (c.api_key or {}).get("authorization") or (c.api_key or {}).get("BearerToken")
    scheme, _, token = (auth or "").partition(" ")
    return kopf.ConnectionInfo(
        server=c.host,
        ca_path=c.ssl_ca_cert,
        insecure=not c.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=c.cert_file,
        private_key_path=c.key_file,
    )


def make_poller(settings: OperatorSettings) -> Any:
    """The one metrics poller of this process, or None without Prometheus."""
    if settings.prometheus_url is None:
        return None
    from paretoscale.observe.prometheus import MetricsPoller

    return MetricsPoller(settings)


async def run_operator(settings: OperatorSettings, kubeconfig: str | None = None) -> None:
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    kube = kube_from_environment(kubeconfig)
    metrics = OperatorMetrics.create()
    start_http_server(settings.metrics_port, registry=metrics.registry)
    poller = make_poller(settings)
    ctx = Context(
        settings=settings,
        kube=kube,
        metrics=metrics,
        latest_snapshot=(poller.latest if poller is not None else (lambda: None)),
    )

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(kube.api.configuration)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="paretoscale.io"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="paretoscale.io", key="last-handled-configuration"
        )
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 16

    stop = asyncio.Event()
    tasks = []
    if poller is not None:
        tasks.append(asyncio.create_task(poller.run(stop)))
    try:
        liveness = f"http://0.0.0.0:{settings.health_port}/healthz"
        clusterwide = not settings.namespaces
        memo = kopf.Memo(ctx=ctx)
        if settings.peering:  # HA: one active instance per peering name
            await kopf.operator(
                registry=registry,
                memo=memo,
                peering_name=settings.peering,
                liveness_endpoint=liveness,
                clusterwide=clusterwide,
                namespaces=settings.namespaces,
            )
        else:  # kopf ignores standalone when a peering name is given, so pass none
            await kopf.operator(
                registry=registry,
                memo=memo,
                standalone=True,
                liveness_endpoint=liveness,
                clusterwide=clusterwide,
                namespaces=settings.namespaces,
            )
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
