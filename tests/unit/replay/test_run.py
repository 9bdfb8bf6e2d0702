"""Whole replays on a small scenario: determinism, the oracle as a ceiling, accounting with
the real performance model."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.replay.demand import TokenPool, demand_from_rates
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.operator_policy import Paretoscale
from paretoscale.replay.perf import build_table
from paretoscale.replay.policies import StaticHpa, WvaSaturation
from paretoscale.replay.run import (
    Scenario,
    build_scenario,
    evict,
    run_oracle,
    run_policy,
)
from paretoscale.replay.traces import RateSeries

from .conftest import info

SHAPE = RateSeries(
    np.arange(6) * 600.0, np.full(6, 600.0), np.array([10.0, 30.0, 60.0, 20.0, 8.0, 8.0])
)
POOL = TokenPool(np.array([900.0, 1100.0, 1400.0, 400.0]), np.array([120.0, 180.0, 300.0, 60.0]))


@pytest.fixture(scope="module")
def scenario(assistant: ModelDeploymentSpec) -> Scenario:
    demand = demand_from_rates(SHAPE, 30.0, 3600.0, POOL, seed=3)
    return build_scenario(assistant, demand, None, {}, seed=3, cache={})


def test_same_seed_same_replay(scenario: Scenario, assistant: ModelDeploymentSpec) -> None:
    a = run_policy(scenario, Paretoscale(assistant))
    b = run_policy(scenario, Paretoscale(assistant))
    assert a.cost_usd.tolist() == b.cost_usd.tolist() and a.in_slo.tolist() == b.in_slo.tolist()
    demand = demand_from_rates(SHAPE, 30.0, 3600.0, POOL, seed=4)
    assert demand.arrivals.tolist() != scenario.demand.arrivals.tolist()


def test_oracle_is_a_ceiling(scenario: Scenario, assistant: ModelDeploymentSpec) -> None:
    oracle = run_oracle(scenario)
    net = float(oracle.value_usd.sum() - oracle.cost_usd.sum())
    for policy in (
        StaticHpa(assistant, "bf16"),
        StaticHpa(assistant, "fp8"),
        Paretoscale(assistant),
    ):
        run = run_policy(scenario, policy)
        assert float(run.value_usd.sum() - run.cost_usd.sum()) <= net + 1e-6


def test_static_accounting_with_the_perfmodel(
    scenario: Scenario, assistant: ModelDeploymentSpec
) -> None:
    run = run_policy(scenario, StaticHpa(assistant, "fp8"))
    expected = (run.replicas[:, 1] * 6.88 * 30 / 3600).sum()
    assert run.cost_usd.sum() == pytest.approx(expected, rel=1e-12)
    assert run.gpus.sum() == run.replicas[:, 1].sum()
    per_request = 0.40 / 1000 * 81.0 * 0.30
    assert run.value_usd.sum() == pytest.approx(run.in_slo.sum() * per_request, rel=1e-9)
    assert run.in_slo.sum() <= run.arrivals.sum()


def test_wva_runs_what_a_wva_user_deploys(
    scenario: Scenario, assistant: ModelDeploymentSpec
) -> None:
    run = run_policy(scenario, WvaSaturation(assistant))
    names = [v.name for v in assistant.variants]
    deployed = [names.index("bf16"), names.index("w4a16-l40s")]  # best quality, cheapest/capacity
    others = [i for i in range(len(names)) if i not in deployed]
    assert (run.replicas[:, deployed] >= 1).all()  # pre-deployed at minReplicas 1 each
    assert (run.replicas[:, others] == 0).all()


def test_latency_record_and_inventory_events(
    scenario: Scenario, assistant: ModelDeploymentSpec
) -> None:
    run = run_policy(scenario, StaticHpa(assistant, "fp8"))
    assert run.latency_vs_slo is not None and len(run.latency_vs_slo) == scenario.ticks
    assert np.all(run.latency_vs_slo[run.arrivals > 0] > 0)
    # H100 availability 1 GPU from tick 40 on: replicas beyond it are evicted, none added
    short = dataclasses.replace(scenario, inventory=((40, "H100", 1),))
    assert short.available_at("H100")[39] == 16 and short.available_at("H100")[40] == 1
    limited = run_policy(short, StaticHpa(assistant, "fp8"))
    assert limited.replicas[39, 1] > 1 and (limited.replicas[40:, 1] <= 1).all()
    assert limited.replicas[:40].tolist() == run.replicas[:40].tolist()
    oracle = run_oracle(short)
    h100 = [i for i, v in enumerate(assistant.variants) if v.gpu.type == "H100"]
    assert (oracle.replicas[40:, h100].sum(axis=1) <= 1).all()  # fits the per-tick inventory
    assert oracle.replicas[:40, h100].sum(axis=1).max() > 1


def test_real_table_is_within_slo_at_low_load(assistant: ModelDeploymentSpec) -> None:
    table = build_table(assistant, assistant.variants[1], POOL)
    assert table.slo_share[0][0] == 1.0 and table.slo_share[0][-1] < 1.0
    lat = table.latency_pct_s[0]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(lat))


def test_slower_reality_costs_capacity(assistant: ModelDeploymentSpec) -> None:
    fast = build_table(assistant, assistant.variants[1], POOL)
    slow = build_table(assistant, assistant.variants[1], POOL, speed=0.8)
    assert slow.max_rps[0] == pytest.approx(fast.max_rps[0] * 0.8, rel=1e-6)


def test_evict_frees_gpus_from_unserved_variants_first() -> None:
    variants = [info("a", gpus=1), info("b", gpus=2), info("c", gpus=1)]
    target = FleetTarget({"a": 3, "b": 2, "c": 1}, ("a",))
    out = evict(target, (3, 2, 1), variants, {"H100": 4})  # 3 + 4 + 1 = 8 GPUs held
    assert out.replicas == {"a": 3, "b": 0, "c": 0}  # unserved ones, last in spec order first
    out = evict(target, (3, 2, 1), variants, {"H100": 2})
    assert out.replicas == {"a": 2, "b": 0, "c": 0}
    grow = FleetTarget({"a": 5}, ("a",))  # wanting more than exists is left to apply_target
    assert evict(grow, (2, 0, 0), variants, {"H100": 4}).replicas == {"a": 5}
