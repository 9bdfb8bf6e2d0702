"""`paretoscale sim ...`: the simulator's command line (serve, bridge, load, prices).

    paretoscale sim serve MODEL [vllm serve flags] [--sim-gpu H100] [--sim-speed F]
        [--sim-startup-delay-s S] [--sim-seed N] [--sim-params-b B] [--sim-time-scale X]
        [--sim-spec-acceptance A] [--sim-error-rate FRACTION]
    paretoscale sim bridge --kubeconfig K --file-sd-dir D [--namespace NS] [--state-dir S]
    paretoscale sim prices --port P --nodes h100-0=H100,l40s-0=L40S [--series CSV ...]
    paretoscale sim load (--url URL... | --service NS/NAME --kubeconfig K --state-dir S)
        (--trace FILE | --rate-series FILE --peak-rps R | --rate-rps R) [...]

`serve` takes the same arguments as `vllm serve`; flags starting with --sim- are the
simulator's own. Exit codes: 0 on a clean stop, 2 for a malformed command line (as vLLM's
argparse), 1 when the model cannot start on the GPU (does not fit, unsupported precision).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from paretoscale.cliargs import number, seed
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.precision import UnsupportedOnGpu
from paretoscale.sim.roofline import DoesNotFit
from paretoscale.sim.server import ServerConfig, start_server
from paretoscale.sim.vllm_args import VllmArgs, VllmArgsError, parse_vllm_args

_USAGE = "usage: vllm serve [model_tag] [options]"
# On SIGTERM, finish in-flight requests for up to this long (the bridge waits a little more).
DRAIN_S = 25.0


def _sim_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paretoscale sim serve", add_help=False)
    p.add_argument("--sim-gpu", default="H100", help="GPU type from paretoscale.api.gpus")
    p.add_argument(
        "--sim-speed",
        type=number(0, 1000, lo_open=True),
        default=1.0,
        help="reality runs this many times as fast as the model (0.8: 20%% slower)",
    )
    p.add_argument(
        "--sim-startup-delay-s",
        type=number(0, 86400, unit="seconds"),
        default=0.0,
        help="seconds before the port is bound (model loading)",
    )
    p.add_argument("--sim-seed", type=seed(), default=0)
    p.add_argument(
        "--sim-params-b",
        type=number(0, 1e5, lo_open=True, unit="billions"),
        default=None,
        help="parameter count in billions when the name does not say",
    )
    p.add_argument(
        "--sim-time-scale",
        type=number(0, 1e6, lo_open=True),
        default=1.0,
        help="model seconds per wall second (>1 compresses time; tests only)",
    )
    p.add_argument(
        "--sim-spec-acceptance",
        type=number(0, 1),
        default=None,
        help="per-token acceptance rate of speculative drafts (data-dependent)",
    )
    p.add_argument(
        "--sim-error-rate",
        type=number(0, 1),
        default=0.0,
        help='share of requests answered HTTP 500 (finished_reason="error")',
    )
    return p  # fmt: skip


def split_sim_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate --sim-* flags (with their values) from the vLLM command line."""
    sim: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--sim-"):
            sim.append(token)
            if "=" not in token and i + 1 < len(argv):
                sim.append(argv[i + 1])
                i += 1
        else:
            rest.append(token)
        i += 1
    return sim, rest


def _serve(argv: Sequence[str]) -> int:
    sim_argv, vllm_argv = split_sim_flags(argv)
    try:
        sim = _sim_parser().parse_args(sim_argv)
    except SystemExit as exc:
        return int(exc.code or 2)
    try:
        args = parse_vllm_args(vllm_argv)
    except VllmArgsError as exc:
        print(f"{_USAGE}\nvllm serve: error: {exc}", file=sys.stderr)
        return 2
    for flag in args.ignored_flags:
        print(f"WARNING sim: ignoring vLLM flag {flag}", file=sys.stderr)
    try:
        model = ReplicaModel.from_vllm_args(
            args, sim.sim_gpu, sim.sim_speed, params_b=sim.sim_params_b,
            spec_acceptance=sim.sim_spec_acceptance,
        )  # fmt: skip
    except (DoesNotFit, UnsupportedOnGpu, KeyError, ValueError) as exc:
        print(f"ERROR sim: {exc}", file=sys.stderr)
        return 1
    config = ServerConfig(
        served_model_name=args.served_model_name, host=args.host or "0.0.0.0", port=args.port,
        startup_delay_s=sim.sim_startup_delay_s, seed=sim.sim_seed,
        time_scale=sim.sim_time_scale, error_rate=sim.sim_error_rate,
    )  # fmt: skip
    return asyncio.run(_serve_forever(model, config, args))


async def _serve_forever(model: ReplicaModel, config: ServerConfig, args: VllmArgs) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    delay = asyncio.ensure_future(start_server(model, config))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({delay, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        delay.cancel()
        return 0
    server = delay.result()
    print(
        f"INFO sim: serving {config.served_model_name} ({model.precision.name}, "
        f"{model.gpu.type} x{model.tensor_parallel_size}, max_num_seqs={model.max_num_seqs}, "
        f"kv_cache_tokens={model.kv_cache_tokens}) on http://{config.host}:{server.port}",
        file=sys.stderr,
        flush=True,
    )
    await stopper
    await server.close(drain_s=DRAIN_S)
    return 0


def main(argv: list[str]) -> int:
    """Entry point for `paretoscale sim <serve|bridge|load> ...`."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return _serve(rest)
    if command == "bridge":
        from paretoscale.sim.bridge import main as bridge_main

        return bridge_main(rest)
    if command == "load":
        from paretoscale.sim.loadgen import main as load_main

        return load_main(rest)
    if command == "prices":
        from paretoscale.sim.prices import main as prices_main

        return prices_main(rest)
    print(
        f"paretoscale sim: unknown command {command!r} (serve, bridge, load, prices)",
        file=sys.stderr,
    )
    return 2
