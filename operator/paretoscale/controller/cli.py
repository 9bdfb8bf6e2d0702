"""`paretoscale run`: start the operator."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from paretoscale.config import OperatorSettings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paretoscale run",
        description="Run the operator: watch ModelDeployments, read Prometheus every tick, keep "
        "each on its best variant and replica count. Every flag also reads from PARETOSCALE_<FLAG> "
        "(e.g. PARETOSCALE_PROMETHEUS_URL); flags win.",
        epilog="examples:\n  paretoscale run --prometheus-url http://prometheus:9090\n"
        "  paretoscale run -n llm -n chat --tick-seconds 15 --default-mode Recommend\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="namespace to watch (repeatable); default: all",
    )
    p.add_argument(
        "--prometheus-url", help="Prometheus base URL; without it, decisions use priors only"
    )
    p.add_argument("--prometheus-bearer-token-file")
    p.add_argument("--tick-seconds", type=float, help="poll and decision interval (default 30)")
    p.add_argument("--rate-window", help="PromQL range for rates and histograms (default 2m)")
    p.add_argument("--stale-after-seconds", type=float)
    p.add_argument(
        "--queries-file", help="YAML: query name -> PromQL template overriding a default"
    )
    p.add_argument(
        "--default-mode", choices=["Recommend"], help="force every ModelDeployment to Recommend"
    )
    p.add_argument(
        "--price",
        action="append",
        metavar="TYPE=USD",
        help="price fallback per GPU type (repeatable)",
    )
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--health-port", type=int)
    p.add_argument(
        "--leader-election",
        action="store_true",
        default=None,
        help="HA: run several replicas; the one holding a coordination.k8s.io Lease acts",
    )
    p.add_argument("--lease-name", help="name of the Lease (default paretoscale)")
    p.add_argument("--lease-namespace", help="namespace of the Lease (default: default)")
    p.add_argument("--kubeconfig", help="kubeconfig path (default: in-cluster, then KUBECONFIG)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    overrides = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("kubeconfig", "verbose", "price")
    }
    if args.price:
        try:
            overrides["price_fallback"] = {
                t: float(u) for t, _, u in (p.partition("=") for p in args.price)
            }
        except ValueError:
            print(f"error: --price expects TYPE=USD, got {args.price}", file=sys.stderr)
            return 2
    try:
        settings = OperatorSettings(**overrides)
    except ValidationError as e:
        print("error: invalid operator settings:", file=sys.stderr)
        for err in e.errors():
            print(f"  {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","message":%(message)r}',
    )
    logging.getLogger("paretoscale").info("settings %s", json.dumps(settings.model_dump()))
    from paretoscale.controller.startup import run_operator

    asyncio.run(run_operator(settings, args.kubeconfig))
    return 0
