"""`paretoscale run`: start the operator."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from paretoscale.cliargs import gpu_price, number, port
from paretoscale.config import OperatorSettings, read_gpu_types
from paretoscale.controller.logs import LEVELS, configure_logging
from paretoscale.errors import SpecError

log = logging.getLogger("paretoscale")


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
    p.add_argument(
        "--tick-seconds",
        type=number(0, 86400, lo_open=True, unit="seconds"),
        help="poll and decision interval (default 30)",
    )
    p.add_argument(
        "--resync-seconds",
        type=number(0, 86400, lo_open=True, unit="seconds"),
        help="list every watched kind again this often; drop what vanished (default 300)",
    )
    p.add_argument("--rate-window", help="PromQL range for rates and histograms (default 2m)")
    p.add_argument("--stale-after-seconds", type=number(0, 1e6, lo_open=True, unit="seconds"))
    p.add_argument(
        "--queries-file", help="YAML: query name -> PromQL template overriding a default"
    )
    p.add_argument(
        "--gpu-types-file",
        help="YAML `gpuTypes: {NAME: {...}}`: GPU types added to the built-in table, or fields "
        "of built-in ones overridden (node label, extended resource, figures)",
    )
    p.add_argument(
        "--gpu-types-preset",
        choices=["nfd", "gke"],
        help="node labels of the built-in GPU types: nfd (nvidia.com/gpu.product, default) or "
        "gke (cloud.google.com/gke-accelerator)",
    )
    p.add_argument(
        "--default-mode", choices=["Recommend"], help="force every ModelDeployment to Recommend"
    )
    p.add_argument(
        "--no-gpu-inventory",
        dest="gpu_inventory",
        action="store_false",
        default=None,
        help="do not watch nodes and pods for free GPUs (then only spec.gpus[].available "
        "bounds replicas; pods that cannot be placed show as CapacityPending)",
    )
    p.add_argument(
        "--price",
        action="append",
        metavar="TYPE=USD",
        help="price fallback per GPU type (repeatable)",
    )
    p.add_argument("--metrics-port", type=port())
    p.add_argument("--health-port", type=port())
    p.add_argument(
        "--leader-election",
        action="store_true",
        default=None,
        help="HA: run several replicas; the one holding a coordination.k8s.io Lease acts",
    )
    p.add_argument("--lease-name", help="name of the Lease (default paretoscale)")
    p.add_argument("--lease-namespace", help="namespace of the Lease (default: default)")
    seconds = number(0, 86400, lo_open=True, unit="seconds")
    p.add_argument(
        "--lease-duration-seconds",
        type=seconds,
        help="a standby takes the Lease over after this without renewal (default 15)",
    )
    p.add_argument(
        "--lease-renew-deadline-seconds",
        type=seconds,
        help="the leader writes nothing once its last renewal is older than this, and steps "
        "down (default 10)",
    )
    p.add_argument("--lease-retry-seconds", type=seconds, help="renewal interval (default 2)")
    p.add_argument(
        "--api-timeout-seconds",
        type=seconds,
        help="every Kubernetes API call gives up after this; at most lease duration - renew "
        "deadline (default 5)",
    )
    p.add_argument("--kubeconfig", help="kubeconfig path (default: in-cluster, then KUBECONFIG)")
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default=os.environ.get("PARETOSCALE_LOG_FORMAT", "json"),
        help="json: one JSON object per line (ts, level, logger, message, object, exception); "
        "text: for a terminal (default json)",
    )
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default=os.environ.get("PARETOSCALE_LOG_LEVEL", "INFO").upper(),
        help="lowest level logged (default INFO)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="same as --log-level DEBUG")
    return p


def main(argv: Sequence[str]) -> int:
    """`paretoscale run`: 2 for bad flags or settings, 1 when the operator stops on an error
    (logged, with its traceback, in the chosen format)."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.log_format not in ("json", "text"):  # a default from PARETOSCALE_LOG_FORMAT
        parser.error(f"PARETOSCALE_LOG_FORMAT: {args.log_format!r} is not json or text")
    if args.log_level not in LEVELS:
        parser.error(f"PARETOSCALE_LOG_LEVEL: {args.log_level!r} is not one of {', '.join(LEVELS)}")
    local = ("kubeconfig", "verbose", "price", "log_format", "log_level")
    overrides = {k: v for k, v in vars(args).items() if v is not None and k not in local}
    if args.price:
        try:
            overrides["price_fallback"] = dict(gpu_price(p) for p in args.price)
        except ValueError as e:
            parser.error(f"argument --price: {e}")
    try:
        settings = OperatorSettings(**overrides)
    except ValidationError as e:
        print("error: invalid operator settings:", file=sys.stderr)
        for err in e.errors():
            print(f"  {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    try:
        gpu_types = read_gpu_types(settings.gpu_types_file, settings.gpu_types_preset)
    except SpecError as e:
        print(f"error: invalid GPU types file {e.source}:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    infinite = _non_finite(settings)
    if infinite:
        print("error: invalid operator settings:", file=sys.stderr)
        for name in infinite:
            print(f"  {name}: must be a finite number", file=sys.stderr)
        return 2
    configure_logging(args.log_format, "DEBUG" if args.verbose else args.log_level)
    log.info("settings %s", json.dumps(settings.model_dump()))
    log.info("GPU types: %s", gpu_types.source)
    from kubernetes.config import ConfigException

    from paretoscale.controller.startup import run_operator

    try:
        asyncio.run(run_operator(settings, args.kubeconfig, gpu_types))
    except ConfigException as e:
        source = args.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        log.critical(
            "no Kubernetes credentials: not in a cluster, and the kubeconfig %s failed: %s; "
            "pass --kubeconfig PATH or set KUBECONFIG",
            source,
            e,
        )
        return 1
    except Exception:
        log.critical("the operator stopped on an error", exc_info=True)
        return 1
    return 0


def _non_finite(settings: OperatorSettings) -> list[str]:
    """Settings (from flags or PARETOSCALE_* variables) that hold NaN or infinity."""
    bad = []
    for name, value in settings.model_dump().items():
        values = value.values() if isinstance(value, dict) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            bad.append(name)
    return bad
