"""Leader election on a coordination.k8s.io Lease: one active operator among replicas.

The standard Kubernetes pattern (client-go's leaderelection): hold the Lease by renewing it
every `retry_s`; a standby takes it over when its holder has not renewed for `duration_s`.
The holder is sure of its leadership only while its last successful renewal started less
than `renew_deadline_s` ago (`holds()`), on the monotonic clock: a wall-clock step changes
nothing. Every write of the operator asks `holds()` first (actuate/kube.py), so a leader
whose renewals stall stops writing before a standby can take over (renew_deadline_s <
duration_s, and every API call times out within duration_s - renew_deadline_s), then steps
down (`keep` raises LeaseLost and the process exits). Renewal runs on its own thread and API
client, never queued behind the operator's own API calls. Only the holder runs kopf and the
tick loop. (kopf's own peering pauses only kopf's handlers, not our tick loop.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client

log = logging.getLogger("paretoscale")


class LeaseLost(Exception):
    """This instance no longer holds the Lease."""


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Expiry is judged on this process's monotonic clock from when it last saw the Lease
    change (as client-go does), not from the holder's renewTime, so neither clock skew between
    nodes nor a step of the wall clock matters. Every call has a timeout (`timeout_s`)."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_s: float = 2.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _now,
    ) -> None:
        if not 0 < retry_s < renew_deadline_s < duration_s:
            raise ValueError("need 0 < retry_s < renew_deadline_s < duration_s")
        self.api = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.duration_s, self.renew_deadline_s, self.retry_s = duration_s, renew_deadline_s, retry_s
        self.clock, self.wall = clock, wall
        self.timeout_s = timeout_s if timeout_s is not None else duration_s - renew_deadline_s
        self._seen: tuple[object, object] | None = None  # (holder, renewTime) last observed
        self._seen_at = 0.0
        self._renewed_at: float | None = None  # monotonic start of the last good renewal

    def holds(self) -> bool:
        """Sure to hold the Lease now: the last successful renewal started less than
        renew_deadline_s ago on the monotonic clock. Cheap; thread-safe (one float read)."""
        renewed = self._renewed_at
        return renewed is not None and self.clock() - renewed < self.renew_deadline_s

    def try_acquire(self) -> bool:
        """Take or renew the Lease if it is free, expired or ours. Blocking (thread)."""
        started, now = self.clock(), self.wall()
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout_s
            )
        except client.ApiException as e:
            if e.status != 404:
                raise
            return self._create(started, now)
        spec = lease.spec or client.V1LeaseSpec()
        lease.spec = spec
        holder = spec.holder_identity
        seen = (holder, spec.renew_time)
        if seen != self._seen:
            self._seen, self._seen_at = seen, self.clock()
        duration = spec.lease_duration_seconds or self.duration_s
        expired = self.clock() - self._seen_at > duration
        if holder not in (None, "", self.identity) and not expired:
            self._renewed_at = None
            return False
        if holder != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = int(self.duration_s)
        try:  # the resourceVersion in metadata makes this a compare-and-swap
            self.api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.timeout_s
            )
        except client.ApiException as e:
            if e.status == 409:
                return False
            raise
        self._renewed_at = started
        return True

    def _create(self, started: float, now: datetime) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=int(self.duration_s),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout_s)
        except client.ApiException as e:
            if e.status == 409:
                return False
            raise
        self._renewed_at = started
        return True

    async def acquire(self) -> None:
        """Wait until this instance holds the Lease."""
        while not await asyncio.to_thread(self._safe_try):
            await asyncio.sleep(self.retry_s)
        log.info("leader: %s holds lease %s/%s", self.identity, self.namespace, self.name)

    def renew_until(self, stop: threading.Event) -> None:
        """The renewal thread: renew every retry_s until `stop`, or until this instance is no
        longer sure to hold the Lease."""
        while not stop.wait(self.retry_s):
            self._safe_try()
            if not self.holds():
                return

    async def keep(self, poll_s: float = 0.25) -> None:
        """Renew on a thread of its own; raise LeaseLost as soon as `holds()` turns False."""
        stop = threading.Event()
        renewer = threading.Thread(
            target=self.renew_until, args=(stop,), name="lease-renewal", daemon=True
        )
        renewer.start()
        try:
            while self.holds():
                await asyncio.sleep(poll_s)
            raise LeaseLost(
                f"lease {self.namespace}/{self.name}: no successful renewal within "
                f"{self.renew_deadline_s:g}s; stepping down"
            )
        finally:
            stop.set()

    def release(self) -> None:
        """Give the Lease up on a clean stop, so a standby takes over at once. Best effort;
        nothing once this instance is no longer sure it holds the Lease (after LeaseLost)."""
        sure = self.holds()
        self._renewed_at = None
        if not sure:
            return
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
