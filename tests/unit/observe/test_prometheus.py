"""The poller: fixed queries per tick, one evaluation instant, failures as data, its loop.

Fake clients stand in for Prometheus, except where the HTTP behaviour itself is the point
(connection refused, an error answer, the bearer token): there a real PrometheusConnect talks
to a closed port or to a tiny local HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from paretoscale.config import OperatorSettings
from paretoscale.errors import SpecError
from paretoscale.observe.observation import observation_for
from paretoscale.observe.prometheus import MetricsPoller, poller_for
from paretoscale.observe.queries import DEFAULT_TEMPLATES

# One query per template per tick, whatever the number of ModelDeployments.
QUERIES_PER_TICK = 15
URL = "http://prometheus.monitoring:9090"


def settings(**kw: Any) -> OperatorSettings:
    return OperatorSettings(**{"prometheus_url": URL, "tick_seconds": 30.0, **kw})


class FakeClient:
    """Answers every query from `answer(query)` and records what was asked."""

    def __init__(self, n_modeldeployments: int = 1) -> None:
        self.n = n_modeldeployments
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def custom_query(self, query: str, params: dict[str, Any] | None = None) -> Any:
        self.calls.append((query, params))
        return self.answer(query)

    def answer(self, query: str) -> Any:
        if "node_gpu_hourly_cost" in query:
            return [
                {"metric": {"label_nvidia_com_gpu_product": "NVIDIA-L40S"}, "value": [1, "1.86"]}
            ]
        out: list[dict[str, Any]] = []
        for i in range(self.n):
            labels = {"namespace": "llm", "modeldeployment": f"md-{i}", "variant": "bf16"}
            if "_bucket" in query:
                out += [
                    {"metric": {**labels, "le": le}, "value": [1, v]}
                    for le, v in (("1.0", "2"), ("+Inf", "4"))
                ]
            else:
                out.append({"metric": labels, "value": [1, "4"]})
        return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("n", [1, 1000], ids=["one-modeldeployment", "a-thousand"])
def test_queries_per_tick_do_not_grow_with_modeldeployments(n: int) -> None:
    client = FakeClient(n)
    poller = MetricsPoller(settings(), clock=lambda: 5000.0, client=client)
    snap = run(poller.poll_once())
    assert (
        len(client.calls)
        == snap.queries_run
        == poller.queries_per_tick
        == len(DEFAULT_TEMPLATES)
        == QUERIES_PER_TICK
    )
    assert len(snap.variants) == n
    run(poller.poll_once())
    assert len(client.calls) == poller.queries_total == 2 * QUERIES_PER_TICK and poller.ticks == 2
    # Every ModelDeployment reads its figures from the same snapshot: no more queries.
    spec = _spec()
    for i in (0, n - 1):
        seen = observation_for(poller.latest(), "llm", f"md-{i}", spec, 5000.0, 120, {})
        assert seen.observation.requests_per_s == 4.0
        assert seen.variants["bf16"].latency is not None
    assert len(client.calls) == 2 * QUERIES_PER_TICK


def _spec() -> Any:
    from paretoscale.api.manifest import parse_manifests

    example = Path(__file__).parents[3] / "examples" / "assistant-llama-8b.yaml"
    return parse_manifests(example.read_text(), str(example))[0].spec


def test_one_instant_per_tick_and_the_rendered_queries() -> None:
    client = FakeClient()
    poller = MetricsPoller(
        settings(namespaces=["llm"], rate_window="90s"), clock=lambda: 1234.5, client=client
    )
    snap = run(poller.poll_once())
    assert snap.at == 1234.5
    assert {p["time"] for _, p in client.calls if p} == {"1234.500"}
    sent = [q for q, _ in client.calls]
    assert sent[0] == (
        "sum by (namespace, modeldeployment, variant, finished_reason) "
        '(rate(vllm:request_success_total{namespace=~"llm"}[90s]))'
    )
    assert sorted(sent) == sorted(poller.rendered().values())
    assert snap.gpu_prices_usd_per_hour == {"L40S": 1.86}
    assert snap.source == f"Prometheus at {URL}"


def test_latest_before_the_first_tick_says_so() -> None:
    poller = MetricsPoller(settings(), clock=lambda: 100.0, client=FakeClient())
    snap = poller.latest()
    assert snap.queries_run == 0 and snap.rate_failed
    assert snap.problem == f"Prometheus at {URL}: the first poll has not finished yet"
    obs = observation_for(snap, "llm", "md-0", _spec(), 100.0, 120, {}).observation
    assert obs.requests_per_s is None and obs.metrics_problem == snap.problem


def test_no_prometheus_url_no_poller() -> None:
    assert poller_for(OperatorSettings()) is None
    with pytest.raises(ValueError, match=r"needs settings\.prometheus_url"):
        MetricsPoller(OperatorSettings())
    assert isinstance(poller_for(settings()), MetricsPoller)


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a PromQL duration"):
        MetricsPoller(settings(rate_window="2 minutes"), client=FakeClient())
    queries = tmp_path / "q.yaml"
    queries.write_text("request_rte: up\n")
    with pytest.raises(
        SpecError, match="unknown query name 'request_rte'; valid names: request_rate, "
    ):
        MetricsPoller(settings(queries_file=str(queries)), client=FakeClient())
    queries.write_text(
        "kv_cache_usage: avg by (namespace, modeldeployment, variant) (my_kv{$selector})\n"
    )
    poller = MetricsPoller(settings(queries_file=str(queries)), client=FakeClient())
    assert (
        poller.rendered()["kv_cache_usage"]
        == "avg by (namespace, modeldeployment, variant) (my_kv{})"
    )


class ExplodingClient(FakeClient):
    def answer(self, query: str) -> Any:
        if "kv_cache" in query:
            raise RuntimeError("socket closed mid-answer")
        if " (vllm:num_requests_waiting" in query:  # requests_waiting, not queue_growth
            return {"resultType": "matrix"}  # not an instant vector
        return super().answer(query)


def test_odd_answers_are_failures_of_those_queries_only() -> None:
    poller = MetricsPoller(settings(), clock=lambda: 1.0, client=ExplodingClient())
    snap = run(poller.poll_once())
    assert snap.queries_run == QUERIES_PER_TICK
    assert snap.failed_queries == ("requests_waiting", "kv_cache_usage")
    assert snap.problem == (
        f"requests_waiting: Prometheus at {URL}: TypeError: expected an instant vector, got dict; "
        f"kv_cache_usage: Prometheus at {URL}: RuntimeError: socket closed mid-answer"
    )
    bf16 = snap.for_modeldeployment("llm", "md-0")["bf16"]
    assert bf16.requests_per_s == 4.0 and bf16.waiting is None and bf16.kv_cache_usage is None


def test_run_ticks_until_stopped() -> None:
    client = FakeClient()
    times = iter(range(1000, 2000))
    poller = MetricsPoller(
        settings(tick_seconds=0.01), clock=lambda: float(next(times)), client=client
    )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        while poller.ticks < 3:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    run(main())
    assert poller.ticks >= 3
    assert len(client.calls) == QUERIES_PER_TICK * poller.ticks
    assert poller.latest().problem is None and poller.latest().at > 1000


def test_run_survives_a_bug_in_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    poller = MetricsPoller(settings(tick_seconds=0.01), clock=lambda: 7.0, client=FakeClient())

    def broken(at: float) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(poller, "_poll_blocking", broken)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    run(main())
    snap = poller.latest()
    assert (
        snap.problem == f"Prometheus at {URL}: internal error while polling (see the operator log)"
    )
    assert snap.rate_failed


# --- a real PrometheusConnect over HTTP ------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_one_query_and_says_where() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    poller = MetricsPoller(
        settings(prometheus_url=url, prometheus_timeout_seconds=2), clock=lambda: 50.0
    )
    snap = run(poller.poll_once())
    assert snap.problem == f"Prometheus at {url}: connection refused"
    assert snap.queries_run == 1 and snap.rate_failed
    assert snap.variants == {} and snap.gpu_prices_usd_per_hour == {}
    obs = observation_for(snap, "llm", "assistant", _spec(), 50.0, 120, {}).observation
    assert obs.requests_per_s is None
    assert obs.metrics_problem == f"Prometheus at {url}: connection refused"


@dataclass
class FakeApi:
    url: str
    seen: list[dict[str, str]] = field(default_factory=list)  # query and Authorization header
    slow: dict[str, float] = field(default_factory=dict)  # query substring -> seconds to wait


@pytest.fixture
def fake_prometheus() -> Iterator[FakeApi]:
    """A local HTTP API: `kv_cache` queries get HTTP 400, the others an empty vector."""
    api = FakeApi("")
    seen, slow = api.seen, api.slow

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            seen.append({"query": query["query"][0], "auth": self.headers.get("Authorization", "")})
            for part, delay_s in slow.items():
                if part in query["query"][0]:
                    time.sleep(delay_s)
            body: dict[str, Any]
            if "kv_cache" in query["query"][0]:
                status, body = (
                    400,
                    {"status": "error", "errorType": "bad_data", "error": "parse error"},
                )
            else:
                status, body = (
                    200,
                    {"status": "success", "data": {"resultType": "vector", "result": []}},
                )
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except BrokenPipeError:  # the client timed out (the slow-query tests)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def test_error_answer_and_bearer_token(fake_prometheus: FakeApi, tmp_path: Path) -> None:
    url, seen = fake_prometheus.url, fake_prometheus.seen
    token = tmp_path / "token"
    token.write_text("first\n")
    poller = MetricsPoller(
        settings(prometheus_url=url, prometheus_bearer_token_file=str(token)), clock=lambda: 9.0
    )
    snap = run(poller.poll_once())
    assert snap.failed_queries == ("kv_cache_usage",)
    assert snap.problem is not None
    assert snap.problem.startswith(
        f"kv_cache_usage: Prometheus at {url} answered with an error: HTTP Status Code 400"
    )
    assert "parse error" in snap.problem
    assert not snap.rate_failed and snap.variants == {}
    assert len(seen) == QUERIES_PER_TICK and {s["auth"] for s in seen} == {"Bearer first"}
    # A rotated (projected) token is read again on the next tick.
    token.write_text("second\n")
    run(poller.poll_once())
    assert {s["auth"] for s in seen[QUERIES_PER_TICK:]} == {"Bearer second"}


def test_a_slow_rate_query_ends_the_tick(fake_prometheus: FakeApi) -> None:
    url, seen = fake_prometheus.url, fake_prometheus.seen
    fake_prometheus.slow["vllm:request_success_total"] = 1.0
    poller = MetricsPoller(settings(prometheus_url=url, prometheus_timeout_seconds=0.2))
    snap = run(poller.poll_once())
    assert snap.problem == f"Prometheus at {url}: no answer within the timeout"
    assert snap.queries_run == 1 and snap.rate_failed and len(seen) == 1


def test_a_slow_secondary_query_fails_alone(
    fake_prometheus: FakeApi,
) -> None:
    url = fake_prometheus.url
    fake_prometheus.slow[" (vllm:num_requests_waiting"] = 1.0  # not queue_growth
    poller = MetricsPoller(settings(prometheus_url=url, prometheus_timeout_seconds=0.2))
    snap = run(poller.poll_once())
    assert snap.queries_run == QUERIES_PER_TICK and not snap.rate_failed
    assert snap.failed_queries == ("requests_waiting", "kv_cache_usage")
    assert snap.problem is not None
    assert snap.problem.startswith(
        f"requests_waiting: Prometheus at {url}: no answer within the timeout; kv_cache_usage: "
    )
