"""The report's figures against a fixed choice: headroom captured, GPU cost vs the best
static policy, latency at the SLO percentile, and how they show when they cannot be had."""

from __future__ import annotations

import numpy as np
import pytest

from paretoscale.replay.report import (
    average,
    headroom_captured,
    summarize,
    table,
    to_json,
    weighted_quantile,
)
from paretoscale.replay.run import PolicyRun


def run(name: str, value: float, cost: float, latency: list[float] | None = None) -> PolicyRun:
    """A 4-tick run earning `value` and spending `cost` USD in total, 10 requests a tick."""
    n = 4
    return PolicyRun(
        name, np.full(n, 10.0), np.full(n, 10.0), np.full(n, cost / n), np.full(n, value / n),
        np.ones(n), np.ones((n, 1), dtype=np.int64), np.zeros(n, dtype=np.int64), 0, (),
        None if latency is None else np.array(latency),
    )  # fmt: skip


def test_headroom_math() -> None:
    assert headroom_captured(150.0, 100.0, 200.0) == pytest.approx(0.5)
    assert headroom_captured(200.0, 100.0, 200.0) == pytest.approx(1.0)
    assert headroom_captured(100.0, 100.0, 200.0) == 0.0
    assert headroom_captured(50.0, 100.0, 200.0) == pytest.approx(-0.5)  # worse than fixed
    assert headroom_captured(50.0, 100.0, 100.0) is None  # nothing to capture
    assert headroom_captured(50.0, 100.0, 100.0 + 1e-6) is None  # ~0 gap
    assert headroom_captured(50.0, 100.0, 90.0) is None  # oracle below the static policy


def test_summary_against_the_best_static_policy() -> None:
    runs = [
        run("static:a+hpa (best quality)", 1000.0, 100.0),  # net 900
        run("static:b+hpa (cheapest)", 1000.0, 50.0),  # net 950: the best static
        run("paretoscale", 1000.0, 25.0, [0.5, 0.6, 0.7, 1.2]),  # net 975
        run("keda-queue:a", 800.0, 100.0),  # net 700
        run("oracle", 1000.0, 0.0),  # net 1000
    ]
    rows = {r.policy: r for r in summarize(runs, 30.0)}
    assert all(r.best_static_net_value_usd == pytest.approx(950.0) for r in rows.values())
    assert rows["paretoscale"].headroom_captured == pytest.approx(0.5)
    assert rows["keda-queue:a"].headroom_captured == pytest.approx(-5.0)
    assert rows["oracle"].headroom_captured == pytest.approx(1.0)
    assert rows["static:b+hpa (cheapest)"].headroom_captured == 0.0
    assert rows["paretoscale"].gpu_cost_vs_best_static == pytest.approx(0.5)
    assert rows["static:a+hpa (best quality)"].gpu_cost_vs_best_static == pytest.approx(2.0)
    # p95 of the per-tick values, equal weights: the 4th smallest (cumulative 40 >= 38)
    assert rows["paretoscale"].p95_latency_vs_slo == pytest.approx(1.2)
    assert rows["oracle"].p95_latency_vs_slo is None
    doc = to_json(list(rows.values()))["policies"]
    pareto = next(d for d in doc if d["policy"] == "paretoscale")
    assert pareto["headroomCaptured"] == pytest.approx(0.5)
    assert pareto["bestStaticNetValue"] == pytest.approx(950.0)
    assert pareto["gpuCostVsBestStatic"] == pytest.approx(0.5)
    assert pareto["p95LatencyVsSlo"] == pytest.approx(1.2)
    text = table("t", list(rows.values()))
    assert "HEADROOM" in text and "best static net value 950" in text


def test_without_static_policies_or_oracle_headroom_is_none() -> None:
    rows = summarize([run("paretoscale", 10.0, 1.0), run("oracle", 12.0, 1.0)], 30.0)
    assert all(r.headroom_captured is None and r.best_static_net_value_usd is None for r in rows)
    assert "no static:*+hpa policy" in table("t", rows)
    rows = summarize([run("static:a+hpa", 10.0, 1.0), run("paretoscale", 11.0, 1.0)], 30.0)
    assert all(r.headroom_captured is None for r in rows)
    assert rows[1].gpu_cost_vs_best_static == pytest.approx(1.0)
    assert "no oracle in the run" in table("t", rows)
    assert to_json(rows)["policies"][1]["headroomCaptured"] is None


def test_weighted_quantile() -> None:
    values = np.array([3.0, 1.0, np.nan, 2.0])
    weights = np.array([1.0, 1.0, 5.0, 8.0])
    assert weighted_quantile(values, weights, 0.5) == 2.0  # weights 1 (1.0), 8 (2.0), 1 (3.0)
    assert weighted_quantile(values, weights, 0.95) == 3.0
    assert weighted_quantile(values, np.zeros(4), 0.95) is None
    assert weighted_quantile(np.array([1.0, np.inf]), np.ones(2), 0.95) == np.inf


def test_average_over_seeds_weighs_each_seed_the_same() -> None:
    seed1 = summarize([run("static:a+hpa", 200.0, 100.0), run("p", 150.0, 40.0),
                       run("oracle", 200.0, 0.0)], 30.0)  # fmt: skip
    seed2 = summarize([run("static:a+hpa", 400.0, 100.0), run("p", 300.0, 40.0),
                       run("oracle", 500.0, 0.0)], 30.0)  # fmt: skip
    p1, p2 = seed1[1].headroom_captured, seed2[1].headroom_captured
    assert p1 == pytest.approx(0.1) and p2 == pytest.approx(-0.2)
    mean = {s.policy: s for s in average([seed1, seed2])}
    assert mean["p"].headroom_captured == pytest.approx(-0.05)  # not the ratio of the means
    assert mean["p"].headroom_by_seed == (p1, p2)
    assert mean["p"].net_value_usd == pytest.approx((110.0 + 260.0) / 2)
    assert mean["static:a+hpa"].gpu_cost_vs_best_static == pytest.approx(1.0)
    assert to_json(average([seed1, seed2]))["policies"][1]["headroomBySeed"] == [
        pytest.approx(0.1),
        pytest.approx(-0.2),
    ]
    assert "headroomBySeed" not in to_json(seed1)["policies"][1]


def test_average_refuses_seeds_that_ran_different_policies() -> None:
    a = summarize([run("static:a+hpa", 200.0, 100.0), run("oracle", 300.0, 0.0)], 30.0)
    b = summarize([run("static:b+hpa", 200.0, 100.0), run("oracle", 300.0, 0.0)], 30.0)
    with pytest.raises(ValueError, match="disagree"):
        average([a, b])
