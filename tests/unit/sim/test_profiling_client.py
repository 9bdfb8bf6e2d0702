"""The simulated profiling client (sim/profiling_client.py): the ladder it reads from the
client container's environment, and the vllm bench serve result files it writes, which
profile.py (the parser `paretoscale profile` and the operator use) reads back. One rate is
run over real HTTP against a `python -m paretoscale.sim serve` subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from paretoscale.actuate.profiling import client_env
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.profile import build_profile, measured_mix
from paretoscale.sim.bridge import free_loopback_port
from paretoscale.sim.profiling_client import Ladder, bench_result, ladder_of, run_rate

SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": "served",
        "value": {"perQualityPoint": "1"},
        "slo": {"seconds": 8, "percentile": 99.9},
        "gpus": [{"type": "H100", "usdPerHour": "1", "available": 1}],
        "variants": [{"name": "a", "quality": 0.8, "gpu": {"type": "H100"},
                      "vllm": {"model": "meta-llama/Llama-3.1-8B-Instruct"}, "parameters": 8}],
    }
)  # fmt: skip


def test_ladder_from_the_job_environment() -> None:
    env = client_env(SPEC, SPEC.variants[0], [0.5, 2.0], 20, (100.4, 16.0), "md-profile-a")
    assert ladder_of(env) == Ladder(
        rates=(0.5, 2.0), requests=20, prompt_tokens=100, output_tokens=16,
        percentiles=(50.0, 90.0, 95.0, 99.0, 99.9), served_model="served",
        configmap="md-profile-a",
    )  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_loopback_port()
    cmd = [sys.executable, "-m", "paretoscale.sim", "serve", "meta-llama/Llama-3.1-8B-Instruct",
           "--served-model-name", "served", "--host", "127.0.0.1", "--port", str(port),
           "--sim-time-scale", "8"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_results_parse_as_vllm_bench_serve_files(server: str) -> None:
    ladder = ladder_of(
        client_env(SPEC, SPEC.variants[0], [4.0, 8.0], 12, (200, 20), "md-profile-a")
    )
    files = {}
    for i, rate in enumerate(ladder.rates):
        samples, duration = asyncio.run(run_rate(server, rate, ladder, seed=i))
        files[f"rate-{rate:g}.json"] = json.dumps(
            bench_result(rate, ladder, samples, duration, "20260101-000000")
        )
    rows = build_profile(files, "e2e", 99.9)
    assert [r.requests_per_second for r in rows] == [4.0, 8.0]
    assert all(r.completed == 12 and r.failed == 0 and r.latency_seconds > 0 for r in rows)
    mix = measured_mix(rows)
    assert mix is not None and (mix.prompt_tokens, mix.output_tokens) == (200.0, 20.0)
    for metric in ("ttft", "itl"):
        assert build_profile(files, metric, 95)[0].latency_seconds > 0
