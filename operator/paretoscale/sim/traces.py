"""Public request traces as numpy arrays, and arrival processes drawn from them (pure).

Formats (see data/SOURCES.md):
- Azure LLM inference trace: TIMESTAMP (wall clock, 100 ns resolution), ContextTokens,
  GeneratedTokens; the last line may lack a newline;
- ServeGen rate series: window_start_s, rate_rps, active_clients (10-minute windows).
Any file with those columns is accepted (extra columns ignored, header required).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _rows(path: str | Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
        reader.fieldnames = header
        return [row for row in reader if any((v or "").strip() for v in row.values())]


def load_azure_trace(path: str | Path) -> tuple[FloatArray, IntArray, IntArray]:
    """(arrival_s, prompt_tokens, output_tokens) of an Azure LLM inference trace, sorted by
    arrival, arrival_s counted from the first request (seconds, ns resolution)."""
    rows = _rows(path, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    if not rows:
        raise ValueError(f"{path}: no requests")
    stamps = np.array([r["TIMESTAMP"].strip().replace(" ", "T") for r in rows],
                      dtype="datetime64[ns]")  # fmt: skip
    ns = (stamps - stamps.min()).astype(np.int64)
    prompt = np.array([int(r["ContextTokens"]) for r in rows], dtype=np.int64)
    output = np.array([int(r["GeneratedTokens"]) for r in rows], dtype=np.int64)
    order = np.argsort(ns, kind="stable")
    return ns[order].astype(np.float64) / 1e9, prompt[order], output[order]


def load_rate_series(path: str | Path) -> tuple[FloatArray, FloatArray]:
    """(window_start_s, rate_rps) of a ServeGen-style rate series, sorted by window start."""
    rows = _rows(path, ("window_start_s", "rate_rps"))
    start = np.array([float(r["window_start_s"]) for r in rows], dtype=np.float64)
    rate = np.array([float(r["rate_rps"]) for r in rows], dtype=np.float64)
    order = np.argsort(start, kind="stable")
    return start[order], rate[order]


def window_length_s(window_start_s: FloatArray) -> float:
    """The spacing of a rate series (the median difference; 600 s for ServeGen)."""
    if len(window_start_s) < 2:
        return 600.0
    return float(np.median(np.diff(window_start_s)))


def poisson_arrivals(
    window_start_s: FloatArray,
    rate_rps: FloatArray,
    rng: np.random.Generator,
    *,
    peak_rps: float | None = None,
    time_compression: float = 1.0,
) -> FloatArray:
    """Arrival times (s, compressed time) of a Poisson process whose rate is piecewise
    constant per window: the series is scaled so its maximum is `peak_rps` (if given) and
    time is divided by `time_compression` (a 10-minute window lasts 600 / c seconds, at the
    same scaled rate). Within a window the count is Poisson(rate x length) and the times
    uniform."""
    if time_compression <= 0:
        raise ValueError(f"time compression must be positive, got {time_compression}")
    rate = np.asarray(rate_rps, dtype=np.float64)
    if peak_rps is not None:
        top = float(rate.max()) if len(rate) else 0.0
        rate = rate * (peak_rps / top) if top > 0 else rate
    length_s = window_length_s(window_start_s) / time_compression
    starts = np.asarray(window_start_s, dtype=np.float64) / time_compression
    counts = rng.poisson(np.clip(rate, 0.0, None) * length_s)
    times = np.concatenate(
        [s + np.sort(rng.uniform(0.0, length_s, n)) for s, n in zip(starts, counts, strict=True)]
        or [np.empty(0)]
    )
    return times - (starts[0] if len(starts) else 0.0)


def sample_lengths(
    prompt_tokens: IntArray, output_tokens: IntArray, n: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """`n` (prompt, output) pairs drawn with replacement from a trace's requests."""
    idx = rng.integers(0, len(prompt_tokens), n)
    return prompt_tokens[idx], output_tokens[idx]
