"""The replay's Prometheus view of demand: arrivals (completions + queue growth), aborted
requests and the token mix, in the units the operator reads them."""

from __future__ import annotations

import pytest

from paretoscale.replay.fleet import Served
from paretoscale.replay.observe import PromView, Scrapes

from .conftest import flat_table


def _saturated_scrapes(prompt: float | None) -> Scrapes:
    """One variant finishing 60 requests per 30 s tick while 90 arrive: the queue grows by 30
    a tick, and from tick 3 on 10 a tick are aborted (clients give up)."""
    scrapes = Scrapes(8, 1, (1.0, 2.0), False, seed=0)
    scrapes.rate_noise[:] = 1.0
    queue = 0.0
    for k in range(8):
        dropped = 10.0 if k >= 3 else 0.0
        served = 60.0 - dropped
        start = queue
        queue = start + 90.0 - served - dropped
        s = Served(
            arrivals=90.0, in_slo=0, served=served, dropped=dropped, queue_end=queue,
            load_x=1.0, on_time=served,
        )  # fmt: skip
        scrapes.record(k, 0, s, 2, flat_table(), 0, 1200.0, 30.0, prompt)
    return scrapes


def test_arrivals_see_the_demand_completions_hide() -> None:
    view = PromView(_saturated_scrapes(1000.0), 7, 30.0, 1, 4, prior_rate_rps=1.0)
    # window: ticks 2..5: 60 finished a tick (aborted included) = 2 req/s; 90 arrive = 3 req/s
    assert view.rate_rps() == pytest.approx(2.0)
    assert view.arrivals_rps() == pytest.approx(3.0)
    assert view.arrivals_rps(0) == pytest.approx(3.0)
    assert view.aborted_rps() == pytest.approx(30.0 / 120.0)
    # arrivals = completions + growth of the queue over the window, as the operator derives
    assert view.arrivals_rps() == pytest.approx(view.rate_rps() + 4 * 30.0 / 120.0)


def test_token_mix_per_served_request() -> None:
    view = PromView(_saturated_scrapes(1000.0), 7, 30.0, 1, 4, prior_rate_rps=1.0)
    mix = view.token_mix()
    assert mix is not None
    # tokens are counted for served requests only, and so is the divisor: aborted requests
    # (30 of the 240 finished) do not make an overloaded fleet's mix look light
    assert mix.prompt_tokens == pytest.approx(1000.0)
    assert mix.output_tokens == pytest.approx(200.0)
    assert view.tokens_per_request() == pytest.approx(mix.total_tokens)
    # served per Ready replica-second leaves the aborted ones out too
    served = view.rate_per_replica_rps(0, served=True)
    finished = view.rate_per_replica_rps(0)
    assert served is not None and finished is not None
    assert served == pytest.approx(finished * 210.0 / 240.0)


def test_before_any_scrape_and_without_a_prompt_split() -> None:
    early = PromView(_saturated_scrapes(1000.0), 1, 30.0, 1, 4, prior_rate_rps=1.5)
    assert early.arrivals_rps() == 1.5 and early.aborted_rps() is None
    assert early.token_mix() is None
    unsplit = PromView(_saturated_scrapes(None), 7, 30.0, 1, 4, prior_rate_rps=1.0)
    assert unsplit.token_mix() is None and unsplit.tokens_per_request() is not None
