"""The scenario suite: every bench/scenarios/*.yaml through `paretoscale replay`'s machinery.

Each scenario file names a ModelDeployment (examples/), a load (a rate series of data/traces
scaled to a peak, or a per-request trace), a token source (an Azure trace; optionally a
switch to another at an hour), prices (the spec's, or the AWS H100 series of data/prices day
for day) and inventory events (GPUs of a type available from an hour on); the format is in
operator/paretoscale/replay/suite.py. Every scenario runs the same policies: the two static
HPA choices (best quality, cheapest feasible), KEDA on the queue, llm-d's SLO-aware KEDA
law, llm-d WVA's saturation analyzer, paretoscale, and the hindsight oracle.

Prints each scenario's full table (report.py), then one table scenario x policy: net value,
headroom captured ((net - best static) / (oracle - best static): 1 = all of the oracle's
gain over the best fixed choice, < 0 = worse than it), SLO attainment, switches per day,
GPU cost vs the best static policy; then paretoscale against issue #10's targets; and the
wall time. One seed draws one set of arrivals and token lengths; which minute a scale-down
lands in can move a scenario's headroom by 0.2, so `--seeds N` runs each scenario N times and
judges the means (each seed's headroom is shown beside them). Draws one plot per scenario into
out/bench/ (needs matplotlib; --no-plot skips). Nothing is asserted.

  python bench/replay.py                 # the whole suite, full size (a few minutes)
  python bench/replay.py --quick         # each scenario cut to its 1-2 hour quick window (CI)
  python bench/replay.py --only prompt-shift --only burst-10x
  python bench/replay.py --seeds 3       # each scenario at seeds 1-3; the verdict on the means
  python bench/replay.py --list          # the scenarios and what each tests
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from paretoscale.errors import SpecError
from paretoscale.replay.calibrate import compare, with_profiles, without_profiles
from paretoscale.replay.report import Summary, average, plot, summarize, table, to_json
from paretoscale.replay.run import TableCache
from paretoscale.replay.suite import (
    Built,
    ScenarioFile,
    build,
    load_scenario,
    missing_files,
    run,
    scenario_files,
)

ROOT = Path(__file__).parents[1]
SCENARIOS = ROOT / "bench" / "scenarios"
OUT = ROOT / "out" / "bench"


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def suite_table(rows: list[tuple[str, Summary]]) -> str:
    """One line per (scenario, policy)."""
    head = ("scenario", "policy", "netValue $", "headroomCaptured", "sloAttainment",
            "switchesPerDay", "gpuCostVsBestStatic", "p95LatencyVsSlo")  # fmt: skip
    lines = [head]
    for name, s in rows:
        lines.append(
            (
                name,
                s.policy,
                f"{s.net_value_usd:,.0f}",
                _f(s.headroom_captured, ".2f"),
                f"{s.slo_attainment:.2%}",
                f"{s.switches_per_day:.1f}",
                _f(s.gpu_cost_vs_best_static, ".2f"),
                _f(s.p95_latency_vs_slo, ".2f"),
            )
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = []
    for r in lines:
        left = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        out.append("  ".join(left + [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]))
    return "\n".join(out)


PEERS = ("keda-queue", "llmd-slo-keda", "wva-saturation")


def targets(rows: list[tuple[str, Summary]], policy: str = "paretoscale") -> str:
    """Issue #10's targets for `policy`, per scenario: net value >= the best static policy
    and >= every peer; SLO attainment >= 99% where the oracle reaches 99.5%; <= 6 switches a
    day; then the mean headroom captured over the suite (target >= 0.5)."""
    lines = ["scenario          net>=static  net>=peers  SLO (oracle)          sw/day  headroom"]
    headrooms = []
    for name in dict.fromkeys(n for n, _ in rows):
        mine = {s.policy: s for n, s in rows if n == name}
        me = mine.get(policy)
        oracle = mine.get("oracle")
        if me is None:
            continue
        statics = [s for p, s in mine.items() if p.startswith("static:")]
        peers = [s for p, s in mine.items() if p.startswith(PEERS)]
        best = max((s.net_value_usd for s in statics), default=None)
        static_ok = "-" if best is None else ("yes" if me.net_value_usd >= best else "NO")
        peers_ok = "yes" if all(me.net_value_usd >= s.net_value_usd for s in peers) else "NO"
        slo = f"{me.slo_attainment:.2%}"
        if oracle is not None:
            need = oracle.slo_attainment >= 0.995
            ok = "yes" if not need or me.slo_attainment >= 0.99 else "NO"
            slo = f"{slo} ({oracle.slo_attainment:.2%}) {ok}"
        sw = f"{me.switches_per_day:.1f} {'yes' if me.switches_per_day <= 6 else 'NO'}"
        if me.headroom_captured is not None:
            headrooms.append(me.headroom_captured)
        seeds = ", ".join("-" if h is None else f"{h:.2f}" for h in me.headroom_by_seed)
        lines.append(
            f"{name:<17} {static_ok:>11}  {peers_ok:>10}  {slo:<20}  {sw:>6}  "
            f"{'-' if me.headroom_captured is None else format(me.headroom_captured, '.2f')}"
            + (f"  (seeds: {seeds})" if len(me.headroom_by_seed) > 1 else "")
        )
    if headrooms:
        mean = sum(headrooms) / len(headrooms)
        lines.append(f"mean headroomCaptured over {len(headrooms)} scenarios: {mean:.2f} "
                     f"({'yes' if mean >= 0.5 else 'NO'}, target >= 0.5)")  # fmt: skip
    return "\n".join(lines)


def planned_with(built: Built, basis: str) -> Built:
    """The scenario with every policy planning on `basis`: the spec's profiles ("learned"),
    profiles measured on its simulator (the reality tables), or none (the performance-model
    prior, "model")."""
    if basis == "learned":
        return built
    spec = built.spec
    if basis == "measured":
        spec = with_profiles(spec, compare(spec, {t.variant: t for t in built.scenario.tables}))
    else:
        spec = without_profiles(spec)
    sc = dataclasses.replace(built.scenario, spec=spec)
    return dataclasses.replace(built, spec=spec, scenario=sc)


def run_one(
    sf: ScenarioFile, seed: int, args: argparse.Namespace, cache: TableCache, plot_it: bool
) -> tuple[list[Summary], dict[str, Any]]:
    """One scenario at one seed: its table printed (and plotted), its summaries and JSON."""
    t0 = time.perf_counter()
    built = planned_with(build(sf, ROOT, quick=args.quick, seed=seed, cache=cache), args.profiles)
    runs, oracle = run(built)
    sc = built.scenario
    summaries = summarize(runs, sc.demand.tick_s, oracle, built.spec.slo.percentile)
    wall = time.perf_counter() - t0
    d = sc.demand
    title = (
        f"{sf.name}: {d.duration_s / 3600:.1f} h, {d.arrivals.sum():,.0f} requests "
        f"(mean {d.rate_rps.mean():.1f} req/s, peak tick {d.rate_rps.max():.1f}); "
        f"{sf.model_deployment}"
    )
    seeded = f" (seed {seed})" if args.seeds > 1 else ""
    print(f"\n== {title}{seeded}\n   {sf.description}")
    print(table("", summaries).lstrip("\n"))
    print(f"wall time {wall:.1f} s")
    doc = to_json(summaries, {"scenario": sf.name, "seed": seed, "hours": d.duration_s / 3600})
    if plot_it and not args.no_plot:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            names = [v.name for v in built.spec.variants]
            path = args.out / f"{sf.name}{'-quick' if args.quick else ''}.png"
            plot(str(path), title, runs, names, d.tick_s, summaries)
        except ImportError:
            print("(no plot: matplotlib is not installed; pip install 'paretoscale[plot]')")
            args.no_plot = True
    return summaries, doc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python bench/replay.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="replay each scenario's quick window only (1-2 hours; what CI runs)")  # fmt: skip
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this scenario (file stem; repeatable)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--seed", type=int, default=1, help="the first seed (arrivals, token draws)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="run every scenario at seeds SEED..SEED+N-1; the suite table and the "
                   "targets are then the means over them (headroom: each seed's too)")  # fmt: skip
    p.add_argument("--scenarios", type=Path, default=SCENARIOS, help="directory of scenario files")
    p.add_argument("--out", type=Path, default=OUT, help="directory for the plots (out/bench/)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plots")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--profiles", choices=["learned", "measured", "model"], default="learned",
                   help="what every policy plans with, as `paretoscale replay --profiles` "
                   "(learned: the spec's profiles, the operator as shipped)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    files = scenario_files(args.scenarios)
    try:
        scenarios = [load_scenario(f) for f in files]
    except SpecError as e:
        print(f"error: {e.source}: {'; '.join(e.problems)}", file=sys.stderr)
        return 2
    if args.list:
        for sf in scenarios:
            print(f"{sf.name:<18} {sf.model_deployment}\n    {sf.description}")
        return 0
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: give 1 or more", file=sys.stderr)
        return 2
    known = {sf.name for sf in scenarios}
    unknown = [n for n in args.only if n not in known]
    if unknown:
        print(f"error: --only {', '.join(unknown)}: scenarios are {', '.join(sorted(known))}",
              file=sys.stderr)  # fmt: skip
        return 2
    chosen = [sf for sf in scenarios if not args.only or sf.name in args.only]
    for sf in chosen:
        missing = missing_files(sf, ROOT)
        if missing:
            print(f"error: scenario {sf.name}: missing {', '.join(missing)}", file=sys.stderr)
            return 2
    size = "quick windows" if args.quick else "full size"
    print(f"python {sys.version.split()[0]} on {platform.machine()}, one process; {size}")
    cache: TableCache = {}
    rows: list[tuple[str, Summary]] = []
    docs: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for sf in chosen:
        per_seed = []
        for seed in range(args.seed, args.seed + args.seeds):
            summaries, doc = run_one(sf, seed, args, cache, plot_it=seed == args.seed)
            per_seed.append(summaries)
            docs.append(doc)
        rows += [(sf.name, s) for s in (average(per_seed) if args.seeds > 1 else per_seed[0])]
    over = f", mean of seeds {args.seed}..{args.seed + args.seeds - 1}" if args.seeds > 1 else ""
    print(f"\n== suite ({size}{over}): scenario x policy\n{suite_table(rows)}")
    print(f"\n== issue #10 targets for paretoscale\n{targets(rows)}")
    print(f"\nwhole suite {time.perf_counter() - t_all:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(docs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
