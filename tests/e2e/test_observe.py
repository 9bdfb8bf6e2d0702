"""The metrics poller against a real Prometheus: rates, quantiles, prices, outage and recovery.

Debian's prometheus binary scrapes, through file_sd, fake vLLM pods (counters and histograms
with vLLM 0.33's names and bucket edges, growing at known rates) and the price exporter
(paretoscale.sim.prices). The poller runs its real loop in a background thread. The test checks
the snapshot against the known rates and against Prometheus's own histogram_quantile, then
stops Prometheus (the next snapshot carries the reason and observation_for() reports the load
as unavailable, not zero), restarts it and checks the poller recovers. A second test scrapes
the real simulator (`python -m paretoscale.sim serve`, driven by `sim load`): an idle replica
is a live zero, and its histograms read the same as Prometheus's histogram_quantile.

These tests start its own Prometheus instead of using the session `cluster` fixture, because it
stops and restarts it. `PARETOSCALE_RECORD_OBSERVE=1` rewrites the recorded query answers the
unit tests parse (tests/unit/observe/data/recorded_tick.json).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from paretoscale.api.manifest import parse_manifests
from paretoscale.config import OperatorSettings
from paretoscale.observe.observation import observation_for
from paretoscale.observe.prometheus import MetricsPoller, connect
from paretoscale.observe.queries import DEFAULT_TEMPLATES, LATENCY_METRIC_NAMES, LATENCY_QUERIES
from paretoscale.observe.snapshot import MetricsSnapshot
from paretoscale.sim.prices import FakeNode, PriceExporter

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "assistant-llama-8b.yaml"
RECORDED = REPO / "tests" / "unit" / "observe" / "data" / "recorded_tick.json"
WINDOW = "10s"  # rate window: 10 scrapes at 1 s

# vLLM 0.33 bucket edges (vllm/v1/metrics/buckets.py), as DESIGN.md lists them.
E2E_EDGES = (
    0.3,
    0.5,
    0.8,
    1,
    1.5,
    2,
    2.5,
    5,
    10,
    15,
    20,
    30,
    40,
    50,
    60,
    120,
    240,
    480,
    960,
    1920,
    7680,
)
TTFT_EDGES = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
    20,
    40,
    80,
    160,
    640,
    2560,
)
ITL_EDGES = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
    20,
    40,
    80,
)


def _cdf(edges: tuple[float, ...], points: Mapping[float, float]) -> list[float]:
    """Cumulative share of observations <= each edge, from a few (edge -> share) points."""
    out, share = [], 0.0
    for e in edges:
        share = points.get(e, share)
        out.append(share)
    return [*out, 1.0]


# Share of requests at or below each edge (a step CDF over a few edges, 1.0 at +Inf).
E2E_CDF = _cdf(
    E2E_EDGES,
    {0.3: 0.0, 0.5: 0.05, 0.8: 0.2, 1: 0.4, 1.5: 0.7, 2: 0.85, 2.5: 0.92, 5: 0.97, 10: 0.99},
)
TTFT_CDF = _cdf(
    TTFT_EDGES,
    {0.01: 0.02, 0.02: 0.1, 0.04: 0.4, 0.06: 0.7, 0.08: 0.85, 0.1: 0.93, 0.25: 0.99, 0.5: 1.0},
)
ITL_CDF = _cdf(ITL_EDGES, {0.01: 0.3, 0.025: 0.8, 0.05: 0.97, 0.075: 0.995, 0.1: 1.0})
PROMPT_TOKENS, OUTPUT_TOKENS = 1000.0, 200.0  # per request
ITL_PER_REQUEST = OUTPUT_TOKENS - 1


@dataclass(frozen=True)
class Pod:
    """One fake vLLM replica: labels for file_sd and the rate it serves [req/s]."""

    namespace: str
    modeldeployment: str
    variant: str
    requests_per_s: float
    spec_decode: bool = False


PODS = (
    Pod("llm", "assistant", "bf16", 3.0),
    Pod("llm", "assistant", "bf16", 3.0),
    Pod("llm", "assistant", "w4a16-l40s", 2.0),
    Pod("llm", "assistant", "bf16-eagle3", 0.5, spec_decode=True),
    Pod("other", "chat", "v1", 7.0),  # outside settings.namespaces: must not be read
)
ACCEPTANCE = 0.7


def _metrics_text(pod: Pod, elapsed_s: float) -> str:
    """vLLM-style /metrics for a pod that has served `requests_per_s` for `elapsed_s`."""
    n = pod.requests_per_s * elapsed_s
    base = 'model_name="meta-llama/Llama-3.1-8B-Instruct",engine="0"'
    lines = [
        "# TYPE vllm:request_success_total counter",
        f'vllm:request_success_total{{{base},finished_reason="stop"}} {0.9 * n!r}',
        f'vllm:request_success_total{{{base},finished_reason="length"}} {0.1 * n!r}',
        f'vllm:request_success_total{{{base},finished_reason="abort"}} 0.0',
    ]
    for name, edges, cdf, per_request in (
        ("vllm:e2e_request_latency_seconds", E2E_EDGES, E2E_CDF, 1.0),
        ("vllm:time_to_first_token_seconds", TTFT_EDGES, TTFT_CDF, 1.0),
        ("vllm:inter_token_latency_seconds", ITL_EDGES, ITL_CDF, ITL_PER_REQUEST),
    ):
        lines.append(f"# TYPE {name} histogram")
        count = n * per_request
        for le, share in zip([*(repr(float(e)) for e in edges), "+Inf"], cdf, strict=True):
            lines.append(f'{name}_bucket{{{base},le="{le}"}} {share * count!r}')
        lines.append(f"{name}_count{{{base}}} {count!r}")
        lines.append(f"{name}_sum{{{base}}} {count * 0.5!r}")
    lines += [
        "# TYPE vllm:prompt_tokens_total counter",
        f"vllm:prompt_tokens_total{{{base}}} {n * PROMPT_TOKENS!r}",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{base}}} {n * OUTPUT_TOKENS!r}",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{base}}} 3.0",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{base}}} 1.0",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{base}}} 0.42",
    ]
    if pod.spec_decode:
        draft = n * 600.0
        lines += [
            "# TYPE vllm:spec_decode_num_draft_tokens_total counter",
            f"vllm:spec_decode_num_draft_tokens_total{{{base}}} {draft!r}",
            "# TYPE vllm:spec_decode_num_accepted_tokens_total counter",
            f"vllm:spec_decode_num_accepted_tokens_total{{{base}}} {ACCEPTANCE * draft!r}",
        ]
    return "\n".join(lines) + "\n"


class FakeVllm:
    """One HTTP server per pod, on loopback, serving /metrics computed from the wall clock."""

    def __init__(self, pods: tuple[Pod, ...]) -> None:
        self.pods = pods
        self.started_at = time.time()
        self.servers: list[tuple[Pod, ThreadingHTTPServer]] = []

    def start(self) -> None:
        for pod in self.pods:
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(pod))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append((pod, server))

    def stop(self) -> None:
        for _, server in self.servers:
            server.shutdown()
            server.server_close()

    def file_sd(self) -> list[dict[str, Any]]:
        return [
            {
                "targets": [f"127.0.0.1:{server.server_address[1]}"],
                "labels": {
                    "namespace": pod.namespace,
                    "modeldeployment": pod.modeldeployment,
                    "variant": pod.variant,
                },
            }
            for pod, server in self.servers
        ]

    def _handler(self, pod: Pod) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = _metrics_text(pod, time.time() - fake.started_at).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPrometheus:
    """Debian's prometheus on a free loopback port, scraping file_sd every second."""

    def __init__(self, binary: str, workdir: pathlib.Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.file_sd_dir = workdir / "file_sd"
        self.file_sd_dir.mkdir()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: file_sd\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.file_sd_dir}/*.json']\n"
            "        refresh_interval: 1s\n"
        )

    def start(self) -> None:
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after 30 s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log_tail(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def add_targets(self, name: str, groups: list[dict[str, Any]]) -> None:
        tmp = self.file_sd_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(groups))
        tmp.rename(self.file_sd_dir / f"{name}.json")  # atomic: Prometheus never reads half a file


def _prometheus_binary() -> str | None:
    for candidate in (
        os.environ.get("PROMETHEUS_BIN"),
        "/usr/bin/prometheus",
        shutil.which("prometheus"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def prometheus(tmp_path: pathlib.Path) -> Iterator[LocalPrometheus]:
    binary = _prometheus_binary()
    if binary is None:
        if os.environ.get("PARETOSCALE_E2E") == "skip":
            pytest.skip("no prometheus binary (/usr/bin/prometheus) and PARETOSCALE_E2E=skip")
        pytest.fail(
            "no prometheus binary: install Debian's package (apt-get install prometheus, as "
            "hack/cluster does), set PROMETHEUS_BIN, or set PARETOSCALE_E2E=skip",
            pytrace=False,
        )
    prom = LocalPrometheus(binary, tmp_path)
    try:
        yield prom
    finally:
        prom.stop()


class RecordingClient:
    """Wraps PrometheusConnect and keeps the last answer of each query (for recorded JSON)."""

    def __init__(self, inner: PrometheusConnect) -> None:
        self.inner = inner
        self.answers: dict[str, Any] = {}

    def custom_query(self, query: str, params: dict[str, Any] | None = None) -> Any:
        result = self.inner.custom_query(query, params=params)
        self.answers[query] = result
        return result


class BackgroundPoller:
    """MetricsPoller.run() on its own event loop in a thread, as the operator runs it."""

    def __init__(self, poller: MetricsPoller) -> None:
        self.poller = poller
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.poller.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as e:  # surfaced by the test
            self.error = e
        finally:
            self.loop.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "poller did not stop"


def _assistant(s: MetricsSnapshot) -> dict[str, Any]:
    return s.for_modeldeployment("llm", "assistant")


def _rates_settled(s: MetricsSnapshot) -> bool:
    mine = _assistant(s)
    expected = {"bf16": 6.0, "w4a16-l40s": 2.0, "bf16-eagle3": 0.5}
    return (
        s.problem is None
        and set(mine) == set(expected)
        and all(
            mine[v].requests_per_s is not None and abs(mine[v].requests_per_s - r) < 0.03 * r
            for v, r in expected.items()
        )
        and "H100" in s.gpu_prices_usd_per_hour
    )


def test_poller_against_real_prometheus(
    prometheus: LocalPrometheus, wait_for: Callable[..., Any]
) -> None:
    spec = parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec
    fake = FakeVllm(PODS)
    exporter = PriceExporter(
        [FakeNode("h100-0", "H100"), FakeNode("h100-1", "H100"), FakeNode("l40s-0", "L40S")],
        prices={"H100": 6.88},  # no L40S price: the observation falls back to settings
    )
    settings = OperatorSettings(
        prometheus_url=prometheus.url,
        rate_window=WINDOW,
        tick_seconds=1.0,
        namespaces=["llm"],
        price_fallback={"L40S": 1.2},
        prometheus_timeout_seconds=5.0,
    )
    client = RecordingClient(connect(settings))
    poller = MetricsPoller(settings, client=client)
    background = BackgroundPoller(poller)
    try:
        fake.start()
        host, port = exporter.start()
        prometheus.add_targets("vllm", fake.file_sd())
        prometheus.add_targets(
            "prices", [{"targets": [f"{host}:{port}"], "labels": {"job_name": "opencost"}}]
        )
        prometheus.start()
        background.start()

        # 1. Live figures once the rate window is full of samples.
        snap = wait_for(
            lambda: (s := poller.latest()) is not None and _rates_settled(s) and s,
            timeout_s=45,
            what="settled request rates in the poller's snapshot",
        )
        assert snap.queries_run == poller.queries_per_tick == len(DEFAULT_TEMPLATES) == 15
        assert {k.namespace for k in snap.variants} == {"llm"}, "the namespace selector leaked"
        bf16 = _assistant(snap)["bf16"]
        assert bf16.replicas_reporting == 2
        assert bf16.running == 6 and bf16.waiting == 2
        assert bf16.kv_cache_usage == pytest.approx(0.42)
        assert bf16.tokens_per_request == pytest.approx(PROMPT_TOKENS + OUTPUT_TOKENS, rel=0.02)
        assert bf16.spec_decode_acceptance is None
        assert _assistant(snap)["bf16-eagle3"].spec_decode_acceptance == pytest.approx(
            ACCEPTANCE, rel=0.01
        )
        assert snap.gpu_prices_usd_per_hour == {"H100": pytest.approx(6.88)}

        # Without a namespace list the selector is empty (`metric{}`): every namespace is read.
        everywhere = asyncio.run(
            MetricsPoller(settings.model_copy(update={"namespaces": []})).poll_once()
        )
        assert everywhere.problem is None, everywhere.problem
        assert {k.namespace for k in everywhere.variants} == {"llm", "other"}

        # 2. Python's quantiles equal Prometheus's histogram_quantile on the same data, same instant.
        direct = PrometheusConnect(prometheus.url)
        prometheus_quantiles: dict[str, dict[str, str]] = {}
        for metric, query in LATENCY_QUERIES.items():
            hist = bf16.latency[metric]
            bucket_query = poller.rendered()[query]
            for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
                answer = direct.custom_query(
                    f"histogram_quantile({q}, {bucket_query})", params={"time": f"{snap.at:.3f}"}
                )
                theirs = next(
                    float(r["value"][1])
                    for r in answer
                    if r["metric"].get("variant") == "bf16"
                    and r["metric"].get("modeldeployment") == "assistant"
                )
                prometheus_quantiles.setdefault(metric, {})[repr(q)] = repr(theirs)
                ours = hist.quantile(q)
                if math.isnan(theirs):  # q = 0 with an empty first bucket: 0/0
                    assert ours is None, (metric, q, ours)
                    continue
                assert ours is not None, (metric, q)
                assert ours.value == pytest.approx(theirs, rel=1e-9, abs=1e-12), (
                    LATENCY_METRIC_NAMES[metric],
                    q,
                )
                assert ours.lower_edge <= ours.value <= ours.upper_edge
        p95 = bf16.latency["e2e"].quantile(0.95)
        assert p95 is not None and (p95.lower_edge, p95.upper_edge) == (2.5, 5.0)

        if os.environ.get("PARETOSCALE_RECORD_OBSERVE") == "1":
            RECORDED.parent.mkdir(parents=True, exist_ok=True)
            named = {n: client.answers[p] for n, p in poller.rendered().items()}
            RECORDED.write_text(
                json.dumps(
                    {
                        "at": snap.at,
                        "window": WINDOW,
                        "results": named,
                        # Prometheus's own histogram_quantile(q, ...) for llm/assistant/bf16.
                        "histogram_quantile_bf16": prometheus_quantiles,
                    },
                    indent=1,
                )
                + "\n"
            )

        # 3. The observation decide() reads.
        seen = observation_for(
            snap,
            "llm",
            "assistant",
            spec,
            now=snap.at + 1,
            stale_after_s=settings.stale_after_seconds,
            price_fallback=settings.price_fallback,
        )
        obs = seen.observation
        assert obs.requests_per_s == pytest.approx(8.5, rel=0.03)
        assert obs.metrics_problem is None
        assert obs.usd_per_gpu_hour == {"H100": pytest.approx(6.88), "L40S": 1.2}
        assert seen.price_basis == {"H100": "live", "L40S": "fallback"}
        assert obs.tokens_per_request == pytest.approx(1200, rel=0.02)
        assert seen.variants["bf16"].latency is not None
        assert "between the 2.5 s and 5 s bucket edges" in seen.variants["bf16"].latency_text()
        new = observation_for(
            snap,
            "llm",
            "new-one",
            spec,
            now=snap.at,
            stale_after_s=120,
            price_fallback={},
        ).observation
        assert new.requests_per_s is None
        assert "no vllm:request_success_total series for llm/new-one" in (new.metrics_problem or "")

        # 4. A price change reaches the snapshot.
        request = urllib.request.Request(
            f"http://{host}:{port}/prices", data=json.dumps({"H100": 12.29}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.load(r)["H100"] == 12.29
        wait_for(
            lambda: poller.latest().gpu_prices_usd_per_hour.get("H100") == pytest.approx(12.29),
            timeout_s=15,
            what="the new H100 price in the snapshot",
        )

        # 5. Prometheus stops: the next snapshot says why, and the load is unavailable, not zero.
        prometheus.stop()
        down = wait_for(
            lambda: (s := poller.latest()).problem and "connection refused" in s.problem and s,
            timeout_s=15,
            what="a snapshot with the connection problem",
        )
        assert down.problem == f"Prometheus at {prometheus.url}: connection refused"
        assert down.queries_run == 1, "an unreachable Prometheus should cost one query per tick"
        unavailable = observation_for(
            down,
            "llm",
            "assistant",
            spec,
            now=down.at,
            stale_after_s=120,
            price_fallback={"L40S": 1.2},
        ).observation
        assert unavailable.requests_per_s is None
        assert unavailable.metrics_problem == f"Prometheus at {prometheus.url}: connection refused"
        assert unavailable.usd_per_gpu_hour == {"L40S": 1.2}

        # 6. Prometheus is back: the poller recovers by itself.
        prometheus.start()
        back = wait_for(
            lambda: (s := poller.latest()) is not None and _rates_settled(s) and s,
            timeout_s=40,
            what="recovered rates after the restart",
        )
        assert back.at > down.at
        assert poller.ticks >= 3
        assert background.error is None
    finally:
        background.stop()
        prometheus.stop()
        exporter.stop()
        fake.stop()


def _start(args: list[str], log: pathlib.Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _end(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_poller_reads_the_real_simulator(
    prometheus: LocalPrometheus, wait_for: Callable[..., Any], tmp_path: pathlib.Path
) -> None:
    """`paretoscale sim serve` exposes what the queries read: idle is a live zero, load shows."""
    spec = parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec
    port = _free_port()
    model = "meta-llama/Llama-3.1-8B-Instruct"
    settings = OperatorSettings(prometheus_url=prometheus.url, rate_window=WINDOW, tick_seconds=1.0)
    poller = MetricsPoller(settings)
    background = BackgroundPoller(poller)
    sim: subprocess.Popen[bytes] | None = None
    load: subprocess.Popen[bytes] | None = None
    try:
        sim = _start(
            [sys.executable, "-m", "paretoscale.sim", "serve", model, "--host", "127.0.0.1",
             "--port", str(port), "--sim-gpu", "H100"],
            tmp_path / "sim.log",
        )  # fmt: skip
        labels = {"namespace": "llm", "modeldeployment": "simulated", "variant": "bf16"}
        prometheus.add_targets("sim", [{"targets": [f"127.0.0.1:{port}"], "labels": labels}])
        prometheus.start()
        background.start()

        # Running but idle: the counters exist at 0, so the load is a live zero, not unknown.
        idle = wait_for(
            lambda: (
                (s := poller.latest()).for_modeldeployment("llm", "simulated").get("bf16")
                and s.for_modeldeployment("llm", "simulated")["bf16"].requests_per_s is not None
                and s
            ),
            timeout_s=30,
            what="the simulator's series in the snapshot",
        )
        seen = observation_for(idle, "llm", "simulated", spec, idle.at, 120, {})
        assert seen.observation.requests_per_s == 0.0
        assert seen.observation.metrics_problem is None
        assert seen.variants["bf16"].replicas_reporting == 1
        assert seen.variants["bf16"].latency is None  # no requests: no latency, not 0 s

        load = _start(
            [sys.executable, "-m", "paretoscale.sim", "load", "--url", f"http://127.0.0.1:{port}",
             "--rate-rps", "4", "--duration-s", "40", "--model", model],
            tmp_path / "load.log",
        )  # fmt: skip
        busy = wait_for(
            lambda: (
                (s := poller.latest())
                and (m := s.for_modeldeployment("llm", "simulated").get("bf16"))
                and m.requests_per_s is not None
                and m.requests_per_s > 2.0
                and s
            ),
            timeout_s=30,
            what="the simulated load in the snapshot",
        )
        bf16 = busy.for_modeldeployment("llm", "simulated")["bf16"]
        assert bf16.requests_per_s == pytest.approx(4.0, rel=0.6)  # Poisson over a 10 s window
        # 256 + 128 tokens per request (loadgen defaults); while the load ramps up, prompts are
        # counted at admission and requests at completion, so the ratio runs high for a window.
        assert bf16.tokens_per_request is not None
        assert 0.8 * (256 + 128) < bf16.tokens_per_request < 2 * (256 + 128)
        for metric, query in LATENCY_QUERIES.items():
            ours = bf16.latency[metric].quantile(0.9)
            answer = PrometheusConnect(prometheus.url).custom_query(
                f"histogram_quantile(0.9, {poller.rendered()[query]})",
                params={"time": f"{busy.at:.3f}"},
            )
            theirs = float(answer[0]["value"][1])
            assert ours is not None and ours.value == pytest.approx(theirs, rel=1e-9), metric
        assert background.error is None
    finally:
        background.stop()
        _end(load)
        _end(sim)
        prometheus.stop()
