"""A slice of the Azure conv trace over real HTTP on 127.0.0.1 against `python -m
paretoscale.sim serve` subprocesses (BF16 and EAGLE-3), checking only what does not depend on
how busy the machine is: every request is answered, and the served /metrics count exactly the
requests and tokens that were sent. Latencies over HTTP are a benchmark
(`python bench/sim_http.py`), the orderings they show are test_orderings.py (model time).
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from paretoscale.sim.loadgen import Targets, plan_from_trace, run_load
from paretoscale.sim.traces import load_azure_trace

from .helpers import data_dir
from .test_orderings import EAGLE3

BF16 = ["meta-llama/Llama-3.1-8B-Instruct", "--dtype", "bfloat16"]
SERVERS = {
    "bf16": BF16,
    "eagle3": [*BF16, "--speculative-config", EAGLE3, "--sim-spec-acceptance", "0.6"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for name, args in SERVERS.items():
            port = _free_port()
            cmd = [sys.executable, "-m", "paretoscale.sim", "serve", *args, "--host",
                   "127.0.0.1", "--port", str(port), "--sim-time-scale", "8"]  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))  # fmt: skip
            urls[name] = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
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


def counter(metrics: str, name: str) -> float:
    """Sum of every sample of a counter in a Prometheus text exposition."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, metrics, re.MULTILINE))


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_every_request_answered_and_counted(servers: dict[str, str], name: str) -> None:
    arrival, prompt, output = load_azure_trace(
        data_dir() / "traces" / "AzureLLMInferenceTrace_conv.csv"
    )
    plan = plan_from_trace(arrival, prompt, output, time_scale=2.0 * 8, max_requests=60)
    report = asyncio.run(run_load(plan, Targets([servers[name]]), stream=False))
    assert (report.ok, report.errors) == (len(plan), 0), report.error_kinds
    with urllib.request.urlopen(f"{servers[name]}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert counter(metrics, "vllm:request_success_total") == len(plan)
    assert counter(metrics, "vllm:generation_tokens_total") == sum(r.output_tokens for r in plan)
    assert counter(metrics, "vllm:generation_tokens_total") == report.output_tokens_total
    assert counter(metrics, "vllm:prompt_tokens_total") == sum(r.prompt_tokens for r in plan)
