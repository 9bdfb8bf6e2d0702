"""The fleet's accounting on tiny cases computed by hand (one variant, constant load)."""

from __future__ import annotations

import pytest

from paretoscale.economics.value import value_per_hour_usd
from paretoscale.replay.fleet import Fleet, FleetTarget, apply_target, serve, startup_ticks, step

from .conftest import economy, flat_table, info

PRICE = 6.88


def run_constant(rps: float, replicas: int, ticks: int, table=None, warm=True, startup=10, gpus=1):
    table = table or flat_table(max_rps=10.0)
    eco = economy()
    fleet = Fleet.empty(1)
    target = FleetTarget({"v": replicas}, ("v",))
    results = []
    for k in range(ticks):
        fleet, res = step(
            fleet, target, k, rps * eco.tick_s, 0, [PRICE], [info(gpus=gpus, startup_ticks=startup)],
            [table], {"H100": 100}, eco, warm=warm and k == 0,
        )  # fmt: skip
        results.append(res)
    return results


def test_cost_is_replicas_gpus_price_hours_exactly() -> None:
    results = run_constant(rps=5.0, replicas=2, ticks=120, gpus=2)
    hours = 120 * 30 / 3600
    assert sum(r.cost_usd for r in results) == pytest.approx(2 * 2 * PRICE * hours, rel=1e-12)
    assert all(r.gpus == 4 for r in results)


def test_value_formula_and_full_attainment_well_under_capacity() -> None:
    results = run_constant(rps=5.0, replicas=2, ticks=10)
    # 150 requests a tick, all within the SLO: 0.40 / 1000 x 80 points x 0.30 = $0.0096 each
    assert [r.in_slo for r in results] == [150.0] * 10
    assert results[0].value_usd == pytest.approx(150 * 0.0096, rel=1e-12)
    assert results[0].value_usd == pytest.approx(
        value_per_hour_usd(5.0, 0.40, 0.8, 0.30) * 30 / 3600, rel=1e-12
    )


def test_no_value_over_capacity_without_slack() -> None:
    # limit latency 10 s > SLO 8 s: any queued request is late; 30 req/s > 2 x 10 req/s
    table = flat_table(max_rps=10.0, limit_latency_s=10.0)
    results = run_constant(rps=30.0, replicas=2, ticks=5, table=table)
    assert all(r.in_slo == 0.0 and r.value_usd == 0.0 for r in results)
    assert results[0].cost_usd == pytest.approx(2 * PRICE * 30 / 3600)


def test_queue_grows_then_times_out() -> None:
    eco = economy(timeout_s=60.0)
    table = flat_table(max_rps=10.0, limit_latency_s=10.0)
    s = serve(table, 0, 1, 600.0, 0.0, eco)  # 20 req/s on 10 req/s for 30 s
    assert s.served == pytest.approx(300.0) and s.queue_end == pytest.approx(300.0)
    s = serve(table, 0, 1, 600.0, s.queue_end, eco)  # queue would reach 600 > 10 x 60
    assert s.queue_end == pytest.approx(600.0) and s.dropped == pytest.approx(0.0)
    s = serve(table, 0, 1, 600.0, s.queue_end, eco)
    assert s.queue_end == pytest.approx(600.0) and s.dropped == pytest.approx(300.0)


def test_slack_lets_the_first_seconds_of_an_overload_through() -> None:
    # slack = 8 - 6 = 2 s; a queue growing at 10 req/s on M = 10 req/s reaches 2 s of wait
    # (20 requests) after 2 s: 2/30 of the tick's arrivals are on time.
    table = flat_table(max_rps=10.0, limit_latency_s=6.0)
    s = serve(table, 0, 1, 600.0, 0.0, economy())
    assert s.in_slo == pytest.approx(600.0 * 2.0 / 30.0)


def test_startup_delay_costs_but_does_not_serve() -> None:
    results = run_constant(rps=5.0, replicas=2, ticks=12, warm=False, startup=10)
    assert [r.ready[0] for r in results] == [0] * 10 + [2, 2]
    assert results[0].cost_usd == pytest.approx(2 * PRICE * 30 / 3600)
    assert results[0].in_slo == 0.0 and results[10].in_slo == 150.0
    assert (
        startup_ticks(300, 30) == 10 and startup_ticks(301, 30) == 11 and startup_ticks(0, 30) == 0
    )


def test_inventory_leaves_replicas_pending_and_free() -> None:
    fleet = apply_target(
        Fleet.empty(1), FleetTarget({"v": 3}, ("v",)), [info(gpus=2)], {"H100": 5}, 0, False
    )
    assert fleet.existing(0) == 2  # 5 GPUs hold two 2-GPU replicas; the third stays Pending


def test_scale_down_removes_loading_replicas_first() -> None:
    fleet = Fleet(((0, 0, 15),), (0.0,))
    fleet = apply_target(fleet, FleetTarget({"v": 2}, ("v",)), [info()], {"H100": 9}, 5, False)
    assert fleet.ready_at == ((0, 0),)


def test_routing_by_pods_and_by_capacity() -> None:
    eco = economy()
    fast, slow = flat_table("a", max_rps=30.0), flat_table("b", max_rps=10.0)
    fleet = Fleet(((0,), (0,)), (0.0, 0.0))
    for routing, share_a in (("pods", 0.5), ("capacity", 0.75)):
        _, res = step(
            fleet, FleetTarget({"a": 1, "b": 1}, ("a", "b"), routing), 1, 300.0, 0,
            [1.0, 1.0], [info("a"), info("b")], [fast, slow], {"H100": 9}, eco,
        )  # fmt: skip
        assert res.served[0] is not None
        assert res.served[0].arrivals == pytest.approx(300.0 * share_a)
