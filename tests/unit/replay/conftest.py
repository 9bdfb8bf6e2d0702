"""Hand-made perf tables and specs for replay tests: figures a reader can check by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.replay.fleet import Economy, VariantInfo
from paretoscale.replay.perf import BUCKETS_S, GRID_POINTS, PerfTable, load_grid

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "examples"
ASSISTANT = EXAMPLES / "assistant-llama-8b.yaml"


def flat_table(
    name: str = "v",
    max_rps: float = 10.0,
    share_until_x: float = 1.0,
    slo_s: float = 8.0,
    limit_latency_s: float = 6.0,
    limit_share: float = 1.0,
    kv_at_limit: float = 0.5,
    waiting_at_limit: float = 0.0,
) -> PerfTable:
    """A replica with throughput limit max_rps, every request within the SLO below
    share_until_x of it and none above; KV usage and waiting rise linearly with load."""
    xs = list(load_grid())
    share = tuple(1.0 if x <= share_until_x else 0.0 for x in xs)
    lat = tuple(1.0 + 4.0 * x for x in xs)
    kv = tuple(kv_at_limit * x for x in xs)
    wait = tuple(waiting_at_limit * x for x in xs)
    edges = BUCKETS_S["e2e"]
    cdf = tuple(tuple(1.0 if e >= 2.0 else 0.0 for e in edges) for _ in xs)
    assert len(xs) == GRID_POINTS
    return PerfTable(
        variant=name, metric="e2e", slo_s=slo_s, percentile=95.0, scales=(1.0,),
        max_rps=(max_rps,), slo_share=(share,), latency_pct_s=(lat,), kv_usage=(kv,),
        waiting=(wait,), running=(tuple(10.0 * x for x in xs),), bucket_cdf=(cdf,),
        limit_latency_s=(limit_latency_s,), limit_share=(limit_share,),
    )  # fmt: skip


def economy(tick_s: float = 30.0, slack: bool = True, timeout_s: float = 120.0) -> Economy:
    return Economy(
        tick_s=tick_s, usd_per_1k_per_point=0.40, calibration=0.30, slo_s=8.0,
        queue_slack_applies=slack, queue_timeout_s=timeout_s,
    )  # fmt: skip


def info(
    name: str = "v", gpus: int = 1, quality: float = 0.8, startup_ticks: int = 10
) -> VariantInfo:
    return VariantInfo(name, "H100", gpus, quality, startup_ticks)


@pytest.fixture(scope="session")
def assistant() -> ModelDeploymentSpec:
    return parse_manifests(ASSISTANT.read_text(), str(ASSISTANT))[0].spec
