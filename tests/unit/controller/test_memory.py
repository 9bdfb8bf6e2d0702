"""The tick's memory survives a restart through the status, stays small, and does not make
the operator write the status every tick."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from paretoscale.api.status import ModelDeploymentStatus, SwitchRecord
from paretoscale.controller.memory import (
    STATUS_REFRESH_S,
    refresh_interval_s,
    status_changed,
    tick_memory,
    with_memory,
)
from paretoscale.decide.forecast import DAY_S, ForecastMemory, observe, trend_chosen
from paretoscale.decide.learned import MAX_SAMPLES, LearnedProfile, Sample, fit
from paretoscale.decide.saturation import SaturationMemory
from paretoscale.tick.memory import RolledBack, TickMemory


def week_of_forecast() -> ForecastMemory:
    m = ForecastMemory()
    for k in range(int(7 * DAY_S / 30)):
        t = 1.7e9 + 30.0 * k
        m = observe(m, t, 3.0 + 2.0 * math.sin(t / 13751.0) + 0.01 * (k % 7), 630.0)
    return m


def test_saturation_and_forecast_survive_a_restart() -> None:
    sat = SaturationMemory("fp8", over_slo_ticks=1, waiting_ticks=2, last_waiting=7.0)
    m = TickMemory(saturation=sat, forecast=week_of_forecast())
    back = tick_memory(with_memory(ModelDeploymentStatus(), m))
    assert back.saturation == sat
    f, g = back.forecast, m.forecast
    assert f.slot == g.slot and f.errors == g.errors and f.at == g.at
    # the two forecasts' scores, so the one in use is the same after the restart
    assert g.error_rate is not None and g.error_trend is not None
    assert f.error_rate == pytest.approx(g.error_rate, rel=1e-3)
    assert f.error_trend == pytest.approx(g.error_trend, rel=1e-3)
    assert f.rate == pytest.approx(g.rate, rel=1e-3) and trend_chosen(f) == trend_chosen(g)
    assert f.level is not None and g.level is not None
    assert math.isclose(f.level, g.level, rel_tol=1e-3)
    assert all(
        (a is None and b is None)
        or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-3))
        for a, b in zip(f.profile, g.profile, strict=True)
    )


def test_the_process_memory_wins_over_the_last_written_status() -> None:
    old = with_memory(ModelDeploymentStatus(), TickMemory())
    fresh = TickMemory(saturation=SaturationMemory("fp8", 2, 0, 0.0, 0))
    assert tick_memory(old, fresh).saturation == fresh.saturation


def test_rolled_back_switches_come_from_last_switches() -> None:
    status = ModelDeploymentStatus(
        last_switches=[
            SwitchRecord(to_variant="fp8", at="2026-01-01T00:10:00Z", reason="late"),
            SwitchRecord(
                to_variant="bf16", at="2026-01-01T00:00:00Z", reason="slow", outcome="rolledBack"
            ),
        ]
    )
    assert tick_memory(status).rolled_back == (RolledBack("bf16", 1767225600.0, "slow"),)


def test_the_memory_keeps_the_status_under_4kb() -> None:
    m = TickMemory(
        saturation=SaturationMemory("bf16-draft-eagle3", 3, 2, 123.456789, 0),
        forecast=week_of_forecast(),
    )
    memory_doc = with_memory(ModelDeploymentStatus(), m).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    assert len(json.dumps(memory_doc)) < 4096


def test_a_forecast_that_only_moved_within_its_slot_is_not_written() -> None:
    f = week_of_forecast()
    old = with_memory(ModelDeploymentStatus(), TickMemory(forecast=f))
    assert f.at is not None
    later = observe(f, f.at + 30.0, 4.0, 630.0)
    assert later.slot == f.slot and later.level != f.level
    assert not status_changed(with_memory(ModelDeploymentStatus(), TickMemory(forecast=later)), old)
    next_slot = observe(later, later.at + 1800.0 if later.at else 0.0, 4.0, 630.0)
    new = with_memory(ModelDeploymentStatus(), TickMemory(forecast=next_slot))
    assert status_changed(new, old)
    counters = TickMemory(forecast=f, saturation=SaturationMemory("fp8", 1))
    assert status_changed(with_memory(ModelDeploymentStatus(), counters), old)


def _serving(rps: float, replicas: int = 2, reason: str = "Serving") -> ModelDeploymentStatus:
    return ModelDeploymentStatus.model_validate(
        {
            "activeVariant": "fp8",
            "replicas": replicas,
            "hourlyCost": f"${6.88 * replicas:.2f}",
            "observed": {"requestsPerSecond": rps, "basis": "live", "at": "2026-12-06T10:00:00Z"},
            "decision": {
                "variant": "fp8",
                "replicas": replicas,
                "action": "stay",
                "reasons": [f"serving {rps:.2f} req/s"],
                "at": "2026-12-06T10:00:00Z",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": reason,
                    "message": f"{rps:.2f} req/s",
                    "lastTransitionTime": "2026-12-06T09:00:00Z",
                }
            ],
        }
    )


def test_live_figures_alone_wait_for_the_refresh_interval() -> None:
    old, new = _serving(10.0), _serving(10.7)
    assert not status_changed(new, old, since_write_s=30.0, refresh_s=300.0)
    assert status_changed(new, old, since_write_s=300.0, refresh_s=300.0)
    assert status_changed(new, old)  # time of the last write unknown: write


def test_a_change_in_substance_is_written_at_once() -> None:
    old = _serving(10.0)
    assert status_changed(_serving(10.0, replicas=3), old, since_write_s=1.0)
    assert status_changed(_serving(10.0, reason="Degraded"), old, since_write_s=1.0)
    assert not status_changed(_serving(10.0), old, since_write_s=1000.0)  # nothing moved


def full_window(start: float = 1.7e9) -> LearnedProfile:
    samples = tuple(
        Sample(start + 30.0 * i, 9.0 + 0.01 * i, 8.43 + 0.001 * i, 0.5 + 0.001 * i, i % 9 == 0,
               0.75 if i % 2 else 1.0)
        for i in range(MAX_SAMPLES)
    )  # fmt: skip
    return LearnedProfile(15.9, samples)


def test_the_learned_profiles_survive_a_restart_and_show_declared_vs_learned() -> None:
    m = TickMemory(learned={"fp8": full_window()})
    status = with_memory(ModelDeploymentStatus(), m)
    shown = status.learned["fp8"]
    f = fit(m.learned["fp8"].samples)
    assert shown.declared_rps == 15.9
    assert shown.learned_rps == pytest.approx(15.9 * f.factor, rel=1e-2) and shown.learned_rps < 9
    assert shown.confidence == f.confidence > 0.9
    back = tick_memory(status).learned["fp8"]
    assert back.declared_rps == 15.9 and len(back.samples) == MAX_SAMPLES
    for a, b in zip(back.samples, m.learned["fp8"].samples, strict=True):
        assert a.at == b.at and a.bound == b.bound and a.weight == b.weight
        assert a.rate_rps == pytest.approx(b.rate_rps, rel=5e-3)
        assert a.factor == pytest.approx(b.factor, rel=5e-3)
    assert fit(back.samples).applied == pytest.approx(f.applied, rel=1e-2)
    # the process's newest samples win over the last written status, like the forecast's
    newer = TickMemory(learned={"fp8": full_window(1.8e9)})
    assert tick_memory(status, newer).learned == newer.learned


def test_a_full_window_keeps_the_status_small() -> None:
    doc = with_memory(ModelDeploymentStatus(), TickMemory(learned={"fp8": full_window()}))
    size = len(json.dumps(doc.model_dump(by_alias=True, exclude_none=True, mode="json")))
    assert size < 2560  # 64 samples: about 2.5 KB per variant that served


def test_figures_only_refreshes_of_a_fleet_started_together_spread_over_ticks() -> None:
    uids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(10_000)]
    intervals = [refresh_interval_s(u) for u in uids]
    assert all(STATUS_REFRESH_S <= s < 2 * STATUS_REFRESH_S for s in intervals)
    assert refresh_interval_s(uids[0]) == intervals[0]  # fixed per object
    # first written in one tick, due again over the ten 30 s ticks after 300 s, not in one
    per_tick = Counter(int(s // 30.0) for s in intervals)
    assert len(per_tick) == 10 and max(per_tick.values()) < 2 * len(uids) / 10


def test_a_pod_added_to_capacity_pending_is_written_at_once() -> None:
    def pending(*pods: str) -> ModelDeploymentStatus:
        message = f"{len(pods)} pod(s) Pending, unschedulable: " + "; ".join(pods)
        cond = {"type": "CapacityPending", "status": "True", "reason": "Unschedulable",
                "message": message, "lastTransitionTime": "2026-12-06T09:00:00Z"}  # fmt: skip
        return ModelDeploymentStatus.model_validate({"conditions": [cond]})

    old = pending("fp8-a", "fp8-b")
    assert status_changed(pending("fp8-a", "fp8-b", "fp8-c"), old, since_write_s=1.0)
    assert not status_changed(pending("fp8-a", "fp8-b"), old, since_write_s=1.0)
    # other conditions' words still wait for the refresh
    assert not status_changed(_serving(11.0), _serving(10.0), since_write_s=1.0)
