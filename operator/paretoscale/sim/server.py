"""The vLLM-compatible HTTP server: OpenAI `/v1/models`, `/v1/completions` and
`/v1/chat/completions` (streaming SSE and not), `/health`, `/metrics`, on top of the
simulated engine.

Token counts: prompt tokens are estimated as ceil(characters / 4) (token-id lists count
themselves; chat adds 4 per message + 3 for the template); output tokens are the request's
`max_tokens` / `max_completion_tokens` (default 16). The simulator does not model EOS, so
every request ends with finish_reason "length"; `ignore_eos` is accepted. Like vLLM, the port
is bound only after the startup delay (model loading): until then connections are refused.
With `error_rate` (--sim-error-rate), that share of the valid generation requests, drawn
from the seeded generator, fails at once with HTTP 500 and counts in
vllm:request_success_total{finished_reason="error"}, as vLLM's retryable internal errors do.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from paretoscale.sim.engine import Engine, Ticket
from paretoscale.sim.metrics import VllmMetrics
from paretoscale.sim.perfmodel import ReplicaModel

_WORDS = (" the", " model", " is", " a", " simulated", " token", " stream", " of", " text", ".")
DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True)
class ServerConfig:
    """Everything `paretoscale sim serve` needs besides the model."""

    served_model_name: str
    host: str = "127.0.0.1"
    port: int = 8000
    startup_delay_s: float = 0.0
    seed: int = 0
    time_scale: float = 1.0
    error_rate: float = 0.0  # share of requests answered HTTP 500 (finished_reason="error")


def estimate_prompt_tokens(prompt: Any) -> int:
    """Tokens of a completions `prompt`: ceil(chars / 4) for text, len() for token ids; a
    batch (list of prompts) is summed."""
    if isinstance(prompt, str):
        return max(1, math.ceil(len(prompt) / 4))
    if isinstance(prompt, list):
        if not prompt:
            return 1
        if all(isinstance(t, int) for t in prompt):
            return len(prompt)
        return sum(estimate_prompt_tokens(p) for p in prompt)
    raise ValueError("'prompt' must be a string, a list of strings or a list of token ids")


def estimate_chat_tokens(messages: Any) -> int:
    """Tokens of chat `messages`: ceil(chars / 4) of each text content + 4 per message + 3."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    total = 3
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("each message must be an object")
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += 4 + math.ceil(len(str(content)) / 4)
    return total


def _error(status: int, message: str, kind: str = "BadRequestError") -> web.Response:
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return web.json_response(body, status=status)


