"""The `paretoscale` command: run | plan | profile | crds | sim | replay.

Each subcommand parses its flags, calls the pure core, prints, and exits 0; bad input exits 2
with the path of the field and what to change.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from paretoscale.errors import ParetoscaleError, ProfileError, SpecError

EXAMPLES = """\
examples:
  paretoscale plan -f examples/llama-8b-h100-l40s.yaml --rate 12
  paretoscale plan -f md.yaml --rate 40 --price H100=2.69 -o json
  paretoscale crds > crds/modeldeployments.paretoscale.io.yaml
  paretoscale profile --latency e2e --percentile 95 results/*.json
"""


def _prices(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        gpu, sep, usd = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[gpu] = float(usd)
        except ValueError:
            raise SpecError(
                "--price", [f"expected TYPE=USD_PER_GPU_HOUR such as H100=2.69, got {item!r}"]
            ) from None
        if out[gpu] < 0:
            raise SpecError("--price", [f"{gpu}: a price cannot be negative ({usd})"])
    return out


def _dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False)


def cmd_plan(args: argparse.Namespace) -> int:
    from paretoscale.api.manifest import parse_manifests
    from paretoscale.decide.policy import decide
    from paretoscale.decide.types import CurrentState, Observation
    from paretoscale.plan import plan_json, plan_table, plot_frontier

    path = Path(args.file)
    try:
        text = sys.stdin.read() if args.file == "-" else path.read_text()
    except OSError as e:
        raise SpecError(args.file, [f"cannot read: {e.strerror}"]) from None
    prices = _prices(args.price)
    if args.rate < 0:
        raise SpecError("--rate", ["the request rate cannot be negative"])
    outputs = []
    for md in parse_manifests(text, args.file):
        known = {g.type for g in md.spec.gpus}
        unknown = sorted(set(prices) - known)
        if unknown:
            raise SpecError(
                "--price",
                [
                    f"GPU type {', '.join(unknown)} is not in spec.gpus of {md.metadata.name} ({', '.join(sorted(known))})"
                ],
            )
        decision = decide(
            md.spec,
            Observation(at=0.0, requests_per_s=args.rate, usd_per_gpu_hour=prices),
            CurrentState(),
        )
        outputs.append((md.metadata.name, decision))
        if args.plot:
            plot_frontier(md.metadata.name, decision, args.plot)
    if args.output == "table":
        print("\n\n".join(plan_table(n, d) for n, d in outputs))
    else:
        docs = [plan_json(n, d) for n, d in outputs]
        print(_dump(docs[0] if len(docs) == 1 else docs, args.output))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from paretoscale.profile import build_profile

    files = {}
    for p in args.results:
        try:
            files[p] = Path(p).read_text()
        except OSError as e:
            raise ProfileError(f"{p}: cannot read: {e.strerror}") from None
    rows = build_profile(files, args.latency, args.percentile)
    for r in rows:
        if r.failed:
            print(
                f"warning: {r.failed} failed requests at {r.requests_per_second:g} req/s",
                file=sys.stderr,
            )
    points = [
        {
            "requestsPerSecond": round(r.requests_per_second, 4),
            "latencySeconds": round(r.latency_seconds, 4),
        }
        for r in rows
    ]
    if args.output == "json":
        print(json.dumps({"profile": points}, indent=2))
    else:
        print(
            f"# p{args.percentile:g} {args.latency} latency per replica, from {len(rows)} vllm bench serve results"
        )
        print("profile:")
        for pt in points:
            print(
                f"- {{requestsPerSecond: {pt['requestsPerSecond']:g}, latencySeconds: {pt['latencySeconds']:g}}}"
            )
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    from paretoscale.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from paretoscale.api.docs import api_markdown

    sys.stdout.write(api_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretoscale",
        description="Keep every LLM you serve on the cost-optimal point of its accuracy-cost "
        "Pareto frontier: pick the vLLM variant and replica count with the highest net value "
        "under the latency SLO, and roll to it safely.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "plan",
        help="show the frontier and the decision for a ModelDeployment file at a load",
        description="Evaluate every variant of each ModelDeployment in FILE at --rate requests/s: "
        "feasibility under the SLO, replicas, cost, value, the Pareto frontier, and the decision "
        "the operator would make with no history.",
    )
    p.add_argument("-f", "--file", required=True, help="ModelDeployment YAML (- for stdin)")
    p.add_argument("--rate", type=float, required=True, help="total request rate, requests/s")
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="TYPE=USD",
        help="override a GPU type's USD per GPU-hour (repeatable), e.g. H100=2.69",
    )
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.add_argument("--plot", metavar="PNG", help="draw the frontier to this PNG (needs matplotlib)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "profile",
        help="turn vllm bench serve result files into a variant profile",
        description="Each RESULT.json is one `vllm bench serve --request-rate R --save-result "
        "--percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 95,99` run against one "
        "replica. Prints the profile as YAML to paste under a variant.",
    )
    p.add_argument("results", nargs="+", metavar="RESULT.json")
    p.add_argument("--latency", choices=["e2e", "ttft", "itl"], default="e2e")
    p.add_argument("--percentile", type=float, default=95)
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("crds", help="print the ModelDeployment CRD generated from the API types")
    p.set_defaults(func=cmd_crds)

    p = sub.add_parser("docs", help="print the API reference (docs/api.md) generated from the types")
    p.set_defaults(func=cmd_docs)

    sub.add_parser(
        "sim",
        help="vLLM-compatible simulator: serve | bridge | load (see sim --help)",
        add_help=False,
    )
    sub.add_parser(
        "replay", help="trace replay of whole policies against each other", add_help=False
    )
    sub.add_parser("run", help="run the operator (kopf)", add_help=False)
    sub.add_parser("demo", help="the demo hack/demo runs (see demo --help)", add_help=False)
    return parser


DELEGATED = {
    "sim": "paretoscale.sim.cli",
    "replay": "paretoscale.replay.cli",
    "run": "paretoscale.controller.cli",
    "demo": "paretoscale.demo.runner",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as e:
        print(f"error: {e.source}:", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except ParetoscaleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
