"""Leadership that cannot split: the holder is sure of the Lease only until its renew
deadline on the monotonic clock, every write asks first, and a standby can take over only
after the holder has stopped writing. Clocks are injected (a real clock step cannot be made
in a unit test; the monotonic clock is what every deadline reads)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from paretoscale.actuate.kube import Kube, WriteRefused
from paretoscale.config import OperatorSettings
from paretoscale.controller.leader import LeaderElector, LeaseLost
from tests.unit.controller.test_leader import FakeLeases


class StallingLeases(FakeLeases):
    """FakeLeases whose calls from `stalled` identities fail (a timeout, as a stalled API)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled: set[str] = set()
        self.caller = ""

    def replace_namespaced_lease(self, name: str, ns: str, body: client.V1Lease, **_: Any) -> None:
        if self.caller in self.stalled:
            raise TimeoutError("read timed out")
        super().replace_namespaced_lease(name, ns, body)


def elector(
    api: StallingLeases, identity: str, mono: list[float], wall: list[datetime]
) -> LeaderElector:
    e = LeaderElector(
        client.ApiClient(),
        "ns",
        "paretoscale",
        identity,
        duration_s=15,
        renew_deadline_s=10,
        retry_s=2,
        clock=lambda: mono[0],
        wall=lambda: wall[0],
    )
    e.api = api  # type: ignore[assignment]
    return e


def attempt(api: StallingLeases, e: LeaderElector) -> bool:
    api.caller = e.identity
    return e._safe_try()


def test_a_stalled_leader_stops_writing_before_the_standby_takes_over() -> None:
    """Tick the shared monotonic clock by the retry interval: at no instant are both sure."""
    api, mono, wall = StallingLeases(), [0.0], [datetime(2026, 1, 1, tzinfo=UTC)]
    a, b = elector(api, "a", mono, wall), elector(api, "b", mono, wall)
    assert attempt(api, a) and a.holds() and not attempt(api, b)
    api.stalled.add("a")  # from now on a's renewals hang and time out
    a_stopped_at = b_took_at = None
    while b_took_at is None:
        mono[0] += 0.5
        wall[0] += timedelta(seconds=0.5)
        if mono[0] % 2 == 0:
            attempt(api, a)
            if attempt(api, b):
                b_took_at = mono[0]
        if not a.holds() and a_stopped_at is None:
            a_stopped_at = mono[0]
        assert not (a.holds() and b_took_at is not None), "two leaders"
    assert a_stopped_at is not None and a_stopped_at <= 10.0 < b_took_at


def test_a_wall_clock_stepped_back_does_not_extend_leadership() -> None:
    """The renew deadline reads the monotonic clock: the wall clock jumping back an hour (NTP
    step) while renewals fail changes nothing."""
    api, mono, wall = StallingLeases(), [0.0], [datetime(2026, 1, 1, 12, tzinfo=UTC)]
    a = elector(api, "a", mono, wall)
    assert attempt(api, a)
    api.stalled.add("a")
    wall[0] -= timedelta(hours=1)
    mono[0] = 9.9
    assert a.holds()
    mono[0] = 10.0
    assert not a.holds()


def test_a_wall_clock_stepped_back_on_the_standby_does_not_shorten_the_lease() -> None:
    """The standby judges expiry by when it saw the Lease change on its monotonic clock,
    not by the holder's renewTime against its own (stepped) wall clock."""
    api, mono, wall = StallingLeases(), [0.0], [datetime(2026, 1, 1, 12, tzinfo=UTC)]
    a = elector(api, "a", mono, wall)
    b_wall = [wall[0] + timedelta(hours=2)]  # b's wall clock far ahead: the renewTime looks old
    b = elector(api, "b", mono, b_wall)
    assert attempt(api, a) and not attempt(api, b)
    mono[0] = 14.0
    assert not attempt(api, b)


def test_every_write_asks_first_and_sends_nothing_when_refused() -> None:
    kube = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")), 1.0)
    kube.may_write = lambda: False
    md = {"metadata": {"name": "a", "namespace": "n"}, "kind": "ModelDeployment"}
    with pytest.raises(WriteRefused):
        kube.apply({"kind": "Service", "metadata": {"name": "a", "namespace": "n"}})
    with pytest.raises(WriteRefused):
        kube.delete_deployment("n", "a")
    with pytest.raises(WriteRefused):
        kube.post_event(md, "Normal", "Scaled", "x")
    with pytest.raises(WriteRefused):
        kube.replace_status("n", "a", {}, "1")


def test_keep_steps_down_when_renewals_fail() -> None:
    """The renewal thread keeps failing: keep() raises LeaseLost (real clocks, short
    deadlines; the bound is only a guard against hanging)."""
    api = StallingLeases()
    e = LeaderElector(client.ApiClient(), "ns", "l", "a", 1.0, 0.2, 0.05)
    e.api = api  # type: ignore[assignment]
    api.caller = "a"
    assert e.try_acquire()
    api.stalled.add("a")

    async def run() -> None:
        await asyncio.wait_for(e.keep(poll_s=0.01), timeout=30)

    with pytest.raises(LeaseLost):
        asyncio.run(run())


def test_settings_keep_api_calls_inside_the_lease_margin() -> None:
    s = OperatorSettings()
    assert (
        s.api_timeout_seconds
        <= s.lease_duration_seconds - s.lease_renew_deadline_seconds
        < s.lease_renew_deadline_seconds
    )
    with pytest.raises(ValueError):
        OperatorSettings(api_timeout_seconds=8)  # a write could land after the takeover
    with pytest.raises(ValueError):
        OperatorSettings(lease_renew_deadline_seconds=20)


def test_no_release_once_no_longer_sure() -> None:
    """After stepping down the Lease is left to expire: releasing it would be a write from
    an instance that is not sure it still leads."""
    api, mono, wall = StallingLeases(), [0.0], [datetime(2026, 1, 1, tzinfo=UTC)]
    a = elector(api, "a", mono, wall)
    assert attempt(api, a)
    mono[0] = 10.0
    a.release()
    assert api.lease is not None and api.lease.spec.holder_identity == "a"
