"""Tokens per request divide by served requests: an aborted request added no tokens, as the
replay's PromView counts (tests/unit/replay/test_observe_arrivals.py)."""

from __future__ import annotations

import pytest

from paretoscale.observe.snapshot import VariantMetrics


def test_aborted_requests_do_not_dilute_the_token_mix() -> None:
    m = VariantMetrics(requests_per_s=10.0, aborted_per_s=4.0, prompt_tokens_per_s=6000.0,
                       generation_tokens_per_s=1200.0)  # fmt: skip
    assert m.served_per_s == 6.0
    assert m.prompt_tokens_per_request == pytest.approx(1000.0)
    assert m.generation_tokens_per_request == pytest.approx(200.0)
    assert m.tokens_per_request == pytest.approx(1200.0)


def test_without_aborts_every_finished_request_counts() -> None:
    m = VariantMetrics(
        requests_per_s=5.0, prompt_tokens_per_s=5000.0, generation_tokens_per_s=500.0
    )
    assert m.served_per_s == 5.0 and m.tokens_per_request == pytest.approx(1100.0)


def test_all_aborted_says_nothing_about_the_mix() -> None:
    m = VariantMetrics(requests_per_s=3.0, aborted_per_s=3.0, prompt_tokens_per_s=0.0,
                       generation_tokens_per_s=0.0)  # fmt: skip
    assert m.served_per_s == 0.0 and m.tokens_per_request is None
