"""Start the operator: settings once, shared clients in kopf's memo, kopf's own settings.

Nothing here runs at import time. `run_operator` is what `paretoscale run` calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from paretoscale.actuate.kube import Kube
from paretoscale.config import OperatorSettings
from paretoscale.controller.handlers import configure_watching, register
from paretoscale.controller.health import Health
from paretoscale.controller.leader import LeaderElector
from paretoscale.controller.loop import tick_loop, tick_once
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context
from paretoscale.controller.sync import sync_cache
from paretoscale.observe.prometheus import poller_for

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


async def run_operator(settings: OperatorSettings, kubeconfig: str | None = None) -> None:
    """Serve /metrics and /healthz for the whole life of the process (a standby replica
    too), then run as the leader (with --leader-election, once the Lease is held)."""
    kube = kube_from_environment(kubeconfig)
    metrics = OperatorMetrics.create()
    start_http_server(settings.metrics_port, registry=metrics.registry)
    health = Health(stale_after_s=max(60.0, 5 * settings.tick_seconds))
    health_runner = await health.serve(settings.health_port)
    try:
        if not settings.leader_election:
            await _run_active(settings, kube, metrics, health)
            return
        identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        elector = LeaderElector(kube.api, settings.lease_namespace, settings.lease_name, identity)
        await elector.acquire()
        active = asyncio.create_task(_run_active(settings, kube, metrics, health))
        keeper = asyncio.create_task(elector.keep())
        try:
            done, _ = await asyncio.wait({active, keeper}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()  # LeaseLost propagates: the process exits, restarts as a standby
        finally:
            for t in (active, keeper):
                t.cancel()
            await asyncio.to_thread(elector.release)
    finally:
        await health_runner.cleanup()


async def _run_active(
    settings: OperatorSettings, kube: Kube, metrics: OperatorMetrics, health: Health
) -> None:
    registry = kopf.OperatorRegistry()
    register(registry)
    poller = poller_for(settings)
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
        settings.posting.enabled = False  # events are ours (actuate/kube.py), not kopf's logs
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 16
        configure_watching(settings)

    stop = asyncio.Event()
    health.active = True

    async def synced_then_tick() -> None:
        """Nothing acts before every watched kind is listed; then tick at once, then every
        tick_seconds."""
        await sync_cache(ctx, settings.namespaces)
        await tick_once(ctx)
        health.ticked()
        await tick_loop(ctx, stop, on_tick=health.ticked)

    tasks = [asyncio.create_task(synced_then_tick())]
    if poller is not None:
        tasks.append(asyncio.create_task(poller.run(stop)))
    try:
        await kopf.operator(
            registry=registry,
            memo=kopf.Memo(ctx=ctx),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
        )
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
