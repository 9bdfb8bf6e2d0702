"""Leader election on a Lease, against an in-memory Lease API (compare-and-swap on version)."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes import client

from paretoscale.controller.health import Health
from paretoscale.controller.leader import LeaderElector


class FakeLeases:
    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None
        self.version = 0

    def read_namespaced_lease(self, name: str, ns: str, **_: Any) -> client.V1Lease:
        if self.lease is None:
            raise client.ApiException(status=404)
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, ns: str, body: client.V1Lease, **_: Any) -> None:
        if self.lease is not None:
            raise client.ApiException(status=409)
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.lease = copy.deepcopy(body)

    def replace_namespaced_lease(self, name: str, ns: str, body: client.V1Lease, **_: Any) -> None:
        assert self.lease is not None
        if body.metadata.resource_version != self.lease.metadata.resource_version:
            raise client.ApiException(status=409)
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.lease = copy.deepcopy(body)


def elector(api: FakeLeases, identity: str, clock: list[float]) -> LeaderElector:
    e = LeaderElector(client.ApiClient(), "ns", "paretoscale", identity, clock=lambda: clock[0])
    e.api = api  # type: ignore[assignment]
    return e


def test_one_holder_takeover_after_expiry_and_release() -> None:
    api, t = FakeLeases(), [0.0]
    a, b = elector(api, "a", t), elector(api, "b", t)
    assert a.try_acquire() and not b.try_acquire()
    t[0] = 10.0
    assert a.try_acquire() and not b.try_acquire()  # a renews: b saw a change, waits again
    t[0] = 24.0
    assert not b.try_acquire()  # 14 s since b last saw a renewal
    t[0] = 26.0
    assert b.try_acquire()  # a silent for more than 15 s: b takes over
    assert api.lease is not None and api.lease.spec.holder_identity == "b"
    assert api.lease.spec.lease_transitions == 1
    b.release()
    assert api.lease.spec.holder_identity is None
    assert a.try_acquire()  # released: free at once


def test_health_standby_active_and_stale() -> None:
    t = [0.0]
    h = Health(stale_after_s=60, clock=lambda: t[0])
    assert h.status() == (200, "standby")
    h.active = True
    t[0] = 59.0
    assert h.status()[0] == 200
    t[0] = 61.0
    assert h.status()[0] == 503
    h.ticked()
    assert h.status() == (200, "ok")
