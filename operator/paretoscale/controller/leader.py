"""Leader election on a coordination.k8s.io Lease: one active operator among replicas.

The standard Kubernetes pattern (client-go's leaderelection): hold the Lease by renewing it
every `renew_s`; take it over when its holder has not renewed for `duration_s`; stop acting
(exit) when a renewal fails, so two instances never act at once. Only the holder runs kopf
and the tick loop. (kopf's own peering pauses only kopf's handlers, not our tick loop.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kubernetes import client

log = logging.getLogger("paretoscale")


class LeaseLost(Exception):
    """This instance no longer holds the Lease."""


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Expiry is judged on this process's clock from when it last saw the Lease change (as
    client-go does), not from the holder's renewTime, so clock skew between nodes does not
    matter. Every call has a timeout, so a hung renewal cannot outlive the lease."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        duration_s: int = 15,
        renew_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.duration_s, self.renew_s = duration_s, renew_s
        self.clock = clock
        self.timeout_s = max(1.0, renew_s / 2)
        self._seen: tuple[object, object] | None = None  # (holder, renewTime) last observed
        self._seen_at = 0.0

    def try_acquire(self) -> bool:
        """Take or renew the Lease if it is free, expired or ours. Blocking (thread)."""
        now = _now()
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout_s
            )
        except client.ApiException as e:
            if e.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=self.duration_s,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                self.api.create_namespaced_lease(
                    self.namespace, body, _request_timeout=self.timeout_s
                )
                return True
            except client.ApiException as e2:
                if e2.status == 409:
                    return False
                raise
        spec = lease.spec or client.V1LeaseSpec()
        lease.spec = spec
        holder = spec.holder_identity
        seen = (holder, spec.renew_time)
        if seen != self._seen:
            self._seen, self._seen_at = seen, self.clock()
        duration = spec.lease_duration_seconds or self.duration_s
        expired = self.clock() - self._seen_at > duration
        if holder not in (None, "", self.identity) and not expired:
            return False
        if holder != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = self.duration_s
        try:  # the resourceVersion in metadata makes this a compare-and-swap
            self.api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.timeout_s
            )
        except client.ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this instance holds the Lease."""
        while not await asyncio.to_thread(self._safe_try):
            await asyncio.sleep(self.renew_s)
        log.info("leader: %s holds lease %s/%s", self.identity, self.namespace, self.name)

    async def keep(self) -> None:
        """Renew forever; raise LeaseLost when a renewal fails past the lease duration."""
        last_ok = _now()
        while True:
            await asyncio.sleep(self.renew_s)
            if await asyncio.to_thread(self._safe_try):
                last_ok = _now()
            elif _now() - last_ok > timedelta(seconds=self.duration_s - self.renew_s):
                raise LeaseLost(f"lost lease {self.namespace}/{self.name}")

    def release(self) -> None:
        """Give the Lease up on a clean stop, so a standby takes over at once. Best effort."""
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout_s
            )
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            self.api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.timeout_s
            )
            log.info("leader: released lease %s/%s", self.namespace, self.name)
        except Exception as e:
            log.warning("releasing lease %s/%s: %s", self.namespace, self.name, e)

    def _safe_try(self) -> bool:
        try:
            return self.try_acquire()
        except Exception as e:  # API hiccup: not holding is the safe answer
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
            return False
