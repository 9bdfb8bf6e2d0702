"""The profiling Job's client on a cluster whose pods run no containers (KWOK): what the Job's
bench container does on real GPUs (actuate/profiling.py), done against a simulator.

For each Running profiling pod (label paretoscale.io/profiling=true) not yet done, a thread:
starts a simulator for the pod's `vllm serve` container (its native-sidecar init container:
same GPU type, flags and argv rules as the bridge's simulators, sim/bridge.py), waits for its
/health, drives it over real HTTP at each rate of the ladder the client container's
environment states (api/profiling.py: Poisson arrivals, `requests` per rate, fixed prompt and
output lengths, ignore_eos, streamed), writes one result file per rate in the format of
`vllm bench serve --save-result` (the keys profile.py reads) into the results ConfigMap, then
annotates the pod sim.paretoscale.io/profiled=true (false when it failed); KWOK's stages
then end the pod Succeeded (Failed), and the Job controller completes the Job. The
simulator is not a Prometheus target: a profiling run never counts as the variant's traffic.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.profiling import (
    ENV_CONFIGMAP,
    ENV_OUTPUT,
    ENV_PERCENTILES,
    ENV_PROMPT,
    ENV_RATES,
    ENV_REQUESTS,
    ENV_SERVED,
    LABEL_PROFILING,
    PROFILED_ANNOTATION,
    result_key,
)
from paretoscale.sim.kube import pod_info

HEALTH_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Ladder:
    """What the client container's environment asks for."""

    rates: tuple[float, ...]
    requests: int
    prompt_tokens: int
    output_tokens: int
    percentiles: tuple[float, ...]
    served_model: str
    configmap: str


def ladder_of(env: Mapping[str, str]) -> Ladder:
    """The ladder from a client container's environment (KeyError/ValueError if malformed)."""
    return Ladder(
        rates=tuple(float(r) for r in env[ENV_RATES].split(",")),
        requests=int(env[ENV_REQUESTS]),
        prompt_tokens=int(env[ENV_PROMPT]),
        output_tokens=int(env[ENV_OUTPUT]),
        percentiles=tuple(float(p) for p in env[ENV_PERCENTILES].split(",")),
        served_model=env[ENV_SERVED],
        configmap=env[ENV_CONFIGMAP],
    )


@dataclass
class _Samples:
    ttft: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    output_tokens: int = 0
    failed: int = 0


def _pkey(p: float, metric: str) -> str:
    """vLLM's percentile key: p95_e2el_ms, p99.9_ttft_ms."""
    return f"p{int(p) if float(p).is_integer() else p:g}_{metric}_ms"


def bench_result(
    rate: float, ladder: Ladder, s: _Samples, duration_s: float, date: str
) -> dict[str, Any]:
    """One `vllm bench serve --save-result` file from the samples of one rate."""
    done = len(s.e2e)
    out: dict[str, Any] = {
        "date": date,
        "backend": "openai",
        "model_id": ladder.served_model,
        "num_prompts": ladder.requests,
        "request_rate": rate,
        "burstiness": 1.0,
        "duration": duration_s,
        "completed": done,
        "failed": s.failed,
        "total_input_tokens": done * ladder.prompt_tokens,
        "total_output_tokens": s.output_tokens,
        "request_throughput": done / duration_s if duration_s > 0 else 0.0,
        "output_throughput": s.output_tokens / duration_s if duration_s > 0 else 0.0,
    }
    itl = s.tpot  # one output token at a time: the mean gap is the time per output token
    for metric, values in (("ttft", s.ttft), ("tpot", s.tpot), ("itl", itl), ("e2el", s.e2e)):
        ms = [v * 1000.0 for v in values]
        out[f"mean_{metric}_ms"] = float(np.mean(ms)) if ms else 0.0
        out[f"median_{metric}_ms"] = float(np.median(ms)) if ms else 0.0
        for p in ladder.percentiles:
            out[_pkey(p, metric)] = float(np.percentile(ms, p)) if ms else 0.0
    return out


async def _one(session: aiohttp.ClientSession, base: str, ladder: Ladder, s: _Samples) -> None:
    body = {
        "model": ladder.served_model, "prompt": "tok " * ladder.prompt_tokens,
        "max_tokens": ladder.output_tokens, "ignore_eos": True, "stream": True,
        "temperature": 0.0,
    }  # fmt: skip
    loop = asyncio.get_running_loop()
    start, first, tokens = loop.time(), None, 0
    try:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with session.post(f"{base}/v1/completions", json=body, timeout=timeout) as r:
            if r.status // 100 != 2:
                s.failed += 1
                return
            async for line in r.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                first = loop.time() if first is None else first
                tokens += 1
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        s.failed += 1
        return
    end = loop.time()
    tokens = max(tokens - 1, 1)  # the last chunk carries the finish reason only
    ttft = (first or end) - start
    s.e2e.append(end - start)
    s.ttft.append(ttft)
    s.tpot.append((end - start - ttft) / max(tokens - 1, 1))
    s.output_tokens += tokens


