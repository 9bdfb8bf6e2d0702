"""`paretoscale replay`: whole policies against each other on real traffic, side by side.

The imperative shell of the replay: parse flags, read files, build the scenario, run the
policies (with a progress bar on stderr when it is a terminal or --progress), print a table
or JSON, draw the plot. Bad input exits 2 with the flag or file and what to change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from paretoscale.api.accelerators import BUILTIN
from paretoscale.api.admission import gpu_type_problems
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeployment, ModelDeploymentSpec
from paretoscale.cliargs import MAX_RATE_RPS, number, seed, unwritable
from paretoscale.decide.evaluate import estimate_problems
from paretoscale.errors import SpecError
from paretoscale.replay.calibrate import compare, gaps_text, with_profiles, without_profiles
from paretoscale.replay.inputs import (
    POLICY_NAMES,
    Load,
    build_policies,
    load_demand,
    load_prices,
    read_text,
    reality_speeds,
    token_pool,
)
from paretoscale.replay.operator_policy import Paretoscale
from paretoscale.replay.perf import build_table
from paretoscale.replay.report import Summary, plot, summarize, table, to_json
from paretoscale.replay.run import (
    PolicyRun,
    Scenario,
    TableCache,
    build_scenario,
    run_oracle,
    run_policy,
)

DEFAULT_POLICIES = (
    "static:best+hpa",
    "static:cheapest+hpa",
    "keda-queue",
    "llmd-slo-keda",
    "wva-saturation",
    "paretoscale",
    "oracle",
)
EXAMPLES = f"""\
policies: {POLICY_NAMES}
  (default: {", ".join(DEFAULT_POLICIES)})

examples:
  paretoscale replay -f examples/assistant-llama-8b.yaml \\
      --rate-series data/traces/servegen_m-large_rate.csv --peak-rps 60 \\
      --tokens data/traces/AzureLLMInferenceTrace_conv.csv --plot replay.png
  paretoscale replay -f md.yaml --trace data/traces/AzureLLMInferenceTrace_conv.csv -o json
  paretoscale replay -f md.yaml --calibrate-profiles --tokens data/traces/AzureLLMInferenceTrace_conv.csv
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paretoscale replay",
        description="Replay a load shape or a request trace through a simulated fleet of one "
        "ModelDeployment under competing policies (paretoscale, HPA, KEDA, llm-d's SLO-aware "
        "KEDA law and WVA saturation analyzer) and the "
        "hindsight optimum; report GPU cost, value, net value and SLO attainment per policy.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--file", required=True, help="ModelDeployment YAML")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate-series", metavar="CSV", help="window_start_s,rate_rps load shape")
    load.add_argument("--trace", metavar="FILE", help="per-request trace: Azure CSV or JSON lines")
    p.add_argument(
        "--peak-rps",
        type=number(hi=MAX_RATE_RPS, unit="requests/s"),  # <= 0: load_demand says why
        help="scale the load so its peak is N req/s",
    )
    p.add_argument("--tokens", metavar="FILE", help="per-request trace to draw token lengths from")
    p.add_argument("--arrivals", choices=["poisson", "bursty"], default="poisson",
                   help="arrivals inside a window of a rate series (bursty: the index of "
                   "dispersion of --tokens' arrivals, or --dispersion)")  # fmt: skip
    p.add_argument(
        "--dispersion", type=number(1, 1e6), help="index of dispersion for --arrivals bursty"
    )
    p.add_argument("--prices", metavar="CSV", help="time_s,gpu_type,usd_per_gpu_hour, or the "
                   "AWS tracker's timestamp,instance,price_usd (with --prices-gpu)")  # fmt: skip
    p.add_argument("--prices-gpu", metavar="TYPE", help="GPU type an AWS price file prices")
    p.add_argument("--prices-gpus-per-instance", type=number(0, 1024, lo_open=True), default=8.0,
                   help="divide AWS instance prices by this (default 8)")  # fmt: skip
    p.add_argument("--policy", action="append", default=[], metavar="NAME",
                   help="policy to run (repeatable or comma-separated; default: all)")  # fmt: skip
    p.add_argument("--reality-speed", action="append", default=[], metavar="VARIANT=F",
                   help="reality runs VARIANT at F x the perfmodel's speed (repeatable)")  # fmt: skip
    p.add_argument("--profiles", choices=["learned", "declared", "measured", "model"],
                   default="learned",
                   help="what every policy plans with: learned (the default; the spec's "
                   "profiles, which paretoscale learns from live readings while serving: the "
                   "operator as shipped), declared (the spec's profiles, paretoscale not "
                   "learning), measured "
                   "(profiles measured on the replay's simulator, as --calibrate-profiles "
                   "prints them), model (no profiles: the operator's performance-model prior, "
                   "basis model)")  # fmt: skip
    p.add_argument("--calibrate-profiles", action="store_true",
                   help="print the declared profiles' gap to the perfmodel and derived "
                   "profiles, then exit")  # fmt: skip
    p.add_argument("--seed", type=seed(), default=1)
    p.add_argument("--tick-seconds", type=number(0, 86400, lo_open=True), default=30.0)
    p.add_argument(
        "--days", type=number(0, 3650, lo_open=True), help="replay only the first D days"
    )
    p.add_argument("--metrics-delay-seconds", type=number(0, 86400), default=30.0)
    p.add_argument("--rate-window-seconds", type=number(0, 86400, lo_open=True), default=120.0)
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.add_argument("--plot", metavar="PNG", help="draw load, replicas per policy, cumulative cost")
    p.add_argument("--progress", action="store_true", help="progress bar even if not a terminal")
    p.add_argument("--cold-start", action="store_true",
                   help="paretoscale's first rollout goes through the rollout machine "
                   "(default: it ran before the replay, like every policy's warm fleet)")  # fmt: skip
    return p


