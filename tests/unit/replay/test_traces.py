"""Loaders for load shapes, request traces and prices: the shipped formats and bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from paretoscale.errors import SpecError
from paretoscale.replay.demand import TokenPool, demand_from_rates, demand_from_trace, rate_at_ticks
from paretoscale.replay.traces import (
    aws_price_series,
    is_aws_price_file,
    load_rate_series,
    load_request_trace,
    parse_jsonl_trace,
    parse_prices,
)
from paretoscale.sim.prices import PricePoint

AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:46.6805900,374,44\n"
    "2023-11-16 18:15:50.9951690,396,109\n"
    "2023-11-16 18:15:46.1805900,100,0"  # unsorted, no trailing newline, 0 output tokens
)


def write(tmp_path: Path, text: str, name: str = "f.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_rate_series(tmp_path: Path) -> None:
    s = load_rate_series(
        write(tmp_path, "window_start_s,rate_rps,active_clients\r\n600,10,1\r\n1200,20,2\r\n")
    )
    assert s.start_s.tolist() == [0, 600] and s.window_s.tolist() == [600, 600]
    assert s.scaled_to_peak(50).rates_rps.tolist() == [25, 50]
    # midpoints 300 and 900: tick midpoints 15 and 1185 clip, 600 is halfway
    rates = rate_at_ticks(s, 30.0, 1200.0)
    assert rates[0] == 10 and rates[-1] == 20 and rates[19] == pytest.approx(14.75)


def test_azure_trace_sorted_relative_and_at_least_one_output_token(tmp_path: Path) -> None:
    t = load_request_trace(write(tmp_path, AZURE))
    assert t.arrival_s.tolist() == pytest.approx([0.0, 0.5, 4.8145790])
    assert t.prompt_tokens.tolist() == [100, 374, 396]
    assert t.output_tokens.tolist() == [1, 44, 109]


def test_mooncake_jsonl() -> None:
    text = '{"timestamp": 1000, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n{"timestamp": 0, "input_length": 7, "output_length": 3}\n'
    t = parse_jsonl_trace(text, "m")
    assert t.arrival_s.tolist() == [0.0, 1.0] and t.prompt_tokens.tolist() == [7, 10]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected a CSV with a header window_start_s,rate_rps"),
        ("a,b\n1,2\n", "missing column(s)"),
        ("window_start_s,rate_rps\n0,1\n0,2\n", "window_start_s 0 appears twice"),
        ("window_start_s,rate_rps\n0,x\n600,2\n", "could not convert string to float: 'x'"),
        ("window_start_s,rate_rps\n0,1\n", "at least two windows"),
    ],
    ids=["empty", "header", "order", "number", "short"],
)
def test_rate_series_errors_say_what_to_change(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_rate_series(path)
    assert words in "; ".join(err.value.problems) and err.value.source == path


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        load_request_trace(write(tmp_path, '{"timestamp": 1}\n', "m.jsonl"))
    assert "line 1" in err.value.problems[0] and "input_length" in err.value.problems[0]


def test_prices_step_function_and_fallback() -> None:
    p = parse_prices("time_s,gpu_type,usd_per_gpu_hour\n3600,H100,5\n0,H100,7\n", "p")
    assert (
        p.at("H100", 0, 1.0) == 7 and p.at("H100", 3599, 1.0) == 7 and p.at("H100", 3600, 1.0) == 5
    )
    assert p.at("L40S", 10, 1.86) == 1.86
    with pytest.raises(SpecError, match="unknown gpu_type"):
        parse_prices("time_s,gpu_type,usd_per_gpu_hour\n0,H900,1\n", "p")


def test_aws_file_compressed_onto_the_replay() -> None:
    assert is_aws_price_file(
        "timestamp,instance,price_usd\r\n2025-04-23T18:52:57,p5.48xlarge,98.32\r\n"
    )
    points = [PricePoint(date(2025, 1, 1), 98.32), PricePoint(date(2025, 1, 11), 55.04)]
    s = aws_price_series(points, "H100", 8, 1000.0)
    assert s.at("H100", 999, 0) == pytest.approx(12.29) and s.at("H100", 1000, 0) == pytest.approx(
        6.88
    )


def test_demand_is_seeded_and_poisson(tmp_path: Path) -> None:
    s = load_rate_series(write(tmp_path, "window_start_s,rate_rps\n0,100\n600,100\n"))
    pool = TokenPool(np.array([100.0, 300.0]), np.array([10.0, 30.0]))
    a = demand_from_rates(s, 30.0, 1200.0, pool, seed=7)
    b = demand_from_rates(s, 30.0, 1200.0, pool, seed=7)
    c = demand_from_rates(s, 30.0, 1200.0, pool, seed=8)
    assert a.arrivals.tolist() == b.arrivals.tolist() != c.arrivals.tolist()
    assert abs(a.arrivals.mean() - 3000) < 3 * np.sqrt(3000 / 40) * 3
    assert abs(a.prompt_mean.mean() - 200) < 5


def test_demand_from_trace_counts_per_tick(tmp_path: Path) -> None:
    t = load_request_trace(write(tmp_path, AZURE))
    d = demand_from_trace(t, 1.0, 5.0)
    assert d.arrivals.tolist() == [2, 0, 0, 0, 1]
    assert d.prompt_mean[0] == 237 and d.output_mean[4] == 109
