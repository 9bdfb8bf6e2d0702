"""A slow API server: an HTTP reverse proxy in front of the real kube-apiserver that delays
every request and hangs the requests about chosen ModelDeployments.

It listens on plain http on the loopback and forwards to the apiserver over https (its CA from
the kubeconfig), passing the client's headers (the bearer token) through, so the operator
behind it authenticates as itself. Responses stream chunk by chunk, so watches work. A hung
request never reaches the apiserver; it ends when its client gives up. Runs its own event
loop in a daemon thread; `stop()` ends it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from paretoscale.sim.bridge import free_loopback_port

# Hop-by-hop and length/encoding headers: aiohttp sets its own on each side.
_DROP = {
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "upgrade",
}


class SlowApiServer:
    """`delay_s` before each request; requests whose path names a ModelDeployment in `hang`
    (`.../modeldeployments/<name>` and its subresources) wait until the client leaves.
    `slow_down(delay_s, hang)` changes both for the requests that arrive from then on."""

    def __init__(self, kubeconfig: str, delay_s: float = 0.0, hang: Iterable[str] = ()) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        self.kubeconfig = config
        self.upstream = cluster["server"].rstrip("/")
        ca_data = cluster.get("certificate-authority-data")
        self.ssl = ssl.create_default_context(
            cafile=cluster.get("certificate-authority"),
            cadata=base64.b64decode(ca_data).decode() if ca_data else None,
        )
        self.slow_down(delay_s, hang)
        self.port = free_loopback_port()
        self.requests = 0
        self.hung = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> SlowApiServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the slow API server did not start")
        return self

    def slow_down(self, delay_s: float, hang: Iterable[str]) -> None:
        self.delay_s = delay_s
        self.hang = frozenset(f"/modeldeployments/{name}" for name in hang)

    def write_kubeconfig(self, path: Path) -> str:
        """The kubeconfig of the API server, pointed at this proxy."""
        config = dict(self.kubeconfig)
        config["clusters"] = [
            {"name": c["name"], "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
            for c in config["clusters"]
        ]
        path.write_text(yaml.safe_dump(config))
        return str(path)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def _hangs(self, path: str) -> bool:
        return any(path.endswith(h) or f"{h}/" in path for h in self.hang)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self._hangs(request.path):
            self.hung += 1
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.5)
            return web.Response(status=504)
        await asyncio.sleep(self.delay_s)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        headers["Accept-Encoding"] = "identity"  # bytes pass through as they come
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            # The kubernetes client sends PUT bodies without a Content-Type (the API server then
            # reads JSON); aiohttp would add application/octet-stream, which it refuses.
            skip_auto_headers=("Content-Type",),
        ) as upstream:
            out = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _DROP},
            )
            with contextlib.suppress(ConnectionResetError):
                await out.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
            return out


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of `name` in a Prometheus text exposition: labels -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = float(s.value)
    return out
