"""Turn `vllm bench serve --save-result` files into a variant's `profile`.

One result file per request rate; each becomes one point: the offered rate (`request_rate`,
or the achieved `request_throughput` for rate inf) and the latency at the SLO metric and
percentile (`p95_e2el_ms` -> seconds). vLLM names percentile keys `p{P}_{metric}_ms` with P
printed as an integer when whole (p99, p99.9); metrics are ttft, tpot, itl, e2el.

The token mix the profile was measured at (its `profileTokens`) comes from the same files:
prompt tokens per request = sum of `total_input_tokens` / sum of `completed`, output tokens per
request = sum of `total_output_tokens` / sum of `completed`, over the files that hold all three
(vllm/benchmarks/serve.py sums both over the successful requests).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretoscale.errors import ProfileError

SLO_METRIC_KEY = {"e2e": "e2el", "ttft": "ttft", "itl": "itl"}


@dataclass(frozen=True)
class ProfileRow:
    requests_per_second: float
    latency_seconds: float
    completed: int | None
    failed: int | None
    total_input_tokens: int | None = None
    total_output_tokens: int | None = None


@dataclass(frozen=True)
class MeasuredMix:
    """Mean tokens per request of the load the profile was measured with."""

    prompt_tokens: float
    output_tokens: float
    files: int  # results that stated their tokens
    spread: float  # largest relative gap of one file's prompt or output mean from the mix's


def percentile_key(latency: str, percentile: float) -> str:
    p = str(int(percentile)) if float(percentile).is_integer() else f"{percentile:g}"
    return f"p{p}_{SLO_METRIC_KEY[latency]}_ms"


def profile_row(
    result: Mapping[str, Any], latency: str, percentile: float, source: str
) -> ProfileRow:
    """One profile point from one parsed result file."""
    key = percentile_key(latency, percentile)
    if key not in result:
        have = sorted(k for k in result if k.endswith("_ms") and k.startswith("p"))
        raise ProfileError(
            f"{source}: no {key!r} in this result; rerun vllm bench serve with "
            f"--percentile-metrics {SLO_METRIC_KEY[latency]} --metric-percentiles "
            f"{percentile:g} (percentile keys present: {', '.join(have) or 'none'})"
        )
    rate = result.get("request_rate")
    rate_f = float(rate) if isinstance(rate, int | float) else math.inf
    if not math.isfinite(rate_f):
        throughput = result.get("request_throughput")
        if throughput is None:
            raise ProfileError(f"{source}: request_rate is inf and request_throughput is missing")
        rate_f = float(throughput)
    return ProfileRow(
        requests_per_second=rate_f,
        latency_seconds=float(result[key]) / 1000.0,
        completed=_count(result.get("completed")),
        failed=_count(result.get("failed")),
        total_input_tokens=_count(result.get("total_input_tokens")),
        total_output_tokens=_count(result.get("total_output_tokens")),
    )


def _count(x: object) -> int | None:
    """A non-negative whole count from JSON, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
        return None
    return int(x)


def measured_mix(rows: list[ProfileRow]) -> MeasuredMix | None:
    """The token mix over the results that state total input/output tokens and completed
    requests (see the module docstring); None when none does."""
    stated = [
        (r.total_input_tokens, r.total_output_tokens, r.completed)
        for r in rows
        if r.total_input_tokens is not None and r.total_output_tokens is not None and r.completed
    ]
    if not stated:
        return None
    done = sum(c for _, _, c in stated)
    prompt = sum(i for i, _, _ in stated) / done
    output = sum(o for _, o, _ in stated) / done
    if prompt <= 0 or output <= 0:
        return None
    spread = max(max(abs(i / c / prompt - 1.0), abs(o / c / output - 1.0)) for i, o, c in stated)
    return MeasuredMix(prompt, output, len(stated), spread)


def build_profile(files: Mapping[str, str], latency: str, percentile: float) -> list[ProfileRow]:
    """Points from several result files (path -> text), ascending by rate."""
    rows = []
    for path, text in files.items():
        try:
            result = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProfileError(f"{path}: not JSON ({e})") from None
        if not isinstance(result, dict):
            raise ProfileError(
                f"{path}: expected a JSON object from vllm bench serve --save-result"
            )
        rows.append(profile_row(result, latency, percentile, path))
    rows.sort(key=lambda r: r.requests_per_second)
    rates = [r.requests_per_second for r in rows]
    if len(set(rates)) != len(rates):
        raise ProfileError(f"two result files have the same request rate: {rates}")
    return rows
