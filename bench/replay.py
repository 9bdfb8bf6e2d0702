"""Decision quality on real traffic: every shipped example through `paretoscale replay`.

For each example: the ServeGen m-large load shape (14 days of 10-minute windows, Alibaba
Cloud Model Studio) scaled to the example's peak, token lengths from the Azure LLM inference
trace 2023 (conversation), Poisson arrivals inside a window; then the Azure conversation
trace itself (1 hour, 19,366 requests, as recorded). All policies side by side, the oracle as
the ceiling. Prints each table and its wall time, and the ratio to an oracle-only replay of
the same inputs (the baseline: building the scenario and the hindsight optimum only).
Nothing is asserted; run `python bench/replay.py` (add `--profiles perfmodel` to plan with
profiles derived from the simulator's performance model, `--days 1` for a quick look).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from paretoscale.replay.cli import parse_args, render, replay

ROOT = Path(__file__).parents[1]
DATA = ROOT / "data"  # the repository's data/ (data/SOURCES.md)

# Peak req/s per example: the best-quality variant needs about half of its GPUs at the peak
# (by its declared profile), so a switch's cut-over, when both variants run, still fits.
EXAMPLES = {
    "assistant-llama-8b.yaml": 60.0,
    "llama-70b-speculative.yaml": 6.0,
    "qwen3-8b-quantization.yaml": 200.0,
}


# The CLI's default policies plus two ablations of the operator's live correction.
POLICIES = (
    "static:best+hpa,static:cheapest+hpa,keda-queue,wva-saturation,paretoscale,"
    "paretoscale:no-correction,paretoscale:guarded,oracle"
)


def timed(argv: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    outcomes = replay(parse_args(argv))
    wall = time.perf_counter() - t0
    return render(outcomes, "table"), wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="the data directory (default: data/)")
    p.add_argument("--days", type=float, default=14.0, help="days of the ServeGen shape")
    p.add_argument("--profiles", choices=["declared", "perfmodel"], default="declared")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", help="run only this example file")
    args = p.parse_args()
    traces = args.data / "traces"
    shape = str(traces / "servegen_m-large_rate.csv")
    conv = str(traces / "AzureLLMInferenceTrace_conv.csv")
    print(f"python {sys.version.split()[0]} on {platform.machine()}, one process, one core")
    for name, peak in EXAMPLES.items():
        if args.only and args.only != name:
            continue
        common = ["-f", str(ROOT / "examples" / name), "--profiles", args.profiles]
        common += ["--seed", str(args.seed)]
        loads = {
            f"ServeGen m-large, {args.days:g} days, peak {peak:g} req/s": [
                "--rate-series", shape, "--peak-rps", str(peak), "--tokens", conv,
                "--days", str(args.days),
            ],
            "Azure conv trace, 1 hour as recorded": ["--trace", conv],
        }  # fmt: skip
        for label, load in loads.items():
            text, wall = timed([*common, *load, "--policy", POLICIES])
            _, base = timed([*common, *load, "--policy", "oracle"])
            print(f"\n== {name}: {label} (profiles: {args.profiles})")
            print(text)
            print(
                f"all policies {wall:.1f} s; oracle-only baseline {base:.1f} s; ratio {wall / base:.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
