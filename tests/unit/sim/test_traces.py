"""Trace and rate-series parsing, and the arrival processes drawn from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paretoscale.sim.traces import (
    load_azure_trace,
    load_rate_series,
    poisson_arrivals,
    sample_lengths,
    window_length_s,
)

from .helpers import data_dir

TRACES = data_dir() / "traces"


@pytest.mark.parametrize(
    ("name", "requests", "minutes", "output_mean"),
    [("code", 8819, 57.3, 28), ("conv", 19366, 58.4, 211)],
    ids=["code", "conv"],
)
def test_azure_traces_match_sources_md(
    name: str, requests: int, minutes: float, output_mean: float
) -> None:
    arrival, prompt, output = load_azure_trace(TRACES / f"AzureLLMInferenceTrace_{name}.csv")
    assert len(arrival) == len(prompt) == len(output) == requests  # last line has no newline
    assert arrival[0] == 0.0 and np.all(np.diff(arrival) >= 0)
    assert arrival[-1] / 60 == pytest.approx(minutes, abs=0.1)
    assert output.mean() == pytest.approx(output_mean, abs=1)


def test_azure_parser_accepts_any_file_of_the_format(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens,Extra\n"
        "2024-01-01 00:00:01.5000000,10,2,x\n\n"
        "2024-01-01 00:00:00.0000001,5,1,y"
    )
    arrival, prompt, output = load_azure_trace(f)
    assert arrival.tolist() == pytest.approx([0.0, 1.4999999])
    assert prompt.tolist() == [5, 10] and output.tolist() == [1, 2]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,tokens\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        load_azure_trace(bad)


def test_servegen_rate_series() -> None:
    start, rate = load_rate_series(TRACES / "servegen_m-large_rate.csv")
    assert len(start) == 2016 and window_length_s(start) == 600.0
    assert rate.mean() == pytest.approx(196, abs=1)
    assert rate.max() == pytest.approx(583, abs=1)


@pytest.mark.parametrize("compression", [1.0, 60.0])
def test_poisson_arrivals_follow_the_scaled_series(compression: float) -> None:
    start = np.array([0.0, 600.0, 1200.0])
    rate = np.array([1.0, 4.0, 2.0])
    rng = np.random.default_rng(0)
    reps = [poisson_arrivals(start, rate, rng, peak_rps=8.0, time_compression=compression)
            for _ in range(40)]  # fmt: skip
    window = 600.0 / compression
    counts = np.array([[np.sum((t >= i * window) & (t < (i + 1) * window)) for i in range(3)]
                       for t in reps])  # fmt: skip
    expected = np.array([2.0, 8.0, 4.0]) * window  # scaled to peak 8 req/s
    assert counts.mean(axis=0) == pytest.approx(expected, rel=0.1)
    assert all(np.all(np.diff(t) >= 0) for t in reps)


def test_sample_lengths_draws_from_the_trace() -> None:
    p, o = sample_lengths(np.array([1, 2, 3]), np.array([10, 20, 30]), 100,
                          np.random.default_rng(0))  # fmt: skip
    assert set(zip(p.tolist(), o.tolist(), strict=True)) <= {(1, 10), (2, 20), (3, 30)}
