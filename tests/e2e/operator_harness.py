"""Run the real operator (`paretoscale run`) as a process against the e2e cluster.

Each test starts its own operator restricted to its namespace, so tests can kill and restart
it without disturbing each other. Ports are chosen free; the process is always stopped.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from paretoscale.sim.bridge import free_loopback_port as free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "paretoscale.io", "v1alpha1", "modeldeployments"


class OperatorProcess:
    """`paretoscale run -n NAMESPACE` with its log in a file."""

    def __init__(self, kubeconfig: str, namespace: str, log_dir: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_dir / f"operator-{namespace}.log"
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        self.metrics_port, self.health_port = free_port(), free_port()
        cmd = [
            sys.executable,
            "-m",
            "paretoscale.cli",
            "run",
            "-n",
            self.namespace,
            "--kubeconfig",
            self.kubeconfig,
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            *self.extra,
        ]
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARETOSCALE_")}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies under the operator."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def example(name: str, namespace: str, **spec_changes: Any) -> dict[str, Any]:
    """An example ModelDeployment moved to `namespace`, with top-level spec fields replaced."""
    doc = yaml.safe_load((REPO_ROOT / "examples" / name).read_text())
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    doc["spec"].update(spec_changes)
    return dict(doc)


class Cluster:
    """Small typed helpers over the kubernetes client for the operator scenarios."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.ns = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def apply(self, doc: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns,
            PLURAL,
            doc["metadata"]["name"],
            doc,
            field_manager="e2e-gitops",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def md(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.md(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), {})

    def deployments(self) -> dict[str, Any]:
        return {d.metadata.name: d for d in self.apps.list_namespaced_deployment(self.ns).items}

    def replicas(self) -> dict[str, int]:
        return {n: d.spec.replicas for n, d in self.deployments().items()}

    def selector(self, service: str) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_service(service, self.ns).spec.selector)
        except Exception:
            return None

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e.type, e.reason, e.message or "")
            for e in self.core.list_namespaced_event(self.ns).items
        ]


def wait(cond: Any, timeout_s: float, what: str, op: OperatorProcess | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.5)
    tail = f"\noperator log:\n{op.log()}" if op else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}{tail}")


class ApiProxy:
    """An HTTP proxy in front of the real kube-apiserver, for fault injection with real parts:
    the operator gets a kubeconfig pointing at it (plain http on loopback, the same token) and
    every request is forwarded to the API server over TLS, watches streamed.

    Faults: `fail_status` status writes (PUT/PATCH on .../status) answered 500 without being
    forwarded; `stall_writes` holds every write (lease renewals included) unforwarded until the
    client gives up or the stall ends, then answers 503, still unforwarded (a write that never
    reached the server); `after_write(method, path, body)`, called after a write was forwarded
    and before its answer goes back (e.g. to SIGKILL the operator right there). `writes`
    logs every forwarded write: (time.monotonic(), method, path, HTTP status)."""

    def __init__(self, kubeconfig: str, out_dir: Path, name: str) -> None:
        import threading

        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        self.upstream = cluster["server"].rstrip("/")
        self.ca: str | None = cluster.get("certificate-authority")
        if cluster.get("certificate-authority-data"):
            import base64

            self.ca = str(out_dir / f"ca-{name}.crt")
            Path(self.ca).write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        self.port = free_port()
        proxied = copy.deepcopy(cfg)
        proxied["clusters"][0]["cluster"] = {"server": f"http://127.0.0.1:{self.port}"}
        self.kubeconfig = str(out_dir / f"kubeconfig-{name}")
        Path(self.kubeconfig).write_text(yaml.safe_dump(proxied))
        self.fail_status = 0
        self.failed_status = 0
        self.stall_writes = False
        self.after_write: Any = None
        self.writes: list[tuple[float, str, str, int]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"proxy-{name}")

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the API proxy did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def forwarded_writes(self, path_part: str = "") -> list[tuple[float, str, str, int]]:
        with self._lock:
            return [w for w in self.writes if path_part in w[2]]

    def _serve(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        import asyncio
        import ssl

        import aiohttp
        from aiohttp import web

        self._stop = asyncio.Event()
        ctx = ssl.create_default_context(cafile=self.ca) if self.ca else None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx if ctx else False),
            timeout=timeout,
            auto_decompress=False,
        )
        hop = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}

        async def handle(request: web.Request) -> web.StreamResponse:
            method, path = request.method, request.path_qs
            body = await request.read()
            write = method not in ("GET", "HEAD", "OPTIONS")
            if write and self.stall_writes:
                while self.stall_writes and not _gone(request):
                    await asyncio.sleep(0.05)
                return web.Response(status=503, text="stalled by the e2e proxy; not forwarded")
            if write and request.path.endswith("/status") and self.fail_status > 0:
                self.fail_status -= 1
                self.failed_status += 1
                return web.json_response(
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500},
                    status=500,
                )
            headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
            # no Content-Type stays none (the API server reads JSON), not aiohttp's default
            skip = [] if "Content-Type" in request.headers else ["Content-Type"]
            async with session.request(
                method,
                self.upstream + path,
                headers=headers,
                data=body or None,
                skip_auto_headers=skip,
            ) as up:
                out = web.StreamResponse(
                    status=up.status,
                    headers={k: v for k, v in up.headers.items() if k.lower() not in hop},
                )
                if write:
                    with self._lock:
                        self.writes.append((time.monotonic(), method, request.path, up.status))
                    if self.after_write is not None:
                        await asyncio.to_thread(self.after_write, method, request.path, body)
                await out.prepare(request)
                try:
                    async for chunk in up.content.iter_any():
                        await out.write(chunk)
                    await out.write_eof()
                except (aiohttp.ClientError, ConnectionError):
                    pass  # either side went away (a watch ended, the operator was killed)
                return out

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
        await session.close()

    _loop: Any = None


def _gone(request: Any) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
