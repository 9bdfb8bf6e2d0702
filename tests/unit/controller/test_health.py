"""/healthz and /readyz answers, and the build_info metric."""

from __future__ import annotations

from prometheus_client import generate_latest

from paretoscale.controller.health import Health
from paretoscale.controller.metrics import OperatorMetrics, package_version


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_standby_is_alive_and_ready() -> None:
    h = Health(stale_after_s=60, clock=Clock())
    assert h.status() == (200, "standby") and h.readiness() == (200, "standby")


def test_active_is_ready_only_after_its_first_tick() -> None:
    clock = Clock()
    h = Health(stale_after_s=60, clock=clock)
    h.active = True
    assert h.status()[0] == 200  # alive while it lists
    assert h.readiness()[0] == 503
    h.ticked()
    assert h.readiness() == (200, "ok")


def test_a_wedged_loop_fails_liveness() -> None:
    clock = Clock()
    h = Health(stale_after_s=60, clock=clock)
    h.active = True
    h.ticked()
    clock.t = 61.0
    assert h.status()[0] == 503


def test_build_info_names_the_version() -> None:
    text = generate_latest(OperatorMetrics.create().registry).decode()
    assert f'version="{package_version()}"' in text
    assert "paretoscale_build_info{" in text and package_version() != "unknown"
