"""The paretoscale policy drives the operator's own rollout machine: target scaled up, both
serve while verifying, the old variant drained after the grace period; rollback on timeout
or failed analysis, and no retry within the dwell; the live correction from the view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.learned import PRIOR_WEIGHT
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.observe import PromView, Scrapes
from paretoscale.replay.operator_policy import OperatorMemory, Paretoscale
from paretoscale.replay.policies import TickInput
from paretoscale.rollout.machine import RolloutState
from paretoscale.tick.memory import TickMemory

NAMES = ("bf16", "fp8", "w4a16-l40s", "bf16-eagle3")


def at(
    rate: float,
    now: float,
    memory: object,
    existing: dict[str, int],
    ready: dict[str, int] | None = None,
    view: PromView | None = None,
) -> TickInput:
    if view is None:
        scrapes = Scrapes(1, 4, (1.0,), True, seed=0)
        view = PromView(scrapes, 0, 30.0, 1, 4, rate)
    ready = existing if ready is None else ready
    return TickInput(
        int(now // 30), now, view, tuple(existing.get(n, 0) for n in NAMES),
        tuple(ready.get(n, 0) for n in NAMES), {}, memory,
    )  # fmt: skip


def memory(out: FleetTarget) -> OperatorMemory:
    assert isinstance(out.memory, OperatorMemory)
    return out.memory


@pytest.fixture()
def on_l40s(assistant: ModelDeploymentSpec) -> OperatorMemory:
    """The first rollout at 2 req/s, through the machine: w4a16-l40s x 1, Stable at 120 s."""
    ps, l40s = Paretoscale(assistant, cold_start=True), {"w4a16-l40s": 1}
    out = ps.decide(at(2.0, 0.0, None, {}))
    assert out.replicas == l40s and out.serving == ("w4a16-l40s",)
    for t in (30.0, 90.0, 120.0):
        out = ps.decide(at(2.0, t, out.memory, l40s))
    m = memory(out)
    assert m.rollout.phase == "Stable" and m.rollout.active == "w4a16-l40s"
    assert m.variant_since == 120.0 and m.switches == 0
    return m


def test_warm_start_is_stable_at_once(assistant: ModelDeploymentSpec) -> None:
    out = Paretoscale(assistant).decide(at(12.0, 0.0, None, {}))
    assert out.replicas == {"fp8": 1} and out.serving == ("fp8",)
    m = memory(out)
    assert m.rollout.phase == "Stable" and m.rollout.active == "fp8" and m.variant_since == 0.0


def fp8_verified() -> PromView:
    """fp8 served 40 requests since its replicas became Ready, p95 within the 8 s SLO."""
    scrapes = Scrapes(12, 4, (8.0, 16.0), True, seed=0)
    assert scrapes.hist is not None
    scrapes.ready[9, 1] = 8
    scrapes.completions[9, 1] = 40
    scrapes.hist[9, 1] = [40, 0, 0]
    return PromView(scrapes, 11, 30.0, 1, 4, 100.0)


def test_a_target_without_traffic_is_not_switched_to(
    assistant: ModelDeploymentSpec, on_l40s: OperatorMemory
) -> None:
    """Fail-closed: past the verify window with no series for fp8, the Service stays on both
    variants; at the verification deadline the rollout rolls back and says why."""
    ps, both = Paretoscale(assistant), {"w4a16-l40s": 1, "fp8": 8}
    out = ps.decide(at(100.0, 2000.0, on_l40s, {"w4a16-l40s": 1}))
    out = ps.decide(at(100.0, 2330.0, out.memory, both))
    since = memory(out).rollout.phase_since
    assert since is not None and memory(out).rollout.phase == "Verifying"
    out = ps.decide(at(100.0, since + 300.0, out.memory, both))
    assert out.serving == ("w4a16-l40s", "fp8") and memory(out).switches == 0
    deadline = since + assistant.rollout.verify_timeout_seconds
    out = ps.decide(at(100.0, deadline, out.memory, both))
    assert out.serving == ("w4a16-l40s",) and memory(out).rollbacks == 1
    assert "no metrics" in memory(out).rollout.message


def test_switch_goes_through_prepare_verify_switch_drain(
    assistant: ModelDeploymentSpec, on_l40s: OperatorMemory
) -> None:
    ps, both = Paretoscale(assistant), {"w4a16-l40s": 1, "fp8": 8}
    # 100 req/s, past the 1,800 s dwell: fp8 x 8 is the best; the L40S cannot serve it
    out = ps.decide(at(100.0, 2000.0, on_l40s, {"w4a16-l40s": 1}))
    assert out.replicas == both and out.serving == ("w4a16-l40s",)
    out = ps.decide(at(100.0, 2030.0, out.memory, both, {"w4a16-l40s": 1}))
    assert out.serving == ("w4a16-l40s",)  # fp8 still loading
    out = ps.decide(at(100.0, 2330.0, out.memory, both))
    assert out.serving == ("w4a16-l40s", "fp8")  # Ready: verifying, both serve
    out = ps.decide(at(100.0, 2390.0, out.memory, both, view=fp8_verified()))
    assert out.serving == ("fp8",) and out.replicas == both  # switching
    out = ps.decide(at(100.0, 2420.0, out.memory, both))
    assert out.serving == ("fp8",) and out.replicas == both  # draining, 0 of 60 s
    out = ps.decide(at(100.0, 2450.0, out.memory, both))
    assert out.replicas == both
    out = ps.decide(at(100.0, 2480.0, out.memory, both))
    assert out.replicas == {"w4a16-l40s": 0, "fp8": 8} and out.serving == ("fp8",)
    m = memory(out)
    assert m.rollout.active == "fp8" and m.switches == 1 and m.variant_since == 2480.0


def test_target_not_ready_in_time_rolls_back_and_is_not_retried(
    assistant: ModelDeploymentSpec, on_l40s: OperatorMemory
) -> None:
    ps = Paretoscale(assistant)
    out = ps.decide(at(100.0, 2000.0, on_l40s, {"w4a16-l40s": 1}))
    stuck = {"w4a16-l40s": 1, "fp8": 8}
    out = ps.decide(at(100.0, 3201.0, out.memory, stuck, {"w4a16-l40s": 1}))
    assert out.replicas == {"w4a16-l40s": 1, "fp8": 0} and out.serving == ("w4a16-l40s",)
    m = memory(out)
    assert m.rollbacks == 1 and m.switches == 0 and m.variant_since == 3201.0
    out = ps.decide(at(100.0, 3231.0, m, {"w4a16-l40s": 1, "fp8": 0}))
    assert out.replicas.get("fp8", 0) == 0  # blocked for the dwell; the L40S cannot serve: another
    assert memory(out).rollout.target not in (None, "fp8")


def test_failed_verification_rolls_back(
    assistant: ModelDeploymentSpec, on_l40s: OperatorMemory
) -> None:
    ps, both = Paretoscale(assistant), {"w4a16-l40s": 1, "fp8": 8}
    out = ps.decide(at(100.0, 2000.0, on_l40s, {"w4a16-l40s": 1}))
    out = ps.decide(at(100.0, 2300.0, out.memory, both))
    assert out.serving == ("w4a16-l40s", "fp8")  # verifying
    # fp8's p95 from its histogram: 40 requests in (8, 16] -> 15.6 s > the 8 s SLO
    scrapes = Scrapes(12, 4, (8.0, 16.0), True, seed=0)
    assert scrapes.hist is not None
    scrapes.completions[9, 1] = 40
    scrapes.hist[9, 1] = [0, 40, 0]
    view = PromView(scrapes, 11, 30.0, 1, 4, 100.0)
    out = ps.decide(at(100.0, 2330.0, out.memory, both, view=view))
    assert out.replicas == {"w4a16-l40s": 1, "fp8": 0} and out.serving == ("w4a16-l40s",)
    assert memory(out).rollbacks == 1


def test_live_correction_is_the_operators(assistant: ModelDeploymentSpec) -> None:
    # fp8 x 2 Ready: 14 req/s per replica with every request in (4, 5] (p95 4.95 s), where
    # the profile predicts 7.0 s: reality reaches 5 s past 14 req/s, the profile at 10.19
    scrapes = Scrapes(20, 4, (4.0, 5.0, 10.0), True, seed=0)  # 8 s SLO: not an edge
    scrapes.rate_noise[:] = 1.0
    scrapes.ready[:, 1] = 2
    scrapes.completions[:, 1] = 2 * 14.0 * 30
    assert scrapes.hist is not None
    scrapes.hist[:, 1] = [0, 840, 0, 0]  # every request in (4, 5]: p95 = 4 + 0.95 = 4.95
    view = PromView(scrapes, 19, 30.0, 1, 4, 28.0)
    m = OperatorMemory(TickMemory(RolloutState("Stable", "fp8"), variant_since=0.0), {"fp8": 2})
    out = Paretoscale(assistant).decide(at(28.0, 570.0, m, {"fp8": 2}, view=view))
    measured = 14.0 / (10 + 0.1 / 4.2 * 8)  # bucket_factor: 14 / R(5)
    (sample,) = memory(out).tick.learned["fp8"].samples
    assert sample.factor == pytest.approx(measured, abs=1e-4) and not sample.bound
    assert sample.at == 570.0 and sample.latency_s == pytest.approx(4.95)
    # one sample: the decision follows it by its confidence w / (w + prior), w = 4.95 / 8
    w = 4.95 / 8
    expected = math.exp(math.log(measured) * w / (w + PRIOR_WEIGHT))
    assert memory(out).corrections["fp8"] == pytest.approx(expected, abs=1e-4)
    off = Paretoscale(assistant, correction=False).decide(at(28.0, 570.0, m, {"fp8": 2}, view=view))
    assert memory(off).corrections == {}
    assert np.isfinite(measured)
