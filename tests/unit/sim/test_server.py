"""The HTTP simulator in-process on 127.0.0.1: OpenAI endpoints, streaming, errors, the
startup delay, and the /metrics exposition (every vLLM name, type, label and bucket edge
DESIGN.md lists)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from paretoscale.sim.metrics import ITL_BUCKETS_S, REQUEST_BUCKETS_S, TTFT_BUCKETS_S
from paretoscale.sim.server import RunningServer, ServerConfig, start_server

from .helpers import model

T = TypeVar("T")
NAME = "llama-8b"

# DESIGN.md "Metrics read" (vLLM 0.33); cross-checked against the file when it is present.
EXPECTED_BUCKETS = {
    "vllm:time_to_first_token_seconds": (
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20,
        40, 80, 160, 640, 2560,
    ),
    "vllm:inter_token_latency_seconds": (
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40,
        80,
    ),
    "vllm:e2e_request_latency_seconds": (
        0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920,
        7680,
    ),
}  # fmt: skip
EXPECTED_BUCKETS["vllm:request_time_per_output_token_seconds"] = EXPECTED_BUCKETS[
    "vllm:inter_token_latency_seconds"
]
for _name in ("queue_time", "prefill_time", "decode_time"):
    EXPECTED_BUCKETS[f"vllm:request_{_name}_seconds"] = EXPECTED_BUCKETS[
        "vllm:e2e_request_latency_seconds"
    ]
EXPECTED_COUNTERS = (
    "vllm:request_success", "vllm:prompt_tokens", "vllm:generation_tokens",
    "vllm:spec_decode_num_accepted_tokens", "vllm:spec_decode_num_draft_tokens",
)  # fmt: skip
EXPECTED_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting",
                   "vllm:kv_cache_usage_perc")  # fmt: skip


def test_bucket_edges_match_the_metrics_doc() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "metrics.md").read_text()
    for names, edges in (
        ("`time_to_first_token_seconds`", TTFT_BUCKETS_S),
        ("`inter_token_latency_seconds`", ITL_BUCKETS_S),
        ("`e2e_request_latency_seconds`", REQUEST_BUCKETS_S),
    ):
        start = text.index(names)
        ends = [i for i in (text.find("\n- ", start), text.find("\nGone", start)) if i > 0]
        line = text[start : min(ends)]
        numbers = [float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", line)]
        assert tuple(numbers[-len(edges) :]) == edges, names


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


async def _server(**kwargs: Any) -> RunningServer:
    config = ServerConfig(served_model_name=NAME, port=0, **kwargs)
    return await start_server(model("serve meta-llama/Llama-3.1-8B-Instruct"), config)


def test_models_completions_chat_and_metrics() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[str], list[str], str]:
        server = await _server(time_scale=20.0)
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/health") as r:
                    assert r.status == 200
                async with s.get(f"{base}/v1/models") as r:
                    models = await r.json()
                body = {"model": NAME, "prompt": "x" * 400, "max_tokens": 7}
                async with s.post(f"{base}/v1/completions", json=body) as r:
                    completion = await r.json()
                body = {"prompt": "hello", "max_tokens": 5, "stream": True,
                        "stream_options": {"include_usage": True}, "ignore_eos": True}  # fmt: skip
                async with s.post(f"{base}/v1/completions", json=body) as r:
                    assert r.headers["Content-Type"].startswith("text/event-stream")
                    stream = [line.decode().strip() async for line in r.content]
                chat = {"messages": [{"role": "user", "content": "hi there"}],
                        "max_completion_tokens": 3, "stream": True}  # fmt: skip
                async with s.post(f"{base}/v1/chat/completions", json=chat) as r:
                    chat_stream = [line.decode().strip() async for line in r.content]
                async with s.get(f"{base}/metrics") as r:
                    metrics = await r.text()
        finally:
            await server.close()
        return models, completion, stream, chat_stream, metrics

    models, completion, stream, chat_stream, metrics = run(scenario)
    assert models["data"][0]["id"] == NAME and models["data"][0]["max_model_len"] == 131072
    assert completion["usage"] == {"prompt_tokens": 100, "completion_tokens": 7,
                                   "total_tokens": 107}  # fmt: skip
    assert completion["choices"][0]["finish_reason"] == "length"
    events = [json.loads(line[6:]) for line in stream if line.startswith("data: {")]
    texts = [e["choices"][0]["text"] for e in events if e["choices"]]
    assert len([t for t in texts if t]) == 5
    assert events[-1]["usage"]["completion_tokens"] == 5 and stream[-2] == "data: [DONE]"
    chat_events = [json.loads(line[6:]) for line in chat_stream if line.startswith("data: {")]
    assert chat_events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for e in chat_events if e["choices"][0]["delta"].get("content")) == 3
    assert chat_events[-1]["choices"][0]["finish_reason"] == "length"
    check_exposition(metrics, requests=3, prompt_tokens=100 + 2 + 3 + 4 + 2, generated=15)


def check_exposition(text: str, requests: int, prompt_tokens: int, generated: int) -> None:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = {"model_name": NAME, "engine": "0"}
    for name in EXPECTED_COUNTERS:
        assert families[name].type == "counter", name
        for sample in families[name].samples:
            assert {k: sample.labels[k] for k in labels} == labels
    reasons = {s.labels["finished_reason"] for s in families["vllm:request_success"].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert reasons == {"stop", "length", "abort", "error"}
    for name in EXPECTED_GAUGES:
        assert families[name].type == "gauge", name
        assert [s.labels for s in families[name].samples] == [labels]
    for name, edges in EXPECTED_BUCKETS.items():
        fam = families[name]
        assert fam.type == "histogram", name
        les = [s.labels["le"] for s in fam.samples if s.name.endswith("_bucket")]
        assert les == [repr(float(e)) for e in edges] + ["+Inf"], name
        assert all(s.labels["model_name"] == NAME and s.labels["engine"] == "0"
                   for s in fam.samples)  # fmt: skip

    def value(name: str, **match: str) -> float:
        return sum(s.value for s in families[name].samples if s.name == name + "_total"
                   and all(s.labels.get(k) == v for k, v in match.items()))  # fmt: skip

    assert value("vllm:request_success", finished_reason="length") == requests
    assert value("vllm:generation_tokens") == generated
    assert value("vllm:prompt_tokens") == prompt_tokens
    e2e_count = [s.value for s in families["vllm:e2e_request_latency_seconds"].samples
                 if s.name.endswith("_count")]  # fmt: skip
    assert e2e_count == [requests]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/completions", {"model": "other", "prompt": "x"}, 404, "does not exist"),
        ("/v1/completions", {"prompt": "x" * 40, "max_tokens": 200_000}, 400,
         "maximum context length is 131072"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        ("/v1/completions", [1, 2], 400, "JSON object"),
    ],
    ids=["unknown-model", "too-long", "zero-max-tokens", "no-messages", "not-an-object"],
)  # fmt: skip
def test_errors_like_vllm(path: str, body: Any, status: int, message: str) -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        server = await _server()
        try:
            url = f"http://127.0.0.1:{server.port}{path}"
            async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
                return r.status, await r.json()
        finally:
            await server.close()

    got_status, payload = run(scenario)
    assert got_status == status and message in payload["message"]


def test_port_not_bound_during_startup_delay() -> None:
    async def scenario() -> tuple[bool, bool]:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = ServerConfig(served_model_name=NAME, port=port, startup_delay_s=0.6)
        starting = asyncio.ensure_future(
            start_server(model("serve meta-llama/Llama-3.1-8B-Instruct"), config)
        )
        await asyncio.sleep(0.2)
        refused_early = await _refused(port)
        server = await starting
        try:
            refused_late = await _refused(port)
        finally:
            await server.close()
        return refused_early, refused_late

    early, late = run(scenario)
    assert early and not late


async def _refused(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health") as r:
            return r.status != 200
    except aiohttp.ClientConnectorError:
        return True


def test_client_disconnect_counts_an_abort_and_frees_the_seat() -> None:
    async def scenario() -> str:
        server = await _server()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession() as s:
                body = {"prompt": "x", "max_tokens": 5000, "stream": True}
                async with s.post(f"{base}/v1/completions", json=body) as r:
                    await r.content.readline()  # first chunk arrived; hang up
            await asyncio.sleep(0.2)
            assert server.engine.scheduler.idle
            async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics") as r:
                return await r.text()
        finally:
            await server.close()

    text = run(scenario)
    assert (
        'vllm:request_success_total{engine="0",finished_reason="abort",model_name="llama-8b"} 1.0'
        in text
    )


def test_thousand_concurrent_requests_on_one_loop() -> None:
    """One engine loop advances every sequence: 1000 concurrent non-streaming requests of 20
    tokens are all answered in full (how fast is bench/sim.py's business)."""

    async def scenario() -> tuple[int, int]:
        server = await _server(time_scale=10.0)
        base = f"http://127.0.0.1:{server.port}"
        try:
            conn = aiohttp.TCPConnector(limit=1000)
            async with aiohttp.ClientSession(connector=conn) as s:

                async def one() -> int:
                    body = {"prompt": "x" * 400, "max_tokens": 20}
                    async with s.post(f"{base}/v1/completions", json=body) as r:
                        data = await r.json()
                        return int(data["usage"]["completion_tokens"])

                tokens = await asyncio.gather(*(one() for _ in range(1000)))
        finally:
            await server.close()
        return len(tokens), sum(tokens)

    assert run(scenario) == (1000, 20_000)


def test_error_rate_answers_500_and_counts_finished_reason_error() -> None:
    """--sim-error-rate: that share of requests (seeded draw) fails at once with HTTP 500,
    counted as finished_reason="error"; the others are answered as usual."""

    async def scenario() -> tuple[list[int], str]:
        server = await _server(time_scale=50.0, error_rate=0.5, seed=3)
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession() as s:
                statuses = []
                for _ in range(40):
                    body = {"prompt": "hello", "max_tokens": 2}
                    async with s.post(f"{base}/v1/completions", json=body) as r:
                        statuses.append(r.status)
                        if r.status == 500:
                            assert (await r.json())["type"] == "InternalServerError"
                async with s.get(f"{base}/metrics") as r:
                    return statuses, await r.text()
        finally:
            await server.close()

    statuses, text = run(scenario)
    errors = statuses.count(500)
    assert set(statuses) == {200, 500} and 10 <= errors <= 30
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = {
        s.labels["finished_reason"]: s.value
        for s in families["vllm:request_success"].samples
        if s.name.endswith("_total")
    }
    assert counts["error"] == errors and counts["length"] == 40 - errors
