"""Load plans (pure), the loopback-only rule, and a short run against an in-process server."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from paretoscale.sim.loadgen import (
    LoadReport,
    PlannedRequest,
    Targets,
    build_plan,
    check_loopback,
    plan_from_trace,
    plan_poisson,
    run_load,
)
from paretoscale.sim.loadgen import _parser as load_parser
from paretoscale.sim.server import ServerConfig, start_server

from .helpers import data_dir, model


@pytest.mark.parametrize(
    ("url", "ok"),
    [("http://127.0.0.1:8000", True), ("localhost:9", True), ("http://[::1]:80/", True),
     ("http://10.0.0.1:8000", False), ("https://api.openai.com", False)],
    ids=["ipv4", "bare-localhost", "ipv6", "private-ip", "internet"],
)  # fmt: skip
def test_only_loopback_targets(url: str, ok: bool) -> None:
    if ok:
        assert check_loopback(url).startswith("http")
    else:
        with pytest.raises(ValueError, match="non-loopback"):
            check_loopback(url)


def test_plan_from_trace_compresses_and_caps() -> None:
    arrival = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    prompt, output = np.array([1, 2, 3, 4, 5]), np.array([5, 4, 3, 2, 0])
    plan = plan_from_trace(arrival, prompt, output, time_scale=10.0, start_s=10.0,
                           duration_s=2.5, max_requests=10)  # fmt: skip
    assert plan == [PlannedRequest(0.0, 2, 4), PlannedRequest(1.0, 3, 3),
                    PlannedRequest(2.0, 4, 2)]  # fmt: skip
    assert len(plan_from_trace(arrival, prompt, output, max_requests=2)) == 2
    assert plan_from_trace(arrival, prompt, output)[-1].output_tokens == 1  # at least one


def test_plan_poisson_fixed_and_sampled_lengths() -> None:
    times = np.array([0.1, 0.2, 0.3, 5.0])
    rng = np.random.default_rng(0)
    fixed = plan_poisson(times, (100, 20), rng, duration_s=1.0)
    assert [(r.prompt_tokens, r.output_tokens) for r in fixed] == [(100, 20)] * 3
    sampled = plan_poisson(times, (np.array([7]), np.array([3])), rng, max_requests=2)
    assert [(r.prompt_tokens, r.output_tokens) for r in sampled] == [(7, 3)] * 2


def test_cli_plans() -> None:
    trace = str(data_dir() / "traces" / "AzureLLMInferenceTrace_conv.csv")
    ns = load_parser().parse_args(["--url", "http://127.0.0.1:1", "--trace", trace,
                                   "--time-scale", "10", "--duration-s", "6"])  # fmt: skip
    plan = build_plan(ns)
    assert 150 < len(plan) < 500 and plan[-1].at_s < 6.0  # ~5.5 req/s x 10 x 6 s
    series = str(data_dir() / "traces" / "servegen_m-large_rate.csv")
    ns = load_parser().parse_args(["--url", "http://127.0.0.1:1", "--rate-series", series,
                                   "--peak-rps", "20", "--time-scale", "600",
                                   "--duration-s", "10", "--lengths-from", trace])  # fmt: skip
    plan = build_plan(ns)
    assert 50 < len(plan) < 200  # 10 windows of 1 s at <= 20 req/s


def test_short_run_against_a_simulator() -> None:
    async def scenario() -> LoadReport:
        server = await start_server(
            model("serve meta-llama/Llama-3.1-8B-Instruct"),
            ServerConfig(served_model_name="m", port=0, time_scale=5.0),
        )
        try:
            plan = [PlannedRequest(0.02 * i, 200, 30) for i in range(50)]
            dead = f"http://127.0.0.1:{_free_port()}"
            targets = Targets([f"http://127.0.0.1:{server.port}", dead], seed=1)
            return await run_load(plan, targets, concurrency=64)
        finally:
            await server.close()

    report = asyncio.run(scenario())
    assert report.sent == 50 and report.ok + report.errors == 50
    assert 10 < report.errors < 40  # the dead target refuses connections
    assert report.output_tokens_total == 30 * report.ok
    assert 0 < report.ttft_p50_s <= report.e2e_p50_s <= report.e2e_p99_s
    assert json.loads(report.to_json())["ok"] == report.ok


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
