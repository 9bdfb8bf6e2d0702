"""What the demo runs on, read and checked before anything starts (bad input fails fast):
the shared data files, the day (schedule.py), the GPU prices, the ModelDeployment with its
compressed timings, and the load generator's plan.
"""

from __future__ import annotations

import argparse
import copy
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.demo import DemoError
from paretoscale.demo.schedule import (
    DemoDay,
    PricePlan,
    Timings,
    clock,
    day_of_series,
    demo_manifest,
    timings_for,
)
from paretoscale.sim.loadgen import PlannedRequest

NAMESPACE = "demo"
NAME = "assistant"
EXAMPLE = "examples/assistant-llama-8b.yaml"
RATE_SERIES = "traces/servegen_m-large_rate.csv"
TOKENS = "traces/AzureLLMInferenceTrace_conv.csv"
AWS_PRICES = "prices/aws_p5.48xlarge_us-east-1_daily.csv"
PRICE_CUT = date(2025, 6, 5)  # AWS p5.48xlarge on demand: $98.32 -> $55.04 per hour
GPUS_PER_P5 = 8
SIM_STARTUP_DELAY_S = 3


@dataclass(frozen=True)
class Inputs:
    """Everything decided before the cluster starts (bad input fails here, fast)."""

    repo: Path
    out: Path
    logs: Path
    state_dir: Path
    tokens_file: Path
    day: DemoDay
    prices: PricePlan
    timings: Timings
    manifest: dict[str, Any]
    spec: ModelDeploymentSpec  # as applied (compressed timings)
    example_spec: ModelDeploymentSpec  # as shipped (for the replayed baseline)

    @property
    def title(self) -> str:
        d, p = self.day, self.prices
        price = (f"H100 ${p.before:.2f} -> ${p.after:.2f}/GPU-h at {clock(p.change_at_day_s)}"
                 if p.changes else f"H100 ${p.after:.2f}/GPU-h")  # fmt: skip
        return (f"{d.label} at a {d.peak_rps:g} req/s peak, 1 day in {d.day_wall_s / 60:g} min "
                f"(x{d.compression:.0f}), {price}")  # fmt: skip


def repo_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "hack" / "cluster").exists():
        raise DemoError(f"no hack/cluster under {root}: run the demo from the repo (hack/demo)")
    return root


def data_files(data_dir: Path) -> dict[str, Path]:
    files = {"series": data_dir / RATE_SERIES, "tokens": data_dir / TOKENS,
             "prices": data_dir / AWS_PRICES}  # fmt: skip
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DemoError(
            "the demo needs its data files (data/ of the repository, or "
            f"--data-dir DIR); missing: {', '.join(missing)}"
        )
    return files


def price_plan(aws_file: Path, spec: ModelDeploymentSpec, change: bool) -> PricePlan:
    """H100 per GPU at the AWS p5.48xlarge price the day before the 2025-06-05 cut, then the
    day of it (without `change`: the latter all day); other GPU types at their spec price."""
    from paretoscale.sim.prices import price_on, read_price_series

    series = read_price_series(aws_file)
    before = price_on(series, PRICE_CUT - timedelta(days=1)) / GPUS_PER_P5
    after = price_on(series, PRICE_CUT) / GPUS_PER_P5
    base: dict[str, float] = {str(g.type): float(g.usd_per_hour) for g in spec.gpus}
    base.pop("H100", None)
    return PricePlan(base, "H100", before if change else after, after)


def without_profiles(example: dict[str, Any]) -> dict[str, Any]:
    """The example with no variant's profile, profileTokens or parameters: what a team that
    has measured nothing applies (the operator plans on the performance model's priors)."""
    out = copy.deepcopy(example)
    for v in out["spec"]["variants"]:
        for key in ("profile", "profileTokens", "parameters"):
            v.pop(key, None)
    return out


def prepare(args: argparse.Namespace) -> Inputs:
    from paretoscale.sim import traces

    repo = repo_root()
    out = Path(args.out).resolve() if args.out else repo / "out"
    data_dir = Path(args.data_dir or os.environ.get("PARETOSCALE_DATA_DIR") or repo / "data")
    files = data_files(data_dir)
    if not args.minutes > 0:
        raise DemoError(f"--minutes must be > 0, got {args.minutes:g}")
    starts, rates = traces.load_rate_series(files["series"])
    try:
        day = day_of_series(list(starts), list(rates), args.day, args.peak_rps,
                            args.minutes * 60.0, label=f"ServeGen m-large day {args.day}")  # fmt: skip
    except ValueError as e:
        raise DemoError(str(e)) from None
    example = yaml.safe_load((repo / EXAMPLE).read_text())
    timings = timings_for(day.day_wall_s)
    applied = without_profiles(example) if args.profiles == "model" else example
    manifest = demo_manifest(applied, NAMESPACE, timings, day.rates_rps[0], SIM_STARTUP_DELAY_S)
    spec = parse_manifests(yaml.safe_dump(manifest), "the demo's ModelDeployment")[0].spec
    return Inputs(
        repo=repo, out=out, logs=out / "demo-logs",
        state_dir=Path(args.state_dir).resolve() if args.state_dir else out / "cluster",
        tokens_file=files["tokens"], day=day,
        prices=price_plan(files["prices"], spec, not args.no_price_change), timings=timings,
        manifest=manifest, spec=spec, example_spec=parse_manifests(yaml.safe_dump(example), EXAMPLE)[0].spec,
    )  # fmt: skip


def load_plan(inputs: Inputs, seed: int, warmup_s: float) -> list[PlannedRequest]:
    """Poisson arrivals: `warmup_s` at the day's first rate, then the compressed day; token
    lengths drawn from the Azure trace."""
    from paretoscale.sim import traces
    from paretoscale.sim.loadgen import constant_rate_arrivals, plan_poisson

    rng = np.random.default_rng(seed)
    day = inputs.day
    warmup = (
        constant_rate_arrivals(day.rates_rps[0], warmup_s, rng) if warmup_s > 0 else np.empty(0)
    )
    times = traces.poisson_arrivals(np.array(day.window_start_s), np.array(day.rates_rps), rng,
                                    time_compression=day.compression)  # fmt: skip
    _, prompt, output = traces.load_azure_trace(inputs.tokens_file)
    return plan_poisson(np.concatenate([warmup, times + warmup_s]), (prompt, output), rng,
                        duration_s=warmup_s + day.day_wall_s)  # fmt: skip
