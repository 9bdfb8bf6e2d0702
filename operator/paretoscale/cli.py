"""The `paretoscale` command: run | plan | profile | crds | sim | replay.

Each subcommand parses its flags, calls the pure core, prints, and exits 0; bad input exits 2
with the path of the field and what to change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from paretoscale.cliargs import MAX_RATE_RPS, gpu_price, number, unwritable
from paretoscale.errors import ParetoscaleError, ProfileError, SpecError

EXAMPLES = """\
examples:
  paretoscale plan -f examples/assistant-llama-8b.yaml --rate 12 --plot frontier.png
  paretoscale plan -f md.yaml --rate 40 --price H100=2.69 -o json
  paretoscale crds > crds/modeldeployments.paretoscale.io.yaml
  paretoscale profile --latency e2e --percentile 95 results/*.json
  paretoscale profile --estimate -f examples/assistant-llama-8b.yaml --variant bf16

optional extras: plot (matplotlib: plan --plot, replay --plot, the demo's figure), dev (tests)
  pip install 'paretoscale[plot]'
"""


def _prices(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        try:
            gpu, usd = gpu_price(item)
        except ValueError as e:
            raise SpecError("--price", [str(e)]) from None
        out[gpu] = usd
    return out


def _tokens(text: str) -> tuple[float, float]:
    """--tokens IN/OUT: mean prompt and output tokens per request."""
    prompt, sep, output = text.partition("/")
    try:
        if not sep:
            raise ValueError
        p, o = float(prompt), float(output)
    except ValueError:
        raise SpecError(
            "--tokens", [f"expected IN/OUT tokens per request such as 6930/211, got {text!r}"]
        ) from None
    if not (0 < p <= 10_000_000 and 1 <= o <= 10_000_000):  # also NaN and infinity
        raise SpecError(
            "--tokens",
            [f"need 0 < IN <= 10000000 and 1 <= OUT <= 10000000 tokens per request, got {text!r}"],
        )
    return p, o


def _dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False)


def cmd_plan(args: argparse.Namespace) -> int:
    from paretoscale.api.admission import gpu_type_problems
    from paretoscale.api.manifest import parse_manifests
    from paretoscale.config import read_gpu_types
    from paretoscale.decide.evaluate import estimate_problems
    from paretoscale.decide.policy import decide
    from paretoscale.decide.types import CurrentState, Observation
    from paretoscale.plan import plan_json, plan_table, plot_frontier

    path = Path(args.file)
    try:
        text = sys.stdin.read() if args.file == "-" else path.read_text()
    except OSError as e:
        raise SpecError(args.file, [f"cannot read: {e.strerror}"]) from None
    prices = _prices(args.price)
    if args.plot and (problem := unwritable(args.plot)):
        raise SpecError("--plot", [problem])
    tokens = _tokens(args.tokens) if args.tokens else None
    gpu_types = read_gpu_types(args.gpu_types_file, args.gpu_types_preset)
    outputs = []
    for md in parse_manifests(text, args.file):
        if problems := gpu_type_problems(md.spec, gpu_types) or estimate_problems(
            md.spec, gpu_types
        ):
            raise SpecError(f"{args.file} ({md.metadata.name})", problems)
        known = {g.type for g in md.spec.gpus}
        unknown = sorted(set(prices) - known)
        if unknown:
            raise SpecError(
                "--price",
                [
                    f"GPU type {', '.join(unknown)} is not in spec.gpus of {md.metadata.name} ({', '.join(sorted(known))})"
                ],
            )
        prompt, output = tokens if tokens else (None, None)
        decision = decide(
            md.spec,
            Observation(
                at=0.0,
                requests_per_s=args.rate,
                usd_per_gpu_hour=prices,
                prompt_tokens_per_request=prompt,
                output_tokens_per_request=output,
                gpu_types=gpu_types,
            ),
            CurrentState(),
        )
        outputs.append((md.metadata.name, decision))
    if args.plot:
        for name, decision in outputs:
            png = args.plot if len(outputs) == 1 else _suffixed(args.plot, name)
            _plot(plot_frontier, name, decision, png)
    if args.output == "table":
        print("\n\n".join(plan_table(n, d) for n, d in outputs))
    else:
        docs = [plan_json(n, d) for n, d in outputs]
        print(_dump(docs[0] if len(docs) == 1 else docs, args.output))
    return 0


def _suffixed(path: str, name: str) -> str:
    """frontier.png -> frontier-NAME.png: one plot per ModelDeployment of a file."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{name}{p.suffix}"))


def _plot(draw: Any, name: str, decision: Any, path: str) -> None:
    """Draw with `draw`; a missing matplotlib or a path it cannot write is bad input."""
    try:
        draw(name, decision, path)
    except ImportError as e:
        if not (e.name or "").startswith("matplotlib"):
            raise
        raise SpecError("--plot", ["needs matplotlib: pip install 'paretoscale[plot]'"]) from None
    except OSError as e:
        raise SpecError("--plot", [f"cannot write {path}: {e.strerror or e}"]) from None
    except ValueError as e:  # matplotlib: unknown file extension
        raise SpecError(
            "--plot", [f"cannot write {path}: {e}; use a .png (or .svg, .pdf) path"]
        ) from None


def _version() -> str:
    """The installed distribution's version, else the source tree's __version__."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paretoscale")
    except PackageNotFoundError:
        from paretoscale import __version__

        return __version__


def cmd_profile(args: argparse.Namespace) -> int:
    from paretoscale.profile import build_profile, measured_mix

    if args.estimate or args.file:
        return _estimate(args)
    if args.variant or args.tokens:
        flag = "--variant" if args.variant else "--tokens"
        raise SpecError(flag, ["goes with --estimate -f md.yaml"])
    if not args.results:
        raise SpecError(
            "profile", ["give vllm bench serve RESULT.json files, or --estimate -f md.yaml"]
        )
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
    mix = measured_mix(rows)
    tokens = (
        {"promptTokens": round(mix.prompt_tokens, 1), "outputTokens": round(mix.output_tokens, 1)}
        if mix
        else None
    )
    if mix is None:
        print(
            "warning: no total_input_tokens/total_output_tokens/completed in the results: "
            "the profile's token mix is unknown (paretoscale assumes 1155/211)",
            file=sys.stderr,
        )
    elif mix.spread > 0.10:
        print(
            f"warning: the results' token mixes differ by up to {mix.spread:.0%} from their "
            "mean; profile every rate with the same dataset",
            file=sys.stderr,
        )
    if args.output == "json":
        doc: dict[str, Any] = {"profile": points}
        if tokens:
            doc["profileTokens"] = tokens
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"# p{args.percentile:g} {args.latency} latency per replica, from {len(rows)} vllm bench serve results"
        )
        if tokens:
            print(
                f"profileTokens: {{promptTokens: {tokens['promptTokens']:g}, "
                f"outputTokens: {tokens['outputTokens']:g}}}"
            )
        print("profile:")
        for pt in points:
            print(
                f"- {{requestsPerSecond: {pt['requestsPerSecond']:g}, latencySeconds: {pt['latencySeconds']:g}}}"
            )
    return 0


def _estimate(args: argparse.Namespace) -> int:
    """`profile --estimate -f md.yaml`: the performance model's profile of each variant."""
    from paretoscale.api.manifest import parse_manifests
    from paretoscale.config import read_gpu_types
    from paretoscale.economics.work import AZURE_CONVERSATION_MIX, TokenMix
    from paretoscale.profile import estimate_profile, estimate_yaml

    if not args.estimate or not args.file:
        raise SpecError("--estimate" if args.file else "-f", ["--estimate needs -f md.yaml"])
    if args.results:
        raise SpecError("--estimate", ["predicts without result files; drop RESULT.json"])
    mix = TokenMix(*_tokens(args.tokens)) if args.tokens else AZURE_CONVERSATION_MIX
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as e:
        raise SpecError(args.file, [f"cannot read: {e.strerror}"]) from None
    gpus = read_gpu_types(args.gpu_types_file, args.gpu_types_preset)
    out = []
    for md in parse_manifests(text, args.file):
        chosen = [v for v in md.spec.variants if args.variant in (None, v.name)]
        if chosen:
            estimates = [estimate_profile(md.spec, v, mix, gpus) for v in chosen]
            out.append((md.metadata.name, md.spec, estimates))
    if not out:
        names = [v.name for md in parse_manifests(text, args.file) for v in md.spec.variants]
        raise SpecError("--variant", [f"no variant {args.variant!r}; variants: {', '.join(names)}"])
    if args.output == "json":
        docs = [
            {
                "modelDeployment": name,
                "variant": e.variant,
                "basis": "model",
                "uncertainty": e.uncertainty,
                "capacityAtSlo": round(e.capacity_rps, 4),
                "profileTokens": {"promptTokens": e.prompt_tokens, "outputTokens": e.output_tokens},
                "profile": [{"requestsPerSecond": r, "latencySeconds": lat} for r, lat in e.points],
            }
            for name, _, estimates in out
            for e in estimates
        ]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        print("\n\n".join(estimate_yaml(n, spec, es) for n, spec, es in out))
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "plan",
        help="show the frontier and the decision for a ModelDeployment file at a load",
        description="Evaluate every variant of each ModelDeployment in FILE at --rate requests/s: "
        "feasibility under the SLO, replicas, cost, value, the Pareto frontier, and the decision "
        "the operator would make with no history.",
    )
    p.add_argument("-f", "--file", required=True, help="ModelDeployment YAML (- for stdin)")
    p.add_argument(
        "--rate",
        type=number(0, MAX_RATE_RPS, unit="requests/s"),
        required=True,
        help="total request rate, requests/s",
    )
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="TYPE=USD",
        help="override a GPU type's USD per GPU-hour (repeatable), e.g. H100=2.69",
    )
    p.add_argument(
        "--tokens",
        metavar="IN/OUT",
        help="mean prompt/output tokens per request of the load, e.g. 6930/211: capacities are "
        "scaled from each profile's measured mix (profileTokens, default 1155/211)",
    )
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.add_argument("--plot", metavar="PNG", help="draw the frontier to this PNG (the plot extra)")
    p.add_argument(
        "--gpu-types-file",
        metavar="PATH",
        help="YAML `gpuTypes: {NAME: {...}}`: GPU types beyond the built-in table (as the "
        "operator's --gpu-types-file)",
    )
    p.add_argument(
        "--gpu-types-preset",
        choices=["nfd", "gke"],
        default="nfd",
        help="node labels of the built-in GPU types (default nfd)",
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "profile",
        help="turn vllm bench serve result files into a variant profile",
        description="Each RESULT.json is one `vllm bench serve --request-rate R --save-result "
        "--percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 95,99` run against one "
        "replica. Prints the profile as YAML to paste under a variant. With --estimate -f "
        "md.yaml: each variant's profile predicted by the simulator's performance model at the "
        "SLO (basis model, with its uncertainty), what the operator plans with when a variant "
        "has no profile.",
    )
    p.add_argument("results", nargs="*", metavar="RESULT.json")
    p.add_argument("--estimate", action="store_true",
                   help="predict the profile from the performance model (needs -f)")  # fmt: skip
    p.add_argument("-f", "--file", help="ModelDeployment YAML (- for stdin), with --estimate")
    p.add_argument("--variant", metavar="NAME", help="only this variant (--estimate)")
    p.add_argument("--tokens", metavar="IN/OUT",
                   help="mean prompt/output tokens per request (--estimate; default 1155/211, "
                   "the Azure conversation trace)")  # fmt: skip
    p.add_argument("--gpu-types-file", metavar="PATH",
                   help="the operator's GPU type mapping YAML (--estimate)")  # fmt: skip
    p.add_argument("--gpu-types-preset", choices=["nfd", "gke"], default="nfd",
                   help="node labels of the built-in GPU types (default nfd)")  # fmt: skip
    p.add_argument("--latency", choices=["e2e", "ttft", "itl"], default="e2e")
    p.add_argument("--percentile", type=number(0, 100, lo_open=True, hi_open=True), default=95)
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("crds", help="print the ModelDeployment CRD generated from the API types")
    p.set_defaults(func=cmd_crds)

    p = sub.add_parser(
        "docs", help="print the API reference (docs/api.md) generated from the types"
    )
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
    """Run one command. A reader that closes the pipe early (`paretoscale plan | head`) ends
    the output quietly with status 0."""
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's recipe: point stdout at devnull so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


def _run(argv: list[str]) -> int:
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as e:
        if e.source.startswith("-") and len(e.problems) == 1:  # a flag: one line
            print(f"error: {e.source}: {e.problems[0]}", file=sys.stderr)
            return 2
        print(f"error: {e.source}:", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except ParetoscaleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
