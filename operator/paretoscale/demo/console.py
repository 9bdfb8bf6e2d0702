"""The demo's terminal (I/O): progress lines, the phases' timing, waiting with a deadline,
and the live view drawn from view.py (in place on a terminal, a line per refresh else).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from paretoscale.demo import DemoError, view
from paretoscale.demo.sample import Sample


def say(text: str, stream: TextIO | None = None) -> None:
    print(f"[demo] {text}", file=stream or sys.stdout, flush=True)


class Stopwatch:
    """Wall time since the demo started, and how long each phase took."""

    def __init__(self) -> None:
        self.t0 = self._mark = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def lap(self, name: str) -> float:
        now = time.monotonic()
        self.phases.append((name, now - self._mark))
        self._mark = now
        return self.phases[-1][1]

    def text(self) -> str:
        laps = ", ".join(f"{name} {s:.0f}s" for name, s in self.phases)
        return f"Timing: {laps}; total {self.elapsed():.0f}s ({self.elapsed() / 60:.1f} min)"


def wait_for(
    cond: Callable[[], Any], timeout_s: float, what: str, hint: Callable[[], str] | None = None
) -> Any:
    """Poll `cond()` until truthy; DemoError naming `what` (and `hint()`) on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except DemoError:
            raise
        except Exception as exc:  # the API or Prometheus may be briefly unreachable
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    more = hint() if hint else ""
    raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r}){more}")


class Screen:
    """The live view on stdout: redrawn in place on a terminal, a line per refresh else."""

    def __init__(self, ctx: view.ViewContext, stream: TextIO) -> None:
        self.ctx, self.stream = ctx, stream
        self.tty = stream.isatty()
        self.height = 0

    def _width(self) -> int:
        return shutil.get_terminal_size((100, 24)).columns

    def show(self, samples: Sequence[Sample]) -> None:
        if self.tty:
            lines = view.block(self.ctx, samples, self._width())
            self.stream.write(view.redraw(lines, self.height, self._width()))
            self.height = len(lines)
        else:
            self.stream.write(view.line(self.ctx, samples) + "\n")
        self.stream.flush()

    def event(self, text: str, samples: Sequence[Sample]) -> None:
        """A line that stays (above the view on a terminal)."""
        if self.tty and self.height:
            self.stream.write(view.redraw([text], self.height, self._width()))
            self.height = 0
            self.show(samples)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()
