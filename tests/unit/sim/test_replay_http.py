"""A slice of the Azure conv trace replayed over real HTTP on 127.0.0.1 against simulator
subprocesses (`python -m paretoscale.sim serve ...`), showing the published orderings:
FP8 faster than BF16 on H100 under load; EAGLE-3 faster than BF16 at low load and slower at
high load.

The servers run with --sim-time-scale (model time runs 8x wall time; 2x for the high-load
run, whose hundreds of concurrent sequences need the CPU) and the load generator compresses
the trace by the same factor on top of the load factor, so the simulated system sees the
trace at the intended rate while the test takes seconds. Requests are not streamed (e2e
latency only) to keep the client's CPU out of the measurement. Each run is also simulated
without HTTP (the discrete-event run of the same scheduler) to show the server's fidelity.

High load uses the first 3 minutes' arrivals compressed 60x with prompts and outputs capped
at 256 tokens: the published slowdown is for short ShareGPT prompts. With the conv trace's
1,155-token prompts the model predicts EAGLE-3 stays ahead even at saturation
(test_perfmodel.py::test_long_prompts_keep_spec_ahead_at_saturation). The EAGLE-3 server
uses an acceptance rate of 0.6 (chat traffic unlike the head's training data).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from paretoscale.sim.loadgen import LoadReport, PlannedRequest, Targets, plan_from_trace, run_load
from paretoscale.sim.scheduler import simulate
from paretoscale.sim.traces import load_azure_trace

from .helpers import data_dir, model

SCALE = 8.0
HIGH_LOAD_SCALE = 2.0
EAGLE3 = json.dumps({"method": "eagle3", "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
                     "num_speculative_tokens": 3})  # fmt: skip
BF16 = ["meta-llama/Llama-3.1-8B-Instruct", "--dtype", "bfloat16"]
EAGLE = [*BF16, "--speculative-config", EAGLE3, "--sim-spec-acceptance", "0.6"]
SERVERS = {  # name -> (vllm serve args, time scale)
    "bf16": (BF16, SCALE),
    "fp8": (["RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"], SCALE),
    "eagle3": (EAGLE, SCALE),
    "bf16-x2": (BF16, HIGH_LOAD_SCALE),
    "eagle3-x2": (EAGLE, HIGH_LOAD_SCALE),
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for name, (args, scale) in SERVERS.items():
            port = _free_port()
            cmd = [sys.executable, "-m", "paretoscale.sim", "serve", *args, "--host",
                   "127.0.0.1", "--port", str(port), "--sim-time-scale", str(scale)]  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))  # fmt: skip
            urls[name] = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        for url in urls.values():
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def conv_slice(
    load_factor: float, seconds: float, scale: float = SCALE, cap_tokens: int | None = None
) -> tuple[list[PlannedRequest], list[tuple[float, int, int]]]:
    """The first `seconds` of the conv trace at `load_factor` x its rate: the wall-time plan
    for servers running at `scale`, and the same requests in model time for a DES."""
    arrival, prompt, output = load_azure_trace(
        data_dir() / "traces" / "AzureLLMInferenceTrace_conv.csv"
    )
    keep = arrival < seconds
    arrival, prompt, output = arrival[keep], prompt[keep], output[keep]
    if cap_tokens is not None:
        prompt, output = np.minimum(prompt, cap_tokens), np.minimum(output, cap_tokens)
    plan = plan_from_trace(arrival, prompt, output, time_scale=load_factor * scale)
    model_time = [(r.at_s * scale, r.prompt_tokens, r.output_tokens) for r in plan]
    return plan, model_time


def replay(
    urls: dict[str, str],
    names: tuple[str, str],
    workload: tuple[list[PlannedRequest], list[tuple[float, int, int]]],
    scale: float = SCALE,
) -> dict[str, float]:
    """Mean e2e latency (model seconds) of each server over HTTP, printed with the DES's."""
    plan, model_time = workload

    async def both() -> list[LoadReport]:
        runs = [run_load(plan, Targets([urls[n]]), concurrency=4096, stream=False) for n in names]
        return list(await asyncio.gather(*runs))

    reports = asyncio.run(both())
    means = {}
    for name, r in zip(names, reports, strict=True):
        assert r.errors == 0 and r.ok == len(plan), (name, r.error_kinds)
        args = SERVERS[name][0]
        spec = {"spec_acceptance": 0.6} if "--speculative-config" in args else {}
        des = simulate(
            model(
                "serve " + shlex.join(a for a in args if not a.startswith("--sim") and a != "0.6"),
                **spec,
            ),
            model_time,
        )
        des_mean = float(np.mean([x.e2e_s for x in des]))
        means[name] = r.e2e_mean_s * scale
        print(f"\n  {name}: {r.ok} requests, mean e2e {means[name]:.2f} s over HTTP, "
              f"{des_mean:.2f} s simulated without HTTP (model seconds)")  # fmt: skip
        # HTTP and event-loop lag only add latency; on a loaded 2-core machine (CI runs other
        # suites beside this one) that lag reached ~20%, so the agreement band is one-sided.
        assert des_mean * 0.85 <= means[name] <= des_mean * 1.35
    return means


def test_fp8_faster_than_bf16_under_load(servers: dict[str, str]) -> None:
    """The first 2 minutes of conv at 6x its rate (~23 req/s of ~930-token prompts): BF16 is
    near its limit, FP8 (faster weight streaming and GEMMs) is not."""
    r = replay(servers, ("bf16", "fp8"), conv_slice(6.0, 120.0))
    assert r["fp8"] < 0.8 * r["bf16"]


def test_eagle3_faster_at_low_load(servers: dict[str, str]) -> None:
    """The first minute of conv at 1.5x its rate (~5 req/s): latency-bound, speculation wins."""
    r = replay(servers, ("bf16", "eagle3"), conv_slice(1.5, 60.0))
    assert r["eagle3"] < 0.75 * r["bf16"]


def test_eagle3_slower_at_high_load(servers: dict[str, str]) -> None:
    """The first 3 minutes of conv at 60x its rate, short requests: both are past their limit
    and verifying 3 drafts per step costs EAGLE-3 more compute per token than it saves."""
    workload = conv_slice(60.0, 180.0, HIGH_LOAD_SCALE, cap_tokens=256)
    r = replay(servers, ("bf16-x2", "eagle3-x2"), workload, HIGH_LOAD_SCALE)
    assert r["eagle3-x2"] > 1.03 * r["bf16-x2"]
