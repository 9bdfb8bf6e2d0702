"""Scrapes.run_start: where a variant's current run of scraped ticks began, answered
incrementally as the replay moves on, the same as a scan back from the end."""

from __future__ import annotations

import numpy as np

from paretoscale.replay.observe import Scrapes


def scan(s: Scrapes, v: int, end: int) -> int:
    start = end
    while start > 0 and (s.ready[start - 1, v] > 0 or s.completions[start - 1, v] > 0):
        start -= 1
    return start


def test_run_start_matches_a_scan_back_at_every_tick() -> None:
    rng = np.random.default_rng(4)
    s = Scrapes(400, 2, (1.0, 2.0), False, 0)
    # runs of serving ticks with gaps: replicas scaled to zero and back, a variant idle
    s.ready[:, 0] = (rng.random(400) > 0.1) * 2
    s.completions[:, 0] = rng.poisson(3.0, 400) * (s.ready[:, 0] > 0)
    s.completions[150:160, 1] = 5.0  # finishing requests after its replicas went
    s.ready[100:150, 1] = 1
    for end in range(400):
        for v in (0, 1):
            assert s.run_start(v, end) == scan(s, v, end), (v, end)
    assert s.run_start(1, 399) == 399  # idle at the end: no run
    assert s.run_start(1, 155) == 100  # asked about the past: still right
