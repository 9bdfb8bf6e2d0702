"""Load shapes, per-request traces, token lengths and GPU price series, as replay inputs.

Formats (any file of these formats, not only the shipped ones):
- rate series CSV: a header with `window_start_s` and `rate_rps` (other columns ignored), one
  row per window (ServeGen's `servegen_*_rate.csv`: 10-minute windows). Read by
  sim/traces.py, the one reader the simulator and the replay share, then checked here.
- per-request trace, either the Azure LLM inference trace 2023 CSV
  (`TIMESTAMP,ContextTokens,GeneratedTokens`, wall clock with up to 100 ns digits; read by
  sim/traces.py) or Mooncake-style JSON lines (`{"timestamp": ms, "input_length": n,
  "output_length": m}`; parsed here). Arrivals relative to the first request, sorted.
- price CSV: `time_s,gpu_type,usd_per_gpu_hour` (replay seconds from the start; a price holds
  until the next row of its GPU type). The AWS tracker's `timestamp,instance,price_usd` file
  (USD per hour of an 8-GPU instance, CRLF, rows without a price) is read by
  `sim.prices.read_price_series` and compressed onto the replay by `aws_price_series`.

Errors are SpecError(file, ["what is wrong, where, and what to change"]).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paretoscale.api.gpus import GPUS
from paretoscale.errors import SpecError
from paretoscale.sim import traces as sim_traces
from paretoscale.sim.prices import PricePoint

FloatArray = npt.NDArray[np.float64]

PRICE_COLUMNS = ("time_s", "gpu_type", "usd_per_gpu_hour")
AWS_COLUMNS = ("timestamp", "instance", "price_usd")


@dataclass(frozen=True)
class RateSeries:
    """Aggregate request rate per window: window i starts at start_s[i] and lasts window_s[i]."""

    start_s: FloatArray
    window_s: FloatArray
    rates_rps: FloatArray

    @property
    def duration_s(self) -> float:
        return float(self.start_s[-1] + self.window_s[-1] - self.start_s[0])

    def scaled_to_peak(self, peak_rps: float) -> RateSeries:
        """Rates multiplied by peak_rps / max(rates): the shape kept, the peak chosen."""
        top = float(self.rates_rps.max())
        factor = peak_rps / top if top > 0 else 0.0
        return RateSeries(self.start_s, self.window_s, self.rates_rps * factor)


@dataclass(frozen=True)
class RequestTrace:
    """One row per request: arrival [s from the first request], prompt and output tokens."""

    arrival_s: FloatArray
    prompt_tokens: FloatArray
    output_tokens: FloatArray

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self.arrival_s) else 0.0


@dataclass(frozen=True)
class PriceSeries:
    """Prices [USD per GPU-hour] by GPU type as step functions of replay time [s]."""

    times_s: dict[str, FloatArray]
    usd_per_gpu_hour: dict[str, FloatArray]

    def at(self, gpu_type: str, t_s: float, fallback: float) -> float:
        """The last price of `gpu_type` at or before t_s; `fallback` before the first or when
        the series has no such type (the spec's usdPerHour, as the operator falls back)."""
        times = self.times_s.get(gpu_type)
        if times is None:
            return fallback
        i = int(np.searchsorted(times, t_s, side="right")) - 1
        return fallback if i < 0 else float(self.usd_per_gpu_hour[gpu_type][i])


def _rows(text: str, source: str, required: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise SpecError(source, ["the file is empty"]) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise SpecError(
            source,
            [
                f"header {','.join(header)!r} lacks column(s) {', '.join(missing)}; "
                f"expected a header with {','.join(required)}"
            ],
        )
    return header, [r for r in reader if any(cell.strip() for cell in r)]


def _number(raw: str, source: str, line: int, column: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SpecError(source, [f"line {line}: {column} {raw!r} is not a number"]) from None
    if not math.isfinite(value) or value < 0:
        raise SpecError(source, [f"line {line}: {column} must be finite and >= 0, got {raw}"])
    return value


def load_rate_series(path: str) -> RateSeries:
    """A `window_start_s,rate_rps,...` CSV (sim/traces.py reads it). Each window lasts until
    the next one starts; the last one as long as the median window."""
    try:
        start, rates = sim_traces.load_rate_series(path)
    except OSError as e:
        raise SpecError(path, [f"cannot read: {e.strerror}"]) from None
    except (ValueError, KeyError, TypeError) as e:
        raise SpecError(
            path, [f"{e}; expected a CSV with a header window_start_s,rate_rps"]
        ) from None
    if len(start) < 2:
        raise SpecError(path, ["a rate series needs at least two windows"])
    steps = np.diff(start)
    if np.any(steps <= 0):
        at = float(start[int(np.argmax(steps <= 0))])
        raise SpecError(path, [f"window_start_s {at:g} appears twice; one row per window"])
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise SpecError(path, ["rate_rps must be finite and >= 0 in every row"])
    window = np.append(steps, np.median(steps))
    return RateSeries(start - start[0], window, rates)


def _azure(path: str) -> RequestTrace:
    try:
        arrival, prompt, output = sim_traces.load_azure_trace(path)
    except OSError as e:
        raise SpecError(path, [f"cannot read: {e.strerror}"]) from None
    except (ValueError, KeyError, TypeError) as e:
        raise SpecError(
            path,
            [
                f"{e}; expected the Azure trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens) "
                "or JSON lines with timestamp (ms), input_length, output_length"
            ],
        ) from None
    return _trace(
        arrival, prompt.astype(np.float64).tolist(), output.astype(np.float64).tolist(), path
    )


def parse_jsonl_trace(text: str, source: str) -> RequestTrace:
    """Mooncake-style JSON lines: timestamp [ms], input_length, output_length per line."""
    arrival, prompt, output = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            t, p, o = obj["timestamp"], obj["input_length"], obj["output_length"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SpecError(
                source,
                [
                    f"line {n}: {type(e).__name__}: {e}; expected JSON lines with "
                    "timestamp (ms), input_length, output_length"
                ],
            ) from None
        arrival.append(_number(str(t), source, n, "timestamp") / 1000.0)
        prompt.append(_number(str(p), source, n, "input_length"))
        output.append(_number(str(o), source, n, "output_length"))
    arr = np.asarray(arrival, dtype=np.float64)
    return _trace(arr - (arr.min() if len(arr) else 0.0), prompt, output, source)


def _trace(
    arrival: FloatArray, prompt: Sequence[float], output: Sequence[float], source: str
) -> RequestTrace:
    if len(arrival) == 0:
        raise SpecError(source, ["the trace has no requests"])
    order = np.argsort(arrival, kind="stable")
    return RequestTrace(
        arrival[order],
        np.asarray(prompt, dtype=np.float64)[order],
        np.maximum(np.asarray(output, dtype=np.float64)[order], 1.0),
    )


def load_request_trace(path: str) -> RequestTrace:
    """An Azure 2023 CSV or a Mooncake-style JSON-lines trace, told apart by the first
    non-blank character ({ for JSON lines)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SpecError(path, [f"cannot read: {e.strerror}"]) from None
    head = text.lstrip()[:1]
    if not head:
        raise SpecError(path, ["the file is empty"])
    if head == "{":
        return parse_jsonl_trace(text, path)
    return _azure(path)


def parse_prices(text: str, source: str) -> PriceSeries:
    """A `time_s,gpu_type,usd_per_gpu_hour` CSV; rows may come in any order."""
    header, rows = _rows(text, source, PRICE_COLUMNS)
    it, ig, iu = (header.index(c) for c in PRICE_COLUMNS)
    points: dict[str, list[tuple[float, float]]] = {}
    for n, row in enumerate(rows, start=2):
        if len(row) <= max(it, ig, iu):
            raise SpecError(source, [f"line {n}: expected {len(header)} columns, got {len(row)}"])
        gpu = row[ig].strip()
        if gpu not in GPUS:
            raise SpecError(
                source, [f"line {n}: unknown gpu_type {gpu!r}; known: {', '.join(sorted(GPUS))}"]
            )
        points.setdefault(gpu, []).append(
            (
                _number(row[it], source, n, "time_s"),
                _number(row[iu], source, n, "usd_per_gpu_hour"),
            )
        )
    if not points:
        raise SpecError(source, ["no price rows"])
    return _series(points)


def _series(points: dict[str, list[tuple[float, float]]]) -> PriceSeries:
    times, usd = {}, {}
    for gpu, pts in points.items():
        pts.sort()
        times[gpu] = np.array([t for t, _ in pts])
        usd[gpu] = np.array([u for _, u in pts])
    return PriceSeries(times, usd)


def is_aws_price_file(text: str) -> bool:
    """Whether the header is the AWS price tracker's `timestamp,instance,price_usd`."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    return [c.strip() for c in first.split(",")] == list(AWS_COLUMNS)


def aws_price_series(
    points: Sequence[PricePoint], gpu_type: str, gpus_per_instance: float, duration_s: float
) -> PriceSeries:
    """Daily instance prices compressed onto a replay of duration_s seconds.

    t_replay = (day - first day) / (last day - first day) x duration_s;
    usd per GPU-hour = instance USD/h / gpus_per_instance.
    """
    first, last = points[0].day, points[-1].day
    span_days = max((last - first).days, 1)
    pts = [
        ((p.day - first).days / span_days * duration_s, p.usd_per_hour / gpus_per_instance)
        for p in points
    ]
    return _series({gpu_type: pts})
