"""Turn `vllm bench serve --save-result` files into a variant's `profile`.

One result file per request rate; each becomes one point: the offered rate (`request_rate`,
or the achieved `request_throughput` for rate inf) and the latency at the SLO metric and
percentile (`p95_e2el_ms` -> seconds). vLLM names percentile keys `p{P}_{metric}_ms` with P
printed as an integer when whole (p99, p99.9); metrics are ttft, tpot, itl, e2el.

The token mix the profile was measured at (its `profileTokens`) comes from the same files:
prompt tokens per request = sum of `total_input_tokens` / sum of `completed`, output tokens per
request = sum of `total_output_tokens` / sum of `completed`, over the files that hold all three
(vllm/benchmarks/serve.py sums both over the successful requests).

Without results, `estimate_profile` predicts a variant's profile from the simulator's
performance model (sim/prior.py), as the operator does for a variant without one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretoscale.api.accelerators import GpuTypes
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.decide.evaluate import model_prior, prior_curve
from paretoscale.economics.capacity import capacity_at_slo_rps, latency_at_rate_s
from paretoscale.economics.work import TokenMix
from paretoscale.errors import ProfileError
from paretoscale.sim.prior import prior_problem

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


@dataclass(frozen=True)
class Estimate:
    """A variant's profile predicted by the performance model (basis "model")."""

    variant: str
    gpu_type: str
    points: tuple[tuple[float, float], ...]  # (requests per second, latency seconds)
    prompt_tokens: float
    output_tokens: float
    capacity_rps: float  # at the SLO
    uncertainty: float  # relative


ESTIMATE_X = (0.05, 0.2, 0.4, 0.6, 0.75, 0.85, 0.92, 0.97)  # x the replica's throughput limit


def estimate_profile(
    spec: ModelDeploymentSpec, variant: VariantSpec, mix: TokenMix, gpus: GpuTypes
) -> Estimate:
    """The prior of `variant` (sim/prior.py) at mix `mix`, read through the work model as
    decide() reads it: points at ESTIMATE_X of the limit and at the SLO crossing. Raises
    ProfileError saying what to change where the model cannot apply."""
    slo = spec.slo
    problem = gpus.problem(variant.gpu.type) or prior_problem(variant, gpus.get(variant.gpu.type))
    prior = model_prior(variant, slo.latency, slo.percentile, mix, gpus)
    if problem is not None or prior is None:
        raise ProfileError(f"variant {variant.name}: no performance-model estimate: {problem}")
    rates, lats = prior_curve(variant, prior, slo.latency, mix)
    cap = capacity_at_slo_rps(rates, lats, slo.seconds)
    limit = prior.max_rps * rates[-1] / prior.rates_rps[-1]  # the limit at `mix`
    wanted = {round(x * limit, 4) for x in ESTIMATE_X if x * limit <= rates[-1]}
    if 0 < cap < rates[-1]:
        wanted.add(round(cap, 4))
    points = []
    for r in sorted(wanted):
        lat = latency_at_rate_s(rates, lats, r)
        if r > 0 and lat is not None:
            points.append((r, slo.seconds if r == round(cap, 4) else round(lat, 4)))
    return Estimate(
        variant.name, variant.gpu.type, tuple(points), round(mix.prompt_tokens, 1),
        round(mix.output_tokens, 1), cap, prior.uncertainty,
    )  # fmt: skip


def estimate_yaml(name: str, spec: ModelDeploymentSpec, estimates: list[Estimate]) -> str:
    """The estimates as YAML to paste under the variants (one variant: its fields alone)."""
    slo = spec.slo
    lines = [
        f"# {name}: p{slo.percentile:g} {slo.latency} <= {slo.seconds:g}s, predicted by the "
        "simulator's performance model (paretoscale profile --estimate)"
    ]
    indent = "" if len(estimates) == 1 else "  "
    for e in estimates:
        if len(estimates) > 1:
            lines.append(f"- name: {e.variant}")
        lines.append(
            f"{indent}# basis: model, uncertainty ±{e.uncertainty:.0%}; {e.capacity_rps:.3g} "
            f"req/s per replica at the SLO on {e.gpu_type}"
        )
        lines.append(
            f"{indent}profileTokens: {{promptTokens: {e.prompt_tokens:g}, "
            f"outputTokens: {e.output_tokens:g}}}"
        )
        if e.capacity_rps <= 0:
            lines.append(f"{indent}# the model predicts no load that meets the SLO")
        lines.append(f"{indent}profile:")
        for r, lat in e.points:
            lines.append(f"{indent}- {{requestsPerSecond: {r:g}, latencySeconds: {lat:g}}}")
    return "\n".join(lines)