async def run_rate(base: str, rate: float, ladder: Ladder, seed: int) -> tuple[_Samples, float]:
    """`ladder.requests` requests at Poisson arrivals of `rate` req/s; (samples, duration)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, ladder.requests)
    s = _Samples()
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        t0 = loop.time()
        tasks = []
        at = 0.0
        for gap in gaps:
            at += float(gap)
            delay = t0 + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, base, ladder, s)))
        await asyncio.gather(*tasks)
        return s, loop.time() - t0


def _healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return bool(r.status == 200)
    except Exception:
        return False


class ProfilingRunner:
    """Runs the client of every profiling pod once (see the module docstring)."""

    def __init__(
        self,
        api: Any,
        *,
        namespace: str | None,
        default_gpu: str,
        gpu_types: GpuTypes = BUILTIN,
        python: str = sys.executable,
        state_dir: Path | None = None,
    ) -> None:
        self._api, self.namespace = api, namespace
        self.default_gpu, self.gpu_types, self.python = default_gpu, gpu_types, python
        self.state_dir = state_dir
        self._started: set[str] = set()  # pod uids
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def poll(self, node_labels: Mapping[str, Mapping[str, str]]) -> None:
        """Start a client for each new Running profiling pod."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self._api)
        sel = f"{LABEL_PROFILING}=true"
        pods: Sequence[Any] = (
            core.list_namespaced_pod(self.namespace, label_selector=sel).items
            if self.namespace
            else core.list_pod_for_all_namespaces(label_selector=sel).items
        )
        for pod in pods:
            uid = pod.metadata.uid
            annotations = pod.metadata.annotations or {}
            running = pod.status is not None and pod.status.phase == "Running"
            if uid in self._started or not running or PROFILED_ANNOTATION in annotations:
                continue
            self._started.add(uid)
            t = threading.Thread(target=self._run, args=(pod, dict(node_labels)), daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, pod: Any, node_labels: Mapping[str, Mapping[str, str]]) -> None:
        ns, name = pod.metadata.namespace, pod.metadata.name
        try:
            self._profile(pod, node_labels)
            outcome = "true"
        except Exception as exc:  # the pod fails; the operator reports it
            print(f"WARNING profiling {ns}/{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            outcome = "false"
        from kubernetes import client

        client.CoreV1Api(self._api).patch_namespaced_pod(
            name, ns, {"metadata": {"annotations": {PROFILED_ANNOTATION: outcome}}}
        )

    def _profile(self, pod: Any, node_labels: Mapping[str, Mapping[str, str]]) -> None:
        from kubernetes import client

        from paretoscale.sim.bridge import desired_sims, free_loopback_port

        server = pod.spec.init_containers[0]
        bench = pod.spec.containers[0]
        ladder = ladder_of({e.name: e.value or "" for e in bench.env or []})
        info = pod_info(pod)
        info = replace(
            info,
            command=tuple((server.command or []) + (server.args or [])),
            env={e.name: e.value or "" for e in server.env or []},
        )
        wanted, _ = desired_sims([info], node_labels, self.default_gpu, self.gpu_types)
        spec = wanted[info.key]
        port = free_loopback_port()
        log = None
        if self.state_dir is not None:
            (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
            log = open(self.state_dir / "logs" / f"profile-{ns_name(info.key)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            spec.argv(self.python, port), stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + HEALTH_TIMEOUT_S
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline or self._stop.is_set():
                    raise RuntimeError("the simulator never answered /health")
                time.sleep(0.5)
            files: dict[str, str] = {}
            for i, rate in enumerate(ladder.rates):
                samples, duration = asyncio.run(
                    run_rate(f"http://127.0.0.1:{port}", rate, ladder, seed=i)
                )
                date = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
                files[result_key(rate)] = json.dumps(
                    bench_result(rate, ladder, samples, duration, date)
                )
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if log is not None:
                log.close()
        client.CoreV1Api(self._api).patch_namespaced_config_map(
            ladder.configmap, info.namespace, {"data": files}
        )


def ns_name(key: str) -> str:
    return key.replace("/", "_")
