"""Start the operator: settings once, shared clients in kopf's memo, kopf's own settings.

Nothing here runs at import time. `run_operator` is what `paretoscale run` calls.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from paretoscale.actuate.kube import Kube
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.config import OperatorSettings
from paretoscale.controller.handlers import configure_watching, register
from paretoscale.controller.health import Health
from paretoscale.controller.inventory import Inventory
from paretoscale.controller.leader import LeaderElector, LeaseLost
from paretoscale.controller.loop import CONCURRENCY, tick_loop, tick_once
from paretoscale.controller.metrics import OperatorMetrics
from paretoscale.controller.reconcile import Context
from paretoscale.controller.sync import resync_loop, sync_cache
from paretoscale.observe.prometheus import poller_for

log = logging.getLogger("paretoscale")

# The garbage collector's generations (young allocations, then young and middle collections
# before the next older one). With the defaults (700, 10, 10) every tick of a large fleet
# moves its new per-object memories into the oldest generation, and a full collection, which
# scans every cached object, followed every other tick: at 10,000 ModelDeployments 0.5 s of
# a 3.3 s tick. With these, a full collection comes after 10,000 x 50 x 20 net allocations
# (about every 40 minutes at 10,000 ModelDeployments); the tick costs 2.9 s. Objects the
# tick replaces are freed by their reference counts, not by the collector.
GC_THRESHOLDS = (10_000, 50, 20)


def kube_from_environment(kubeconfig: str | None, timeout_s: float = 10.0) -> Kube:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG); every
    call gives up after `timeout_s`."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
    except config.ConfigException:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    # No urllib3 retries: it retries a read timeout three times, so a hung call would take
    # 4 x timeout_s; the next tick is the retry.
    configuration.retries = 0
    configuration.connection_pool_maxsize = 2 * CONCURRENCY  # one per API thread
    return Kube(client.ApiClient(configuration), timeout_s=timeout_s)


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


async def run_operator(
    settings: OperatorSettings, kubeconfig: str | None = None, gpu_types: GpuTypes = BUILTIN
) -> None:
    """Serve /metrics and /healthz for the whole life of the process (a standby replica
    too), then run as the leader (with --leader-election, once the Lease is held; every write
    is refused once the leader is not sure it still holds it, and it steps down)."""
    gc.set_threshold(*GC_THRESHOLDS)
    kube = kube_from_environment(kubeconfig, settings.api_timeout_seconds)
    metrics = OperatorMetrics.create()
    start_http_server(settings.metrics_port, registry=metrics.registry)
    health = Health(stale_after_s=max(60.0, 5 * settings.tick_seconds))
    health_runner = await health.serve(settings.health_port)
    try:
        if not settings.leader_election:
            await _run_active(settings, kube, metrics, health, gpu_types)
            return
        identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        elector = LeaderElector(
            client.ApiClient(kube.api.configuration),  # its own connections: never queued
            settings.lease_namespace,
            settings.lease_name,
            identity,
            duration_s=settings.lease_duration_seconds,
            renew_deadline_s=settings.lease_renew_deadline_seconds,
            retry_s=settings.lease_retry_seconds,
            timeout_s=settings.api_timeout_seconds,
        )
        kube.may_write = elector.holds  # every write asks first
        await elector.acquire()
        active = asyncio.create_task(_run_active(settings, kube, metrics, health, gpu_types))
        keeper = asyncio.create_task(elector.keep())
        try:
            done, _ = await asyncio.wait({active, keeper}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        except LeaseLost as e:
            exit_now(e)
        finally:
            for t in (active, keeper):
                t.cancel()
            await asyncio.to_thread(elector.release)
    finally:
        await health_runner.cleanup()


def exit_now(lost: LeaseLost) -> NoReturn:
    """Leadership lost: exit at once, as client-go's leader election does, and let the
    kubelet restart the process as a standby. No cleanup runs: it could only wait on the API
    this process may no longer write to (a stalled call, a thread to join)."""
    log.critical("%s; exiting", lost)
    logging.shutdown()
    os._exit(1)


async def _run_active(
    settings: OperatorSettings,
    kube: Kube,
    metrics: OperatorMetrics,
    health: Health,
    gpu_types: GpuTypes = BUILTIN,
) -> None:
    registry = kopf.OperatorRegistry()
    register(registry, settings.gpu_inventory)
    poller = poller_for(settings, gpus=gpu_types)
    ctx = Context(
        settings=settings,
        gpu_types=gpu_types,
        inventory=Inventory(gpus=gpu_types) if settings.gpu_inventory else None,
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
    # API calls run in threads (asyncio.to_thread): as many as reconciles may run at once,
    # not the default min(32, cores + 4), so a tick's writes are not queued behind each other
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=2 * CONCURRENCY, thread_name_prefix="api")
    )

    async def synced_then_tick() -> None:
        """Nothing acts before every watched kind is listed; then tick at once, then every
        tick_seconds."""
        await sync_cache(ctx, settings.namespaces)
        await tick_once(ctx)
        health.ticked()
        await tick_loop(ctx, stop, on_tick=health.ticked)

    tasks = [
        asyncio.create_task(synced_then_tick()),
        asyncio.create_task(resync_loop(ctx, settings.namespaces, stop)),
    ]
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
