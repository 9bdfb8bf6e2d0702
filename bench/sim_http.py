"""The simulator over real HTTP against its own discrete-event run: how much latency the HTTP
server and its event loop add, and whether the published orderings survive them.

Slices of the Azure conv trace are replayed over HTTP on 127.0.0.1 against `python -m
paretoscale.sim serve` subprocesses running faster than real time (--sim-time-scale), and
through `paretoscale.sim.scheduler.simulate` (model time, no HTTP) with the same requests.
Printed per server: mean e2e latency over HTTP and simulated (model seconds) and their ratio
(HTTP and event-loop lag only add latency, so a ratio above 1 grows with machine load); per
workload, the ordering ratios the tests check in model time (tests/unit/sim/test_orderings.py).
Nothing is asserted.

    python bench/sim_http.py            # 3 workloads, ~1 minute
    python bench/sim_http.py --quick    # one small workload, seconds (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from paretoscale.sim.loadgen import PlannedRequest, Targets, plan_from_trace, run_load
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.scheduler import simulate
from paretoscale.sim.traces import load_azure_trace
from paretoscale.sim.vllm_args import parse_vllm_args

CONV = Path(__file__).parents[1] / "data" / "traces" / "AzureLLMInferenceTrace_conv.csv"
EAGLE3 = json.dumps({"method": "eagle3", "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
                     "num_speculative_tokens": 3})  # fmt: skip
BF16 = ["meta-llama/Llama-3.1-8B-Instruct", "--dtype", "bfloat16"]
FP8 = ["RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"]
EAGLE = [*BF16, "--speculative-config", EAGLE3]
ACCEPTANCE = 0.6
# name -> (load factor, trace seconds, token cap, time scale, servers)
WORKLOADS = {
    "under load (6x, 2 min)": (6.0, 120.0, None, 8.0, {"bf16": BF16, "fp8": FP8}),
    "low load (1.5x, 1 min)": (1.5, 60.0, None, 8.0, {"bf16": BF16, "eagle3": EAGLE}),
    "high load (60x, 3 min, <=256 tokens)": (60.0, 180.0, 256, 2.0, {"bf16": BF16, "eagle3": EAGLE}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], scale: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = ["--sim-spec-acceptance", str(ACCEPTANCE)] if "--speculative-config" in args else []
    cmd = [sys.executable, "-m", "paretoscale.sim", "serve", *args, *extra, "--host",
           "127.0.0.1", "--port", str(port), "--sim-time-scale", str(scale)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"simulator {shlex.join(args)} did not start") from None
            time.sleep(0.1)


def workload(factor: float, seconds: float, cap: int | None, scale: float
             ) -> tuple[list[PlannedRequest], list[tuple[float, int, int]]]:  # fmt: skip
    arrival, prompt, output = load_azure_trace(CONV)
    keep = arrival < seconds
    arrival, prompt, output = arrival[keep], prompt[keep], output[keep]
    if cap is not None:
        prompt, output = np.minimum(prompt, cap), np.minimum(output, cap)
    plan = plan_from_trace(arrival, prompt, output, time_scale=factor * scale)
    return plan, [(r.at_s * scale, r.prompt_tokens, r.output_tokens) for r in plan]


def run(title: str, factor: float, seconds: float, cap: int | None, scale: float,
        servers: dict[str, list[str]]) -> None:  # fmt: skip
    plan, model_time = workload(factor, seconds, cap, scale)
    started = {n: start(a, scale) for n, a in servers.items()}
    try:
        async def all_servers() -> list[object]:
            return list(await asyncio.gather(*(
                run_load(plan, Targets([url]), concurrency=4096, stream=False)
                for _, url in started.values())))  # fmt: skip

        reports = asyncio.run(all_servers())
    finally:
        for proc, _ in started.values():
            proc.terminate()
            proc.wait(timeout=10)
    print(f"\n{title}: {len(plan)} requests")
    means = {}
    for (name, args), report in zip(servers.items(), reports, strict=True):
        spec = {"spec_acceptance": ACCEPTANCE} if "--speculative-config" in args else {}
        m = ReplicaModel.from_vllm_args(parse_vllm_args(["serve", *args]), "H100", **spec)
        des = float(np.mean([r.e2e_s for r in simulate(m, model_time)]))
        http = report.e2e_mean_s * scale  # type: ignore[attr-defined]
        means[name] = (http, des)
        print(f"  {name:7s} ok {report.ok:4d} errors {report.errors}  mean e2e over HTTP "  # type: ignore[attr-defined]
              f"{http:6.2f} s, simulated {des:6.2f} s, HTTP/simulated {http / des:5.2f}x")
    (a, (ha, da)), (b, (hb, db)) = list(means.items())[:2]
    print(f"  {b}/{a}: {hb / ha:.2f}x over HTTP, {db / da:.2f}x simulated")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    p.add_argument("--quick", action="store_true", help="one small workload (CI)")
    args = p.parse_args()
    print(f"python {sys.version.split()[0]}; servers at --sim-time-scale, one process each")
    for title, (factor, seconds, cap, scale, servers) in WORKLOADS.items():
        if args.quick:
            run(title + " [quick: 20 s]", factor, 20.0, cap, scale, servers)
            break
        run(title, factor, seconds, cap, scale, servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
