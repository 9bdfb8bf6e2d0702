"""The Prometheus view: histogram_quantile as Prometheus computes it, delay and window."""

from __future__ import annotations

import pytest

from paretoscale.replay.fleet import Served
from paretoscale.replay.observe import PromView, Scrapes, histogram_quantile

from .conftest import flat_table


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        (0.75, [10, 10, 0, 0], 1.5),  # rank 15 in (1, 2]: 1 + (15 - 10) / 10 x 1
        (0.25, [10, 10, 0, 0], 0.5),  # first bucket: from 0
        (0.95, [0, 0, 10, 10], 4.0),  # rank in +Inf: the highest finite edge
        (0.5, [0, 0, 4, 0], 3.0),  # (2, 4]: 2 + 2 / 4 x 2
    ],
    ids=["inside-bucket", "first-bucket", "inf-bucket", "middle"],
)
def test_histogram_quantile(q: float, counts: list[int], expected: float) -> None:
    assert histogram_quantile(q, (1.0, 2.0, 4.0), counts) == pytest.approx(expected)


def test_histogram_quantile_without_data() -> None:
    assert histogram_quantile(0.95, (1.0,), [0, 0]) is None


def test_delay_and_window() -> None:
    scrapes = Scrapes(10, 1, (1.0, 2.0), False, seed=0)
    scrapes.rate_noise[:] = 1.0
    table = flat_table()
    for k in range(10):
        served = Served(
            arrivals=30.0 * k,
            in_slo=0,
            served=30.0 * k,
            dropped=0,
            queue_end=0,
            load_x=0.1,
            on_time=30.0 * k,
        )
        scrapes.record(k, 0, served, 1, table, 0, 100.0, 30.0)
    view = PromView(scrapes, tick=6, tick_s=30.0, delay_ticks=1, window_ticks=4, prior_rate_rps=7.0)
    # ticks 1..4 (tick 5 not scraped yet): (30 + 60 + 90 + 120) / 120 s
    assert view.rate_rps() == pytest.approx(2.5)
    assert view.rate_per_replica_rps(0) == pytest.approx(2.5)
    assert view.tokens_per_request() == pytest.approx(100.0)
    early = PromView(
        scrapes, tick=1, tick_s=30.0, delay_ticks=1, window_ticks=4, prior_rate_rps=7.0
    )
    assert early.rate_rps() == 7.0  # nothing scraped yet: the metrics from before the replay