class SimApp:
    """The aiohttp application around one engine."""

    def __init__(self, engine: Engine, metrics: VllmMetrics, config: ServerConfig) -> None:
        self.engine = engine
        self.metrics = metrics
        self.config = config
        self.created = int(time.time())  # reported in responses only; decides nothing
        self.errors = random.Random(config.seed)  # which requests fail (error_rate)

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/ping", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/metrics", self.metrics_endpoint)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.0+paretoscale.sim"})

    async def metrics_endpoint(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def models(self, request: web.Request) -> web.Response:
        model = self.engine.model
        card = {
            "id": self.config.served_model_name, "object": "model", "created": self.created,
            "owned_by": "vllm", "root": model.model, "parent": None,
            "max_model_len": model.max_model_len, "permission": [],
        }  # fmt: skip
        return web.json_response({"object": "list", "data": [card]})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    # ----- generation -----------------------------------------------------------------------
    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            prompt_tokens = (
                estimate_chat_tokens(body.get("messages"))
                if chat
                else estimate_prompt_tokens(body.get("prompt", ""))
            )
            max_tokens = _max_tokens(body)
        except (ValueError, json.JSONDecodeError) as exc:
            return _error(400, str(exc))
        name = body.get("model")
        if name is not None and name != self.config.served_model_name:
            return _error(404, f"The model `{name}` does not exist.", "NotFoundError")
        limit = self.engine.model.max_model_len
        if prompt_tokens + max_tokens > limit:
            return _error(
                400,
                f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or "
                "completion.",
            )
        if self.config.error_rate > 0 and self.errors.random() < self.config.error_rate:
            self.metrics.record_error()
            return _error(500, "internal error (simulated)", "InternalServerError")
        stream = bool(body.get("stream", False))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage", False))
        ticket = self.engine.submit(prompt_tokens, max_tokens, stream)
        try:
            if stream:
                return await self._stream(request, ticket, chat, include_usage)
            while not ticket.done:
                await ticket.event.wait()
                ticket.event.clear()
            return web.json_response(self._full_response(ticket, chat))
        except (asyncio.CancelledError, ConnectionResetError):
            self.engine.abort(ticket)
            raise

    def _usage(self, ticket: Ticket) -> dict[str, int]:
        req = ticket.request
        return {
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": req.output_tokens,
            "total_tokens": req.prompt_tokens + req.output_tokens,
        }

    def _full_response(self, ticket: Ticket, chat: bool) -> dict[str, Any]:
        text = _text(0, ticket.request.output_tokens)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        if chat:
            choice: dict[str, Any] = {
                "index": 0, "message": {"role": "assistant", "content": text},
                "logprobs": None, "finish_reason": "length", "stop_reason": None,
            }  # fmt: skip
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length",
                      "stop_reason": None}  # fmt: skip
            kind = "text_completion"
        return {
            "id": rid, "object": kind, "created": self.created,
            "model": self.config.served_model_name, "choices": [choice],
            "usage": self._usage(ticket),
        }  # fmt: skip

    async def _stream(
        self, request: web.Request, ticket: Ticket, chat: bool, include_usage: bool
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                "created": self.created, "model": self.config.served_model_name}  # fmt: skip

        def chunk(text: str | None, finish: str | None) -> bytes:
            if chat:
                delta: dict[str, Any] = {} if text is None else {"content": text}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}  # fmt: skip
            else:
                choice = {"index": 0, "text": text or "", "logprobs": None,
                          "finish_reason": finish}  # fmt: skip
            return b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n"

        if chat:
            role = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "logprobs": None, "finish_reason": None}]}  # fmt: skip
            await resp.write(b"data: " + json.dumps(role).encode() + b"\n\n")
        sent = 0
        while True:
            await ticket.event.wait()
            ticket.event.clear()
            produced = ticket.request.output_tokens
            if produced > sent:
                parts = [chunk(_text(i, i + 1), None) for i in range(sent, produced)]
                sent = produced
                await resp.write(b"".join(parts))
            if ticket.done:
                break
        tail = [chunk(None, "length")]
        if include_usage:
            usage: dict[str, Any] = {**base, "choices": [], "usage": self._usage(ticket)}
            tail.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
        tail.append(b"data: [DONE]\n\n")
        await resp.write(b"".join(tail))
        await resp.write_eof()
        return resp


def _text(start: int, end: int) -> str:
    return "".join(_WORDS[i % len(_WORDS)] for i in range(start, end))


def _max_tokens(body: dict[str, Any]) -> int:
    raw = body.get("max_completion_tokens", body.get("max_tokens"))
    if raw is None:
        return DEFAULT_MAX_TOKENS
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {raw!r}")
    return raw


@dataclass
class RunningServer:
    """A started simulator: its bound port, engine and a way to stop it."""

    port: int
    engine: Engine
    runner: web.AppRunner

    async def close(self, drain_s: float = 0.0) -> None:
        """Stop accepting, let in-flight requests finish for up to `drain_s`, then stop (what
        vLLM's server does on SIGTERM within the pod's termination grace period)."""
        if drain_s > 0:
            for site in list(self.runner.sites):
                await site.stop()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_s
            while self.engine.in_flight and loop.time() < deadline:
                await asyncio.sleep(0.05)
        await self.engine.stop()
        await self.runner.cleanup()


async def start_server(
    model: ReplicaModel,
    config: ServerConfig,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> RunningServer:
    """Wait the startup delay (nothing listens meanwhile, as with vLLM loading weights), then
    bind `config.host:config.port` (0 picks a free port) and start the engine loop."""
    if config.startup_delay_s > 0:
        await sleep(config.startup_delay_s)
    metrics = VllmMetrics(config.served_model_name)
    engine = Engine(model, metrics, seed=config.seed, time_scale=config.time_scale)
    app = SimApp(engine, metrics, config).build()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=4096, reuse_address=True)
    await site.start()
    server = site._server  # aiohttp exposes the bound sockets only here
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.port
    engine.start()
    return RunningServer(port, engine, runner)