class _Bar:
    """A progress bar on a stream: `start(total)` ticks to run, `update(n)` ticks done."""

    def __init__(self, stream: TextIO) -> None:
        self.total, self.done, self.stream, self.t0 = 1, 0, stream, time.perf_counter()

    def start(self, total: int) -> None:
        self.total, self.done, self.t0 = max(total, 1), 0, time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\rreplay [{bar:<30}] {frac:4.0%} {time.perf_counter() - self.t0:5.1f}s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


@dataclass(frozen=True)
class Outcome:
    """One ModelDeployment's replay."""

    name: str
    scenario: Scenario
    runs: list[PolicyRun]
    oracle: PolicyRun
    load: Load
    wall_s: float


def replay_one(
    name: str,
    spec: ModelDeploymentSpec,
    args: argparse.Namespace,
    progress: Callable[[int], None] | None,
    n_policies: Callable[[int], None] | None = None,
    cache: TableCache | None = None,
) -> Outcome:
    """Build one ModelDeployment's scenario and run the chosen policies through it."""
    t0 = time.perf_counter()
    speeds = reality_speeds(args.reality_speed, spec)  # flags first: bad ones fail at once
    load = load_demand(args)
    prices = load_prices(args, spec, load.demand.duration_s)
    if args.profiles == "measured":
        tables = {v.name: build_table(spec, v, load.demand.tokens) for v in spec.variants}
        spec = with_profiles(spec, compare(spec, tables))
    elif args.profiles == "model":
        spec = without_profiles(spec)
    learning = args.profiles != "declared"
    names = [
        n.strip()
        for item in (args.policy or [",".join(DEFAULT_POLICIES)])
        for n in item.split(",")
        if n.strip()
    ]
    policies = [
        p if learning or not isinstance(p, Paretoscale) else replace(p, correction=False)
        for p in build_policies(names, spec, load.peak_rps, args.cold_start)
    ]
    sc = build_scenario(
        spec,
        load.demand,
        prices,
        speeds,
        args.seed,
        args.metrics_delay_seconds,
        args.rate_window_seconds,
        cache,
    )
    if n_policies is not None:
        n_policies(sum(1 for p in policies if not isinstance(p, str)) * sc.ticks)
    oracle = run_oracle(sc)
    runs = [oracle if isinstance(p, str) else run_policy(sc, p, progress) for p in policies]
    return Outcome(name, sc, runs, oracle, load, time.perf_counter() - t0)


def _title(o: Outcome) -> str:
    d = o.scenario.demand
    return (
        f"{o.name}: {d.duration_s / 86400:.2f} days, {d.ticks} ticks of {d.tick_s:g} s, "
        f"{o.load.description}; {d.arrivals.sum():,.0f} requests (mean {d.rate_rps.mean():.1f} req/s)"
    )


