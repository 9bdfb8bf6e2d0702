"""Open-loop load generator: replays a trace or a rate shape against simulators (or vLLM) on
loopback and reports what it achieved.

Targets are explicit URLs or a Service: its ready endpoints are re-resolved every second
(EndpointSlices, else selector + Ready pods) and mapped to loopback ports through the
bridge's endpoints.json, so a Service selector move (a variant switch) is followed. Requests
are `/v1/completions` with a prompt of exactly the planned token count (4 characters per
token), `max_tokens` = planned output, `ignore_eos`, streamed so TTFT is measured. A failed
request is a non-2xx answer, a connection error or a timeout. Only 127.0.0.1/localhost/::1
targets are allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

import aiohttp
import numpy as np

from paretoscale.cliargs import MAX_RATE_RPS, MAX_SECONDS, integer, number, seed
from paretoscale.sim import traces

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class PlannedRequest:
    at_s: float  # seconds after the start (wall)
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class LoadReport:
    """What a load run achieved. Rates per wall second, latencies in wall seconds."""

    planned: int
    sent: int
    ok: int
    errors: int
    duration_s: float  # first send to last completion
    offered_rps: float  # sent / sending window
    achieved_rps: float  # ok / duration_s
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    e2e_p50_s: float
    e2e_p90_s: float
    e2e_p99_s: float
    e2e_mean_s: float
    ttft_mean_s: float
    output_tokens_total: int
    max_start_lag_s: float  # how late the worst request started (concurrency bound)
    per_target: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def check_loopback(url: str) -> str:
    """The URL without a trailing slash; ValueError unless it points at loopback."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.hostname not in LOOPBACK and f"[{parsed.hostname}]" not in LOOPBACK:
        raise ValueError(f"refusing non-loopback target {url!r}: traffic goes to 127.0.0.1 only")
    return f"{parsed.scheme}://{parsed.netloc}"


# ----- plans (pure) ---------------------------------------------------------------------------
def plan_from_trace(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    *,
    time_scale: float = 1.0,
    start_s: float = 0.0,
    duration_s: float | None = None,
    max_requests: int | None = None,
) -> list[PlannedRequest]:
    """Requests of a trace from `start_s` (trace seconds), compressed by `time_scale`
    (wall = trace / time_scale), cut at `duration_s` wall seconds and `max_requests`."""
    mask = arrival_s >= start_s
    t = (arrival_s[mask] - start_s) / time_scale
    p, o = prompt_tokens[mask], output_tokens[mask]
    plan = [
        PlannedRequest(float(a), max(1, int(b)), max(1, int(c)))
        for a, b, c in zip(t, p, o, strict=True)
    ]
    if duration_s is not None:
        plan = [r for r in plan if r.at_s < duration_s]
    return plan[:max_requests] if max_requests is not None else plan


def plan_poisson(
    arrival_s: np.ndarray,
    lengths: tuple[np.ndarray, np.ndarray] | tuple[int, int],
    rng: np.random.Generator,
    *,
    duration_s: float | None = None,
    max_requests: int | None = None,
) -> list[PlannedRequest]:
    """Requests at the given arrival times with lengths drawn from a trace (two arrays) or
    fixed (two ints)."""
    times = arrival_s[arrival_s < duration_s] if duration_s is not None else arrival_s
    if max_requests is not None:
        times = times[:max_requests]
    n = len(times)
    if isinstance(lengths[0], np.ndarray) and isinstance(lengths[1], np.ndarray):
        p, o = traces.sample_lengths(lengths[0], lengths[1], n, rng)
    else:
        p = np.full(n, int(lengths[0]))
        o = np.full(n, int(lengths[1]))
    return [
        PlannedRequest(float(t), max(1, int(a)), max(1, int(b)))
        for t, a, b in zip(times, p, o, strict=True)
    ]


