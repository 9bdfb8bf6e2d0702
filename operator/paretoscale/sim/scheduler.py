"""vLLM V1's continuous-batching scheduler, step by step, on top of the step-time model.

The same `Scheduler` drives both the HTTP simulator (real time, one asyncio task) and the
discrete-event runs used for calibration and for checking the analytic model (virtual time,
`simulate`). It holds mutable queue state, but no clock: every method that records time takes
it as an argument.

One step, as vLLM V1 schedules it (vllm/v1/core/sched/scheduler.py):
1. running requests first, in order: each gets its remaining prompt chunk (chunked prefill,
   within the token budget max_num_batched_tokens) or 1 + k decode tokens; when the KV cache
   (16-token blocks) cannot grow, the newest running request is preempted (recompute: its
   blocks are freed and it goes back to the head of the waiting queue);
2. if nothing was preempted, waiting requests FCFS while budget and max_num_seqs allow;
3. the step runs for model.step_time_s(...); a request whose scheduled tokens reach its end
   samples its next token(s) (1, or 1 + accepted drafts with speculative decoding).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from paretoscale.sim.perfmodel import ReplicaModel

BLOCK_TOKENS = 16


@dataclass(eq=False)
class SimRequest:
    """A request inside the scheduler (mutable; owned by one Scheduler)."""

    request_id: int
    prompt_tokens: int
    max_output_tokens: int
    arrival_s: float
    output_tokens: int = 0
    computed_tokens: int = 0
    blocks: int = 0
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    last_token_s: float | None = None
    finished_s: float | None = None
    preemptions: int = 0
    itl_s: list[float] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def finished(self) -> bool:
        return self.finished_s is not None


@dataclass(frozen=True)
class StepPlan:
    """What one step computes: (request, tokens scheduled) pairs and the work totals."""

    scheduled: tuple[tuple[SimRequest, int], ...]
    decode_seqs: int
    decode_context_tokens: int
    prefill_tokens: int
    prefill_token_pairs: float
    prefill_seqs: int
    preempted: tuple[SimRequest, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.scheduled


@dataclass(frozen=True)
class StepResult:
    """Tokens each request emitted in a step, and the requests that finished."""

    emitted: tuple[tuple[SimRequest, int], ...]
    finished: tuple[SimRequest, ...]
    first_tokens: tuple[SimRequest, ...]  # requests that got their first token this step
    itl_s: tuple[float, ...]  # one gap per request that had emitted before
    draft_tokens: int
    accepted_tokens: int


class Scheduler:
    """Waiting queue, running list and KV blocks of one engine. Not thread-safe; no clock."""

    def __init__(self, model: ReplicaModel, seed: int = 0) -> None:
        self.model = model
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self.total_blocks = model.kv_cache_tokens // BLOCK_TOKENS
        self.used_blocks = 0
        self._rng = random.Random(seed)
        k = model.spec.num_speculative_tokens if model.spec else 0
        self._spec_k = k
        self._log_acceptance = (
            math.log(model.spec.acceptance) if model.spec and 0 < model.spec.acceptance < 1 else 0.0
        )

    # ----- queue ----------------------------------------------------------------------------
    def add(self, request: SimRequest) -> None:
        self.waiting.append(request)

    def abort(self, request: SimRequest, now_s: float) -> None:
        """Drop a request (client went away); frees its KV blocks."""
        if request in self.running:
            self.running.remove(request)
            self.used_blocks -= request.blocks
            request.blocks = 0
        elif request in self.waiting:
            self.waiting.remove(request)
        request.finished_s = now_s

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    def kv_usage(self) -> float:
        """Fraction of KV blocks in use (vllm:kv_cache_usage_perc is this fraction)."""
        return self.used_blocks / self.total_blocks if self.total_blocks else 0.0

    # ----- one step -------------------------------------------------------------------------
    def _grow(self, request: SimRequest, tokens: int) -> bool:
        need = -(-(request.computed_tokens + tokens) // BLOCK_TOKENS) - request.blocks
        if need <= 0:
            return True
        if self.used_blocks + need > self.total_blocks:
            return False
        request.blocks += need
        self.used_blocks += need
        return True

    def _preempt(self, request: SimRequest) -> None:
        self.running.remove(request)
        self.used_blocks -= request.blocks
        request.blocks = 0
        request.computed_tokens = 0
        request.preemptions += 1
        self.waiting.appendleft(request)

    def plan(self, now_s: float) -> StepPlan:
        """Choose this step's work (vLLM V1 order) for a step starting at `now_s`; requests
        that arrived later wait for the next step. Marks first-scheduled times."""
        budget = self.model.max_num_batched_tokens
        spec_k = self._spec_k
        scheduled: list[tuple[SimRequest, int]] = []
        preempted: list[SimRequest] = []
        decode_seqs = decode_ctx = prefill_tokens = prefill_seqs = 0
        prefill_pairs = 0.0
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            remaining = req.num_tokens - req.computed_tokens
            decoding = remaining == 1
            tokens = 1 + spec_k if decoding else min(remaining, budget)
            if decoding and spec_k:
                tokens = min(tokens, 1 + req.max_output_tokens - req.output_tokens)
            while not self._grow(req, tokens):
                victim = self.running[-1]
                self._preempt(victim)
                preempted.append(victim)
                if victim is req:
                    break
            if req in preempted:
                break
            scheduled.append((req, tokens))
            budget -= tokens
            if decoding:
                decode_seqs += 1
                decode_ctx += req.computed_tokens
            else:
                prefill_tokens += tokens
                prefill_seqs += 1
                prefill_pairs += tokens * (req.computed_tokens + tokens / 2.0)
            i += 1
        if not preempted:
            while self.waiting and budget > 0 and len(self.running) < self.model.max_num_seqs:
                req = self.waiting[0]
                if req.arrival_s > now_s:  # arrived after this step started
                    break
                tokens = min(req.num_tokens - req.computed_tokens, budget)
                if not self._grow(req, tokens):
                    break
                self.waiting.popleft()
                self.running.append(req)
                if req.first_scheduled_s is None:
                    req.first_scheduled_s = now_s
                scheduled.append((req, tokens))
                budget -= tokens
                prefill_tokens += tokens
                prefill_seqs += 1
                prefill_pairs += tokens * (req.computed_tokens + tokens / 2.0)
        return StepPlan(
            tuple(scheduled), decode_seqs, decode_ctx, prefill_tokens, prefill_pairs,
            prefill_seqs, tuple(preempted),
        )  # fmt: skip

    def step_time_s(self, plan: StepPlan) -> float:
        """Model seconds of the planned step."""
        return self.model.step_time_s(
            plan.decode_seqs, plan.decode_context_tokens, plan.prefill_tokens,
            plan.prefill_token_pairs, plan.prefill_seqs,
        )  # fmt: skip

    def _accepted(self) -> int:
        """Accepted drafts of one sequence: P(accepted >= j) = a^j, capped at k."""
        if not self._spec_k:
            return 0
        if self._log_acceptance == 0.0:
            return self._spec_k if self.model.spec and self.model.spec.acceptance >= 1 else 0
        u = 1.0 - self._rng.random()
        return min(self._spec_k, int(math.log(u) / self._log_acceptance))

    def commit(self, plan: StepPlan, end_s: float) -> StepResult:
        """Apply a finished step at `end_s`: advance computed tokens, sample tokens, retire
        finished requests and free their blocks."""
        emitted: list[tuple[SimRequest, int]] = []
        finished: list[SimRequest] = []
        first: list[SimRequest] = []
        itls: list[float] = []
        draft = accepted_total = 0
        for req, tokens in plan.scheduled:
            if req.finished_s is not None or req.blocks == 0:
                continue  # aborted or preempted during the step
            remaining = req.num_tokens - req.computed_tokens
            if tokens < remaining:  # a prefill chunk that does not reach the end
                req.computed_tokens += tokens
                continue
            new = 1
            if remaining == 1 and tokens > 1:  # speculative decode
                drafts = tokens - 1
                acc = min(self._accepted(), drafts)
                draft += drafts
                accepted_total += acc
                new += acc
            new = min(new, req.max_output_tokens - req.output_tokens)
            req.output_tokens += new
            req.computed_tokens = req.num_tokens - 1  # the last sampled token is next step's input
            if req.first_token_s is None:
                req.first_token_s = end_s
                first.append(req)
            else:
                gap = end_s - (req.last_token_s or end_s)
                req.itl_s.append(gap)
                itls.append(gap)
            req.last_token_s = end_s
            emitted.append((req, new))
            if req.output_tokens >= req.max_output_tokens:
                req.finished_s = end_s
                finished.append(req)
        if finished:
            done = {id(r) for r in finished}
            self.running = [r for r in self.running if id(r) not in done]
            for req in finished:
                self.used_blocks -= req.blocks
                req.blocks = 0
        return StepResult(
            tuple(emitted), tuple(finished), tuple(first), tuple(itls), draft, accepted_total
        )


@dataclass(frozen=True)
class RequestRecord:
    """Latencies of one finished request in a discrete-event run, seconds."""

    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    queue_s: float
    ttft_s: float
    e2e_s: float
    tpot_s: float  # (e2e - ttft) / (output - 1), vLLM bench's definition; 0 for 1 token
    mean_itl_s: float
    preemptions: int
    itl_s: tuple[float, ...] = ()  # every gap between its emitting steps


def simulate(
    model: ReplicaModel,
    requests: Iterable[tuple[float, int, int]],
    seed: int = 0,
    max_steps: int = 10_000_000,
) -> list[RequestRecord]:
    """Discrete-event run of the scheduler in virtual time: `requests` are (arrival_s,
    prompt_tokens, output_tokens), sorted or not; returns one record per request, in arrival
    order. Steps start as soon as the previous one ends (or at the next arrival when idle)."""
    pending: Sequence[tuple[float, int, int]] = sorted(requests)
    sched = Scheduler(model, seed)
    reqs = [SimRequest(i, p, max(1, o), a) for i, (a, p, o) in enumerate(pending)]
    now, nxt = 0.0, 0
    for _ in range(max_steps):
        while nxt < len(reqs) and reqs[nxt].arrival_s <= now:
            sched.add(reqs[nxt])
            nxt += 1
        if sched.idle:
            if nxt >= len(reqs):
                break
            now = reqs[nxt].arrival_s
            continue
        plan = sched.plan(now)
        if plan.empty:
            raise RuntimeError("scheduler made no progress (a request larger than the KV cache)")
        now += sched.step_time_s(plan)
        sched.commit(plan, now)
    return [_record(r) for r in reqs]


def _record(r: SimRequest) -> RequestRecord:
    if r.finished_s is None or r.first_token_s is None or r.first_scheduled_s is None:
        raise RuntimeError(f"request {r.request_id} did not finish (raise max_steps)")
    e2e = r.finished_s - r.arrival_s
    ttft = r.first_token_s - r.arrival_s
    tpot = (e2e - ttft) / (r.output_tokens - 1) if r.output_tokens > 1 else 0.0
    mean_itl = sum(r.itl_s) / len(r.itl_s) if r.itl_s else 0.0
    return RequestRecord(
        r.arrival_s, r.prompt_tokens, r.output_tokens, r.first_scheduled_s - r.arrival_s, ttft,
        e2e, tpot, mean_itl, r.preemptions, tuple(r.itl_s),
    )  # fmt: skip
