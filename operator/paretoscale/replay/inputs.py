"""What the replay's flags name, read and checked: the load, token lengths, prices,
reality speeds and the policies. The shell's input side: files are read here (and only
here); everything a user can get wrong becomes a SpecError naming the flag or file and what
to change.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.errors import SpecError
from paretoscale.replay.demand import (
    AZURE_CONV_OUTPUT_MEAN,
    AZURE_CONV_PROMPT_MEAN,
    Demand,
    TokenPool,
    demand_from_rates,
    demand_from_trace,
    dispersion_index,
)
from paretoscale.replay.operator_policy import Paretoscale
from paretoscale.replay.policies import (
    KedaQueue,
    LlmdSloKeda,
    Policy,
    StaticHpa,
    WvaSaturation,
    best_quality_variant,
    cheapest_feasible_variant,
    wva_variants,
)
from paretoscale.replay.traces import (
    PriceSeries,
    RequestTrace,
    aws_price_series,
    is_aws_price_file,
    load_rate_series,
    load_request_trace,
    parse_prices,
)
from paretoscale.sim.prices import read_price_series

POLICY_NAMES = (
    "static:best+hpa, static:cheapest+hpa, static:VARIANT+hpa, keda-queue[:VARIANT], "
    "llmd-slo-keda[:VARIANT], wva-saturation, paretoscale, paretoscale:no-correction, "
    "paretoscale:guarded, paretoscale:no-saturation, paretoscale:no-forecast, oracle"
)


def read_text(path: str, flag: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise SpecError(path, [f"cannot read the file given to {flag}: {e.strerror}"]) from None


def reality_speeds(items: Sequence[str], spec: ModelDeploymentSpec) -> dict[str, float]:
    names = [v.name for v in spec.variants]
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        try:
            if not sep:
                raise ValueError
            factor = float(raw)
        except ValueError:
            raise SpecError(
                "--reality-speed", [f"expected VARIANT=FACTOR such as fp8=0.8, got {item!r}"]
            ) from None
        if name not in names:
            raise SpecError(
                "--reality-speed", [f"no variant {name!r}; variants: {', '.join(names)}"]
            )
        if not 0 < factor < 1e3:  # also NaN and infinity
            raise SpecError(
                "--reality-speed", [f"{name}: the factor must be > 0 and < 1000, got {raw}"]
            )
        out[name] = factor
    return out


@dataclass(frozen=True)
class Load:
    """The demand and where it came from."""

    demand: Demand
    description: str
    peak_rps: float


def token_pool(
    args: argparse.Namespace, trace: RequestTrace | None
) -> tuple[TokenPool, RequestTrace | None]:
    if args.tokens:
        tokens_trace = load_request_trace(args.tokens)
        return TokenPool.of(tokens_trace), tokens_trace
    if trace is not None:
        return TokenPool.of(trace), trace
    return TokenPool.constant(AZURE_CONV_PROMPT_MEAN, AZURE_CONV_OUTPUT_MEAN), None


def load_demand(args: argparse.Namespace) -> Load:
    tick = args.tick_seconds
    if args.peak_rps is not None and not args.peak_rps > 0:
        raise SpecError("--peak-rps", [f"the peak rate must be > 0 req/s, got {args.peak_rps}"])
    if args.days is not None and not args.days > 0:
        raise SpecError("--days", [f"must be > 0, got {args.days}"])
    if args.rate_series:
        if args.peak_rps is None:
            raise SpecError(
                "--peak-rps",
                ["--rate-series needs --peak-rps N (the peak req/s to scale the shape to)"],
            )
        series = load_rate_series(args.rate_series)
        duration = (
            series.duration_s if args.days is None else min(series.duration_s, args.days * 86400)
        )
        if duration < tick:
            raise SpecError("--days", [f"the replay is shorter than one tick ({tick:g} s)"])
        pool, tokens_trace = token_pool(args, None)
        dispersion = None
        if args.arrivals == "bursty":
            if args.dispersion is not None:
                dispersion = args.dispersion
            elif tokens_trace is not None:
                dispersion = dispersion_index(tokens_trace, tick)
            else:
                raise SpecError(
                    "--arrivals",
                    ["bursty needs --dispersion D or --tokens FILE to measure it from"],
                )
            if not dispersion >= 1.0:
                raise SpecError(
                    "--dispersion",
                    [f"an index of dispersion is >= 1 (1 = Poisson), got {dispersion:g}"],
                )
        demand = demand_from_rates(
            series.scaled_to_peak(args.peak_rps), tick, duration, pool, args.seed, dispersion
        )
        how = "Poisson" if dispersion is None else f"bursty (dispersion {dispersion:.2f})"
        return Load(
            demand,
            f"{Path(args.rate_series).name} scaled to a {args.peak_rps:g} req/s peak, {how} arrivals",
            args.peak_rps,
        )
    if args.trace:
        trace = load_request_trace(args.trace)
        duration = (
            trace.duration_s if args.days is None else min(trace.duration_s, args.days * 86400)
        )
        if duration < tick:
            raise SpecError(
                args.trace,
                [f"the trace lasts {trace.duration_s:g} s, less than one tick ({tick:g} s)"],
            )
        pool, _ = token_pool(args, trace)
        demand = demand_from_trace(trace, tick, duration, pool)
        peak = float(demand.rate_rps.max())
        if args.peak_rps is not None and peak > 0:
            demand = demand_from_trace(trace, tick, duration, pool, args.peak_rps / peak)
            return Load(
                demand,
                f"{Path(args.trace).name} x{args.peak_rps / peak:.2f} (peak tick {args.peak_rps:g} req/s)",
                args.peak_rps,
            )
        return Load(demand, f"{Path(args.trace).name} as recorded", peak)
    raise SpecError(
        "--rate-series/--trace", ["give a load: --rate-series FILE --peak-rps N, or --trace FILE"]
    )


def load_prices(
    args: argparse.Namespace, spec: ModelDeploymentSpec, duration_s: float
) -> PriceSeries | None:
    if not args.prices:
        if args.prices_gpu:
            raise SpecError("--prices-gpu", ["goes with --prices FILE (an AWS price file)"])
        return None
    text = read_text(args.prices, "--prices")
    types = {g.type for g in spec.gpus}
    if is_aws_price_file(text):
        if not args.prices_gpu:
            raise SpecError(
                args.prices,
                [
                    "this is an AWS instance price file (timestamp,instance,price_usd): pass --prices-gpu TYPE (the GPU type it prices, e.g. H100)"
                ],
            )
        if args.prices_gpu not in types:
            raise SpecError(
                "--prices-gpu",
                [f"{args.prices_gpu} is not in spec.gpus ({', '.join(sorted(types))})"],
            )
        if not args.prices_gpus_per_instance > 0:
            raise SpecError("--prices-gpus-per-instance", ["must be > 0"])
        try:
            points = read_price_series(args.prices)
        except (ValueError, KeyError) as e:
            raise SpecError(args.prices, [str(e)]) from None
        return aws_price_series(points, args.prices_gpu, args.prices_gpus_per_instance, duration_s)
    if args.prices_gpu:
        raise SpecError(
            "--prices-gpu",
            [
                f"{args.prices} is a time_s,gpu_type,usd_per_gpu_hour file; --prices-gpu is for AWS instance price files"
            ],
        )
    return parse_prices(text, args.prices)


def build_policies(
    names: Sequence[str], spec: ModelDeploymentSpec, peak_rps: float, cold_start: bool = False
) -> list[Policy | str]:
    variants = [v.name for v in spec.variants]
    best = best_quality_variant(spec, peak_rps)
    cheap = cheapest_feasible_variant(spec, peak_rps)
    out: list[Policy | str] = []
    for name in names:
        if name == "oracle":
            out.append("oracle")
        elif name == "paretoscale":
            out.append(Paretoscale(spec, cold_start=cold_start))
        elif name == "paretoscale:no-correction":
            out.append(Paretoscale(spec, label=name, correction=False, cold_start=cold_start))
        elif name == "paretoscale:guarded":
            out.append(Paretoscale(spec, label=name, learn_min_load=0.5, cold_start=cold_start))
        elif name == "paretoscale:no-saturation":
            out.append(Paretoscale(spec, label=name, saturation_guard=False, cold_start=cold_start))
        elif name == "paretoscale:no-forecast":
            out.append(Paretoscale(spec, label=name, forecast=False, cold_start=cold_start))
        elif name == "wva-saturation":
            out.append(WvaSaturation(spec, deployed=wva_variants(spec, peak_rps)))
        elif name.split(":")[0] in ("keda-queue", "llmd-slo-keda"):
            v = name.partition(":")[2] or best
            if v not in variants:
                raise SpecError(
                    "--policy", [f"{name}: no variant {v!r}; variants: {', '.join(variants)}"]
                )
            out.append(KedaQueue(spec, v) if name.startswith("keda") else LlmdSloKeda(spec, v))
        elif name.startswith("static:") and name.endswith("+hpa"):
            v = name[len("static:") : -len("+hpa")]
            label = f"static:{best}+hpa (best quality)" if v == "best" else ""
            if v == "cheapest":
                label = f"static:{cheap}+hpa (cheapest)"
            v = {"best": best, "cheapest": cheap}.get(v, v)
            if v not in variants:
                raise SpecError(
                    "--policy", [f"{name}: no variant {v!r}; variants: {', '.join(variants)}"]
                )
            out.append(StaticHpa(spec, v, label))
        else:
            raise SpecError(
                "--policy",
                [f"unknown policy {name!r}; policies: {POLICY_NAMES}"],
            )
    return out
