"""Profiles that learn, on a short replay: a variant whose declared profile is about 2x
optimistic (reality runs fp8 at 0.4x the perfmodel's speed: at the Azure conversation mix,
half the capacity at the SLO its profile declares) converges to its real capacity within an hour of serving, and loses no
more of the SLO than deciding on the declared profile does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.cli import main
from paretoscale.replay.calibrate import compare
from paretoscale.replay.demand import (
    AZURE_CONV_OUTPUT_MEAN,
    AZURE_CONV_PROMPT_MEAN,
    TokenPool,
    demand_from_rates,
)
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.operator_policy import OperatorMemory, Paretoscale
from paretoscale.replay.policies import TickInput
from paretoscale.replay.run import PolicyRun, Scenario, build_scenario, run_policy
from paretoscale.replay.traces import RateSeries

from .conftest import ASSISTANT

HOUR = 3600.0
SHAPE = RateSeries(np.arange(9) * 600.0, np.full(9, 600.0), np.full(9, 40.0))
POOL = TokenPool.constant(AZURE_CONV_PROMPT_MEAN, AZURE_CONV_OUTPUT_MEAN)


@dataclass
class Recorded:
    """Paretoscale, recording fp8's learned factor after every tick."""

    inner: Paretoscale
    factors: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def needs_histograms(self) -> bool:
        return True

    def decide(self, tick_in: TickInput) -> FleetTarget:
        out = self.inner.decide(tick_in)
        assert isinstance(out.memory, OperatorMemory)
        self.factors.append((tick_in.now_s, out.memory.corrections.get("fp8", 1.0)))
        return out


@pytest.fixture(scope="module")
def scenario(assistant: ModelDeploymentSpec) -> Scenario:
    demand = demand_from_rates(SHAPE, 30.0, 1.5 * HOUR, POOL, seed=5)
    return build_scenario(assistant, demand, None, {"fp8": 0.4}, seed=5, cache={})


def attainment(run: PolicyRun) -> float:
    return float(run.in_slo.sum() / run.arrivals.sum())


def test_a_2x_optimistic_profile_converges_within_an_hour(
    assistant: ModelDeploymentSpec, scenario: Scenario
) -> None:
    names = [v.name for v in assistant.variants]
    gaps = compare(assistant, dict(zip(names, scenario.tables, strict=True)))
    fp8 = next(g for g in gaps if g.variant == "fp8")
    real = fp8.perfmodel_capacity_rps / fp8.declared_capacity_rps
    assert 0.45 < real < 0.55  # the declared profile is 2x optimistic

    learning = Recorded(Paretoscale(assistant))
    run = run_policy(scenario, learning)
    first = run.primary[0]
    assert names[first] == "fp8"  # it starts on the declared profile's favourite
    after_hour = [f for t, f in learning.factors if t >= HOUR]
    assert after_hour and all(abs(f / real - 1) <= 0.25 for f in after_hour)

    declared = run_policy(scenario, Paretoscale(assistant, correction=False))
    assert attainment(run) >= attainment(declared)


def test_profiles_learned_is_the_operator_as_shipped_and_declared_does_not_learn(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shape = tmp_path / "shape.csv"
    shape.write_text("window_start_s,rate_rps\n" + "".join(f"{600 * i},40\n" for i in range(9)))
    base = ["replay", "-f", str(ASSISTANT), "--rate-series", str(shape), "--peak-rps", "40",
            "--reality-speed", "fp8=0.4", "--policy", "paretoscale", "-o", "json"]  # fmt: skip
    got = {}
    for basis in ("learned", "declared", None):
        assert main([*base, "--profiles", basis] if basis else base) == 0
        (p,) = json.loads(capsys.readouterr().out)["policies"]
        got[basis] = p
    assert got[None] == got["learned"]  # the default
    assert any("fp8 x0." in n for n in got["learned"]["notes"])
    assert not any("capacity factors" in n for n in got["declared"]["notes"])
    assert got["learned"]["sloAttainment"] > got["declared"]["sloAttainment"]