def _calibrate(args: argparse.Namespace, docs: list[tuple[str, ModelDeploymentSpec]]) -> int:
    pool, _ = token_pool(args, None)
    out: list[Any] = []
    for name, spec in docs:
        tables = {v.name: build_table(spec, v, pool) for v in spec.variants}
        gaps = compare(spec, tables)
        if args.output == "json":
            out.append(
                {
                    "modelDeployment": name,
                    "variants": [
                        {
                            "name": g.variant,
                            "basis": g.basis,
                            "declaredCapacity": round(g.declared_capacity_rps, 4),
                            "perfmodelCapacity": round(g.perfmodel_capacity_rps, 4),
                            "capacityRatio": None
                            if g.capacity_ratio is None
                            else round(g.capacity_ratio, 4),
                            "perfmodelMaxRps": round(g.perfmodel_max_rps, 4),
                            "latencyRatios": [round(r, 4) for r in g.latency_ratios],
                            "profile": [
                                {
                                    "requestsPerSecond": p.requests_per_second,
                                    "latencySeconds": p.latency_seconds,
                                }
                                for p in g.derived
                            ],
                        }
                        for g in gaps
                    ],
                }
            )
        else:
            out.append(gaps_text(name, spec, gaps))
    if args.output == "json":
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        print("\n\n".join(str(t) for t in out))
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The flags; argparse exits 2 on a malformed one."""
    args = _parser().parse_args(list(argv))
    if not args.tick_seconds > 0:
        raise SpecError("--tick-seconds", [f"must be > 0, got {args.tick_seconds}"])
    return args


def replay(
    args: argparse.Namespace, progress: TextIO | None = None, cache: TableCache | None = None
) -> list[Outcome]:
    """Every ModelDeployment in the file through the chosen policies; a progress bar on
    `progress` when given."""
    text = read_text(args.file, "-f")
    outcomes = []
    for md in replayable(text, args.file):
        bar = _Bar(progress) if progress is not None else None
        outcomes.append(
            replay_one(
                md.metadata.name,
                md.spec,
                args,
                bar.update if bar else None,
                bar.start if bar else None,
                cache,
            )
        )
        if bar is not None:
            bar.close()
    return outcomes


def render(outcomes: Sequence[Outcome], output: str) -> str:
    """The tables (with wall time) or the JSON document."""
    if output == "json":
        docs: list[dict[str, Any]] = []
        for o in outcomes:
            d = o.scenario.demand
            extra = {
                "modelDeployment": o.name,
                "days": round(d.duration_s / 86400, 4),
                "ticks": d.ticks,
                "requests": round(float(d.arrivals.sum()), 1),
                "load": o.load.description,
            }
            docs.append(to_json(_summaries(o), extra))
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2)
    return "\n\n".join(
        table(_title(o), _summaries(o)) + f"\nwall time {o.wall_s:.1f} s" for o in outcomes
    )


def _summaries(o: Outcome) -> list[Summary]:
    """The report's rows of one replay, latency at the spec's SLO percentile."""
    pct = o.scenario.spec.slo.percentile
    return summarize(o.runs, o.scenario.demand.tick_s, o.oracle, pct)


def _plot(path: str, outcomes: Sequence[Outcome]) -> None:
    try:
        for i, o in enumerate(outcomes):
            out = (
                path if len(outcomes) == 1 else str(Path(path).with_stem(f"{Path(path).stem}-{i}"))
            )
            names = [v.name for v in o.scenario.spec.variants]
            plot(out, _title(o), o.runs, names, o.scenario.demand.tick_s, _summaries(o))
    except ImportError:
        raise SpecError("--plot", ["needs matplotlib: pip install 'paretoscale[plot]'"]) from None
    except (OSError, ValueError) as e:  # a path it cannot write, an unknown file extension
        why = getattr(e, "strerror", None) or e
        raise SpecError("--plot", [f"cannot write {path}: {why}"]) from None


def replayable(text: str, source: str) -> list[ModelDeployment]:
    """The ModelDeployments of `text`; SpecError for one whose GPU types the simulator has no
    figures for (the built-in table, api/gpus.py) or cannot run."""
    mds = parse_manifests(text, source)
    for md in mds:
        problems = gpu_type_problems(md.spec, BUILTIN) or estimate_problems(md.spec, BUILTIN)
        if problems:
            raise SpecError(
                f"{source} ({md.metadata.name}, replayed on the built-in GPU types)", problems
            )
    return mds


def run(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.calibrate_profiles:
        text = read_text(args.file, "-f")
        docs = [(md.metadata.name, md.spec) for md in replayable(text, args.file)]
        return _calibrate(args, docs)
    if args.plot and (problem := unwritable(args.plot)):
        raise SpecError("--plot", [problem])  # before the replay, not after it
    show = args.progress or sys.stderr.isatty()
    outcomes = replay(args, sys.stderr if show else None)
    if args.plot:
        _plot(args.plot, outcomes)
    print(render(outcomes, args.output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`paretoscale replay ...`; 0 on success, 2 on bad input (with what to change)."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # argparse: --help (0) or a malformed flag (2, usage printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    except SpecError as e:
        print(f"error: {e.source}:", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