def constant_rate_arrivals(
    rate_rps: float, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson arrivals at `rate_rps` for `duration_s` seconds."""
    if rate_rps <= 0:
        raise ValueError(f"rate must be positive, got {rate_rps}")
    n = rng.poisson(rate_rps * duration_s)
    return np.sort(rng.uniform(0.0, duration_s, n))


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ----- targets (I/O) --------------------------------------------------------------------------
class Targets:
    """Fixed list of base URLs; `pick` chooses one at random (like kube-proxy)."""

    def __init__(self, urls: Sequence[str], seed: int = 0) -> None:
        self.urls = [check_loopback(u) for u in urls]
        self._rng = random.Random(seed)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def pick(self) -> str | None:
        return self._rng.choice(self.urls) if self.urls else None


class ServiceTargets(Targets):
    """A Service's ready pods, mapped through the bridge's endpoints.json, refreshed every
    `refresh_s` seconds in the background."""

    def __init__(
        self, kubeconfig: str | None, namespace: str, service: str, state_dir: str,
        refresh_s: float = 1.0, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__([], seed)
        from paretoscale.sim.kube import api_client

        self._api = api_client(kubeconfig)
        self.namespace, self.service, self.state_dir = namespace, service, state_dir
        self.refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None

    def _resolve(self) -> list[str]:
        from paretoscale.sim.kube import read_endpoints, service_ready_pods

        pods = service_ready_pods(self._api, self.namespace, self.service)
        registry = read_endpoints(self.state_dir)
        keys = [f"{self.namespace}/{p}" for p in pods]
        return [check_loopback(registry[k]) for k in keys if k in registry]

    async def start(self) -> None:
        self.urls = await asyncio.to_thread(self._resolve)
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                self.urls = await asyncio.to_thread(self._resolve)
            except Exception as exc:  # keep the last good set; report and retry
                print(f"WARNING load: resolving {self.service}: {exc}", file=sys.stderr)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._api.close()


# ----- the run (I/O) --------------------------------------------------------------------------
@dataclass
class _Tally:
    ttft: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    sent: int = 0
    tokens: int = 0
    first_send: float | None = None
    last_send: float = 0.0
    last_done: float = 0.0
    max_lag: float = 0.0
    per_target: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def _one(
    session: aiohttp.ClientSession, base: str, req: PlannedRequest, model: str | None,
    stream: bool, tally: _Tally, loop: asyncio.AbstractEventLoop, timeout_s: float,
) -> None:  # fmt: skip
    body: dict[str, object] = {
        "prompt": "tok " * req.prompt_tokens, "max_tokens": req.output_tokens,
        "ignore_eos": True, "stream": stream, "temperature": 0.0,
    }  # fmt: skip
    if model:
        body["model"] = model
    start = loop.time()
    ttft: float | None = None
    tokens = 0
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.post(f"{base}/v1/completions", json=body, timeout=timeout) as resp:
            if resp.status // 100 != 2:
                await resp.read()
                tally.error(f"http_{resp.status}")
                return
            if stream:
                async for line in resp.content:
                    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                        continue
                    if ttft is None:
                        ttft = loop.time() - start
                    tokens += 1
                tokens = max(tokens - 1, 0)  # the final chunk carries finish_reason only
            else:
                data = await resp.json()
                tokens = int(data.get("usage", {}).get("completion_tokens", 0))
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        tally.error(type(exc).__name__)
        return
    end = loop.time()
    tally.ok += 1
    tally.tokens += tokens
    tally.e2e.append(end - start)
    if ttft is not None:
        tally.ttft.append(ttft)
    tally.last_done = max(tally.last_done, end)


async def run_load(
    plan: Sequence[PlannedRequest],
    targets: Targets,
    *,
    concurrency: int = 512,
    duration_s: float | None = None,
    stream: bool = True,
    model: str | None = None,
    timeout_s: float = 600.0,
) -> LoadReport:
    """Send `plan` open-loop (each request at its time, at most `concurrency` in flight) to
    `targets`, stop sending after `duration_s` wall seconds, wait for the ones in flight."""
    loop = asyncio.get_running_loop()
    tally = _Tally()
    sem = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[None]] = []
    await targets.start()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    t0 = loop.time()
    try:
        async with aiohttp.ClientSession(connector=connector) as session:

            async def fire(req: PlannedRequest, base: str) -> None:
                try:
                    await _one(session, base, req, model, stream, tally, loop, timeout_s)
                finally:
                    sem.release()

            for req in plan:
                if duration_s is not None and req.at_s >= duration_s:
                    break
                delay = t0 + req.at_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await sem.acquire()
                now = loop.time()
                tally.max_lag = max(tally.max_lag, now - (t0 + req.at_s))
                base = targets.pick()
                tally.sent += 1
                tally.first_send = now if tally.first_send is None else tally.first_send
                tally.last_send = now
                if base is None:
                    tally.error("no_ready_endpoint")
                    sem.release()
                    continue
                tally.per_target[base] = tally.per_target.get(base, 0) + 1
                tasks.append(loop.create_task(fire(req, base)))
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # cancelled mid-run: no request task may outlive the loop
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await targets.stop()
    first = tally.first_send if tally.first_send is not None else t0
    duration = max(tally.last_done, tally.last_send) - first
    window = tally.last_send - first
    return LoadReport(
        planned=len(plan), sent=tally.sent, ok=tally.ok, errors=tally.errors,
        duration_s=duration, offered_rps=tally.sent / window if window > 0 else 0.0,
        achieved_rps=tally.ok / duration if duration > 0 else 0.0,
        ttft_p50_s=_pct(tally.ttft, 50), ttft_p90_s=_pct(tally.ttft, 90),
        ttft_p99_s=_pct(tally.ttft, 99), e2e_p50_s=_pct(tally.e2e, 50),
        e2e_p90_s=_pct(tally.e2e, 90), e2e_p99_s=_pct(tally.e2e, 99),
        e2e_mean_s=float(np.mean(tally.e2e)) if tally.e2e else float("nan"),
        ttft_mean_s=float(np.mean(tally.ttft)) if tally.ttft else float("nan"),
        output_tokens_total=tally.tokens, max_start_lag_s=tally.max_lag,
        per_target=tally.per_target, error_kinds=tally.error_kinds,
    )  # fmt: skip


# ----- CLI ------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paretoscale sim load", description=__doc__.split("\n")[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", action="append", help="base URL (repeatable), loopback only")
    target.add_argument("--service", help="NAMESPACE/NAME of a Service (needs --state-dir)")
    p.add_argument("--kubeconfig")
    p.add_argument("--state-dir", help="the bridge's state dir (endpoints.json)")
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument("--trace", help="Azure-format trace to replay")
    shape.add_argument("--rate-series", help="ServeGen-format rate series (Poisson per window)")
    shape.add_argument(
        "--rate-rps",
        type=number(0, MAX_RATE_RPS, lo_open=True, unit="requests/s"),
        help="constant Poisson rate",
    )
    p.add_argument(
        "--peak-rps",
        type=number(0, MAX_RATE_RPS, lo_open=True, unit="requests/s"),
        help="scale the rate series to this maximum",
    )
    p.add_argument("--lengths-from", help="Azure-format trace to draw token lengths from")
    p.add_argument("--prompt-tokens", type=integer(1, 10_000_000), default=256)
    p.add_argument("--output-tokens", type=integer(1, 10_000_000), default=128)
    p.add_argument(
        "--time-scale",
        type=number(0, 1e6, lo_open=True),
        default=1.0,
        help="compress trace/series time by this factor",
    )
    p.add_argument(
        "--start-s", type=number(0, MAX_SECONDS), default=0.0, help="offset into the trace"
    )
    p.add_argument(
        "--duration-s",
        type=number(0, MAX_SECONDS, lo_open=True),
        help="stop sending after this many seconds",
    )
    p.add_argument("--max-requests", type=integer(1, 10**9))
    p.add_argument("--concurrency", type=integer(1, 10**6), default=512)
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--model", help="model name to send (default: none)")
    p.add_argument("--seed", type=seed(), default=0)
    p.add_argument("--json-out", help="also write the report here")
    return p  # fmt: skip


def build_plan(ns: argparse.Namespace) -> list[PlannedRequest]:
    rng = np.random.default_rng(ns.seed)
    if ns.trace:
        a, p, o = traces.load_azure_trace(ns.trace)
        return plan_from_trace(a, p, o, time_scale=ns.time_scale, start_s=ns.start_s,
                               duration_s=ns.duration_s, max_requests=ns.max_requests)  # fmt: skip
    lengths: tuple[np.ndarray, np.ndarray] | tuple[int, int] = (ns.prompt_tokens, ns.output_tokens)
    if ns.lengths_from:
        _, lp, lo = traces.load_azure_trace(ns.lengths_from)
        lengths = (lp, lo)
    if ns.rate_series:
        start, rate = traces.load_rate_series(ns.rate_series)
        times = traces.poisson_arrivals(start, rate, rng, peak_rps=ns.peak_rps,
                                        time_compression=ns.time_scale)  # fmt: skip
    else:
        if ns.duration_s is None and ns.max_requests is None:
            raise ValueError("--rate-rps needs --duration-s or --max-requests")
        horizon = ns.duration_s or ns.max_requests / ns.rate_rps * 2
        times = constant_rate_arrivals(ns.rate_rps, horizon, rng)
    return plan_poisson(times, lengths, rng, duration_s=ns.duration_s,
                        max_requests=ns.max_requests)  # fmt: skip


def main(argv: Sequence[str]) -> int:
    ns = _parser().parse_args(list(argv))
    try:
        plan = build_plan(ns)
        if ns.url:
            targets: Targets = Targets(ns.url, seed=ns.seed)
        else:
            if not ns.state_dir or "/" not in ns.service:
                raise ValueError("--service NAMESPACE/NAME needs --state-dir")
            namespace, name = ns.service.split("/", 1)
            targets = ServiceTargets(ns.kubeconfig, namespace, name, ns.state_dir, seed=ns.seed)
    except (ValueError, OSError) as exc:
        print(f"paretoscale sim load: error: {exc}", file=sys.stderr)
        return 2
    run = run_load(
        plan, targets, concurrency=ns.concurrency, duration_s=ns.duration_s,
        stream=not ns.no_stream, model=ns.model,
    )  # fmt: skip
    report = asyncio.run(run)
    print(report.to_json())
    if ns.json_out:
        with open(ns.json_out, "w") as f:
            f.write(report.to_json())
    return 0
