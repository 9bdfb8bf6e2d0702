"""Verification is relative: a target that misses the SLO but is no worse than what serves
now (itself past the SLO) is not rolled back; one worse than it, or a miss while what serves
meets the SLO, is."""

from __future__ import annotations

import pytest

from paretoscale.rollout.analysis import Reading, analyze


@pytest.mark.parametrize(
    ("target", "baseline", "outcome"),
    [
        (12.0, 60.0, "Successful"),  # both past the SLO, the target far better
        (12.0, 11.5, "Successful"),  # within 10% of what serves
        (14.0, 11.5, "Failed"),  # worse than what serves
        (12.0, 5.0, "Failed"),  # what serves meets the SLO
        (12.0, None, "Failed"),  # nothing to compare with
        (5.0, 60.0, "Successful"),
    ],
)
def test_a_target_no_worse_than_what_serves_passes(
    target: float, baseline: float | None, outcome: str
) -> None:
    v = analyze(
        "w4a16-l40s",
        Reading(target, 100, 0, 0),
        8.0,
        "p95 e2e",
        Reading(baseline, 1000, 0, 0) if baseline is not None else None,
    )
    assert v.outcome == outcome
    if outcome == "Successful" and target > 8.0:
        assert "no worse than what serves now" in v.message
