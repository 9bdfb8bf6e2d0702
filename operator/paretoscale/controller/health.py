"""/healthz (liveness) and /readyz (readiness), served for the whole life of the process.

/healthz: a standby replica (waiting for the Lease) is alive and answers 200. The active one
answers 200 while its tick loop runs, 503 once no tick finished for `stale_after_s`: a wedged
loop is restarted by the kubelet instead of silently deciding nothing.
/readyz: a standby is ready (it serves /metrics and waits); the active one is ready once its
cache has listed every watched kind and its first tick finished, and 503 before that, so a
rollout of the operator's own Deployment waits for a replica that has started deciding.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web


class Health:
    def __init__(self, stale_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.active = False
        self.last_tick = clock()
        self.ticks = 0

    def ticked(self) -> None:
        self.last_tick = self.clock()
        self.ticks += 1

    def readiness(self) -> tuple[int, str]:
        if not self.active:
            return 200, "standby"
        if self.ticks == 0:
            return 503, "listing the watched objects; no tick yet"
        return 200, "ok"

    def status(self) -> tuple[int, str]:
        if not self.active:
            return 200, "standby"
        age = self.clock() - self.last_tick
        if age > self.stale_after_s:
            return 503, f"no tick for {age:.0f}s"
        return 200, "ok"

    async def serve(self, port: int) -> web.AppRunner:
        async def healthz(_: web.Request) -> web.Response:
            code, text = self.status()
            return web.Response(status=code, text=text)

        async def readyz(_: web.Request) -> web.Response:
            code, text = self.readiness()
            return web.Response(status=code, text=text)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()
        return runner
