"""How many requests per second one simulator process sustains on one core, and its memory,
as ratios against a baseline in the same harness: a trivial aiohttp handler that answers
the same /v1/completions request with a canned completion (streamed as one SSE event per
token when asked, like vLLM).

Each server runs in its own subprocess (one core); a client subprocess sends N short
requests with C in flight and reports requests/s. The simulator runs with a huge
--sim-time-scale so GPU time is not the limit: the figure is the HTTP + engine overhead.
RSS is read from /proc after the run (peak: VmHWM). Printed, never asserted.

    python bench/sim.py [--requests 4000] [--concurrency 256] [--max-tokens 16] [--stream]
    python bench/sim.py --quick     # 200 requests (CI: checks the benchmark runs)
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

BASELINE = textwrap.dedent(
    """
    import json, sys
    from aiohttp import web

    def body(n):
        return {"id": "cmpl-x", "object": "text_completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "text": " tok" * n, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 64, "completion_tokens": n, "total_tokens": 64 + n}}

    async def completions(request):
        req = await request.json()
        n = req.get("max_tokens", 16)
        if not req.get("stream"):
            return web.json_response(body(n))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(n):  # one SSE event per token, like vLLM
            chunk = {"id": "cmpl-x", "object": "text_completion", "created": 0, "model": "m",
                     "choices": [{"index": 0, "text": " tok", "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\\n\\n")
        await resp.write(b"data: [DONE]\\n\\n")
        await resp.write_eof()
        return resp

    async def health(request):
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import aiohttp

    async def main(url, n, concurrency, max_tokens, stream):
        sem = asyncio.Semaphore(concurrency)
        body = {"prompt": "tok " * 64, "max_tokens": max_tokens, "stream": stream}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
            async def one():
                async with sem:
                    async with s.post(url + "/v1/completions", json=body) as r:
                        await r.read()
                        return r.status == 200
            start = time.perf_counter()
            ok = sum(await asyncio.gather(*(one() for _ in range(n))))
            print(json.dumps({"ok": ok, "seconds": time.perf_counter() - start}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                     sys.argv[5] == "1"))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(server_cmd: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Start the server ("{port}" in its command), load it from a client subprocess."""
    port = free_port()
    server = subprocess.Popen(
        _with_port(server_cmd, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        idle_rss, _ = rss_mib(server.pid)
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, url, str(args.requests), str(args.concurrency),
             str(args.max_tokens), "1" if args.stream else "0"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(out.stdout)
        rss, peak = rss_mib(server.pid)
        return {"requests_per_s": result["ok"] / result["seconds"], "ok": result["ok"],
                "idle_rss_mib": idle_rss, "rss_mib": rss, "peak_rss_mib": peak}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


def _with_port(cmd: list[str], port: int) -> list[str]:
    return [part.replace("{port}", str(port)) for part in cmd]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--quick", action="store_true", help="200 requests, seconds (CI)")
    args = p.parse_args()
    if args.quick:
        args.requests = min(args.requests, 200)
    has_taskset = subprocess.run(["which", "taskset"], capture_output=True).returncode == 0
    pin = ["taskset", "-c", "0"] if has_taskset else []
    baseline_cmd = [*pin, sys.executable, "-c", BASELINE, "{port}"]
    sim_cmd = [*pin, sys.executable, "-m", "paretoscale.sim", "serve",
               "meta-llama/Llama-3.1-8B-Instruct", "--host", "127.0.0.1", "--port", "{port}",
               "--sim-time-scale", "1000000"]  # fmt: skip
    base = measure(baseline_cmd, args)
    sim = measure(sim_cmd, args)
    mode = "streaming" if args.stream else "non-streaming"
    print(f"{args.requests} {mode} requests of {args.max_tokens} tokens, {args.concurrency} in "
          f"flight, server pinned to one core{' (taskset)' if pin else ''}:")  # fmt: skip
    for name, r in (("baseline aiohttp echo", base), ("paretoscale sim", sim)):
        print(f"  {name:22s} {r['requests_per_s']:8.0f} req/s  RSS {r['rss_mib']:6.1f} MiB "
              f"(idle {r['idle_rss_mib']:.1f}, peak {r['peak_rss_mib']:.1f})")  # fmt: skip
    print(f"  ratio sim / baseline:  throughput {sim['requests_per_s'] / base['requests_per_s']:.2f}"
          f"  peak RSS {sim['peak_rss_mib'] / base['peak_rss_mib']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
