"""The simulated engine core: one asyncio task that runs the continuous-batching scheduler
in real time, sleeping each step's modelled duration, and wakes the HTTP handlers whose
requests produced tokens.

One loop advances every sequence (no per-token timers per request), so thousands of
concurrent requests cost one wake-up per step plus one event per active request. Model time
is wall time (the loop's monotonic clock) x `time_scale`; `time_scale` > 1 compresses wall
time for tests, and the metrics report model seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

from paretoscale.sim.metrics import FinishedRequest, VllmMetrics
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.scheduler import Scheduler, SimRequest, StepResult


@dataclass(eq=False)
class Ticket:
    """A request as the HTTP layer sees it: the scheduler's request plus a wake-up event."""

    request: SimRequest
    stream: bool
    event: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False


LAG_SLACK_S = 0.005  # wall seconds the loop may wake late without slowing model time


class Engine:
    """Runs `Scheduler` steps against the loop clock. Create and use inside one event loop."""

    def __init__(
        self, model: ReplicaModel, metrics: VllmMetrics, *, seed: int = 0, time_scale: float = 1.0
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.model = model
        self.metrics = metrics
        self.scheduler = Scheduler(model, seed)
        self.time_scale = time_scale
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._wakeup = asyncio.Event()
        self._tickets: dict[int, Ticket] = {}
        self._ids = itertools.count()
        self._task: asyncio.Task[None] | None = None

    # ----- clock ----------------------------------------------------------------------------
    def now_s(self) -> float:
        """Model seconds since the engine started."""
        return (self._loop.time() - self._t0) * self.time_scale

    # ----- requests ---------------------------------------------------------------------------
    def submit(self, prompt_tokens: int, max_output_tokens: int, stream: bool) -> Ticket:
        req = SimRequest(next(self._ids), prompt_tokens, max_output_tokens, self.now_s())
        ticket = Ticket(req, stream)
        self._tickets[req.request_id] = ticket
        self.scheduler.add(req)
        self._publish_gauges()
        self._wakeup.set()
        return ticket

    def abort(self, ticket: Ticket) -> None:
        """The client went away: drop the request and count it as aborted."""
        if ticket.done:
            return
        now = self.now_s()
        self.scheduler.abort(ticket.request, now)
        self._finish(ticket, "abort", now)
        self._publish_gauges()

    @property
    def in_flight(self) -> int:
        """Requests accepted and not finished."""
        return sum(1 for t in self._tickets.values() if not t.done)

    # ----- loop -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name="sim-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Steps back to back in model time, paced against the wall clock: a step that
        starts at model time V ends at V + step_s, and the loop sleeps until the wall clock
        reaches that end. Waking late by up to LAG_SLACK_S of wall time (timer resolution,
        a busy loop) is absorbed: the next step still starts at the previous end, so model
        time stays exact. Further behind, or after idling, the model clock resyncs to the
        wall clock (then the simulation is slower than the model: CPU-bound)."""
        sched = self.scheduler
        slack_s = LAG_SLACK_S * self.time_scale
        step_end_s = 0.0
        while True:
            if sched.idle:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wall_s = self.now_s()
            start_s = step_end_s if wall_s - step_end_s <= slack_s else wall_s
            plan = sched.plan(start_s)
            if plan.empty and start_s < wall_s:  # only later arrivals are waiting
                start_s = wall_s
                plan = sched.plan(start_s)
            self._publish_gauges()
            if plan.empty:  # nothing fits until something finishes or is aborted
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            step_end_s = start_s + sched.step_time_s(plan)
            delay = self._t0 + step_end_s / self.time_scale - self._loop.time()
            await asyncio.sleep(max(0.0, delay))
            result = sched.commit(plan, step_end_s)
            self._deliver(result, len(plan.preempted))

    def _deliver(self, result: StepResult, preemptions: int) -> None:
        generated = sum(n for _, n in result.emitted)
        self.metrics.record_step(
            generated, result.itl_s, result.draft_tokens, result.accepted_tokens, preemptions
        )
        for req in result.first_tokens:
            assert req.first_token_s is not None
            self.metrics.record_first_token(req.first_token_s - req.arrival_s, req.prompt_tokens)
        for req, _ in result.emitted:
            ticket = self._tickets.get(req.request_id)
            if ticket is not None and ticket.stream:
                ticket.event.set()
        for req in result.finished:
            ticket = self._tickets.get(req.request_id)
            if ticket is not None:
                self._finish(ticket, "length", req.finished_s or self.now_s())
        self._publish_gauges()

    def _finish(self, ticket: Ticket, reason: str, now_s: float) -> None:
        req = ticket.request
        ticket.done = True
        self._tickets.pop(req.request_id, None)
        scheduled = req.first_scheduled_s if req.first_scheduled_s is not None else now_s
        first = req.first_token_s
        self.metrics.record_finished(
            FinishedRequest(
                finished_reason=reason,
                e2e_s=now_s - req.arrival_s,
                queue_s=scheduled - req.arrival_s,
                prefill_s=None if first is None else first - scheduled,
                decode_s=None if first is None else now_s - first,
                output_tokens=req.output_tokens,
            )
        )
        ticket.event.set()

    def _publish_gauges(self) -> None:
        sched = self.scheduler
        self.metrics.set_scheduler_state(len(sched.running), len(sched.waiting), sched.kv_usage())
