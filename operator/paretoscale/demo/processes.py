"""The demo's long-running pieces besides the cluster (I/O): the operator as a subprocess,
and the load generator on its own event loop in a thread. Both stop on request and never
outlive the demo (the operator gets SIGTERM if the demo dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from paretoscale.sim.loadgen import LoadReport, PlannedRequest, Targets, run_load


def _die_with_parent() -> None:  # in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Operator:
    """`paretoscale run ...` in its own session (so a Ctrl-C reaches it through the demo, in
    order), its output in a log file, without the caller's PARETOSCALE_* settings. Start it
    before the demo has threads: it forks with a preexec_fn."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.argv, self.log_path = list(argv), log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARETOSCALE_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )  # fmt: skip

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s. Idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class LoadRun:
    """paretoscale.sim.loadgen.run_load on its own event loop in a thread. `stop()` cancels
    it (requests in flight are abandoned)."""

    def __init__(self, plan: Sequence[PlannedRequest], targets: Targets, duration_s: float) -> None:
        self.plan, self.targets, self.duration_s = plan, targets, duration_s
        self.report: LoadReport | None = None
        self.error: BaseException | None = None
        self.started_at = 0.0  # time.monotonic() when sending began
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[LoadReport] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="demo-load", daemon=True)

    def start(self) -> float:
        """Start sending; the monotonic time the plan's second 0 maps to."""
        self._thread.start()
        self._ready.wait(30)
        return self.started_at

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._task = loop.create_task(run_load(self.plan, self.targets,
                                                   duration_s=self.duration_s))  # fmt: skip
            self.started_at = time.monotonic()
            self._ready.set()
            self.report = loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the runner reports it
            self.error = exc
        finally:
            self._ready.set()
            _close(loop)

    def wait(self, timeout_s: float) -> bool:
        """Whether it finished within `timeout_s`."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if self._thread.is_alive() and loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
            self._thread.join(30)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on `loop` (requests in flight when the load was stopped), let
    it unwind, close the loop: what asyncio.run does on its way out."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_argv(
    kubeconfig: str, namespace: str, prometheus_url: str, rate_window: str
) -> list[str]:
    """`paretoscale run` for the demo: one namespace, a 5 s tick, free ports for its own
    /metrics and /healthz."""
    return [
        sys.executable, "-m", "paretoscale.cli", "run", "-n", namespace,
        "--kubeconfig", kubeconfig, "--prometheus-url", prometheus_url,
        "--tick-seconds", "5", "--rate-window", rate_window, "--stale-after-seconds", "60",
        "--metrics-port", str(free_port()), "--health-port", str(free_port()),
    ]  # fmt: skip
