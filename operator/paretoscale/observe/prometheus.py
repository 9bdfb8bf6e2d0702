"""The metrics poller: one per operator process, it runs the fixed query set every tick.

`MetricsPoller.run(stop_event)` runs every named query (observe/queries.py) through
prometheus-api-client, off the event loop (asyncio.to_thread), all evaluated at the same
instant, parses the answers into an immutable `MetricsSnapshot` and publishes it by replacing
one reference: `latest()` never sees half a tick. Reconciles read `latest()`; they never query
Prometheus themselves, so queries per tick stay `len(templates)` whatever the number of
ModelDeployments.

Failures are data, never exceptions: a connection error (or a timeout of the request-rate
query, which runs first) ends the tick early with a snapshot whose `problem` says e.g.
"Prometheus at URL: connection refused"; an error answer to one query (a bad override, a
timeout) empties that query's fields and is named in `problem`. Without a
Prometheus URL there is no poller (`poller_for()` returns None) and decisions run on priors.

The bearer token file is read on every tick, so a rotated projected token is picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.config import OperatorSettings
from paretoscale.observe.queries import (
    DEFAULT_TEMPLATES,
    PRICE_QUERY,
    RATE_QUERY,
    QueryTemplate,
    check_window,
    gpu_price_query,
    load_templates,
    selector_for,
)
from paretoscale.observe.snapshot import (
    MetricsSnapshot,
    QueryFailure,
    Series,
    build_snapshot,
    failed_snapshot,
)
from paretoscale.redact import redact, redact_url

log = logging.getLogger(__name__)


class QueryClient(Protocol):
    """What the poller needs from a Prometheus client (PrometheusConnect has it)."""

    def custom_query(self, query: str, params: dict[str, Any] | None = None) -> Any: ...


class PrometheusDown(Exception):
    """Prometheus cannot be reached at all: the rest of the tick is skipped."""


def connect(settings: OperatorSettings) -> PrometheusConnect:
    """A PrometheusConnect for the settings: its own session, CA bundle, timeout, no retries.

    Retries are off on purpose: a failed tick is reported and the next tick tries again.
    """
    if not settings.prometheus_url:
        raise ValueError("no Prometheus URL configured")
    session = requests.Session()
    session.verify = settings.prometheus_ca_file or True
    return PrometheusConnect(
        url=settings.prometheus_url.rstrip("/"),
        session=session,
        # read=False: a read timeout surfaces as requests' ReadTimeout, not a ConnectionError.
        retry=Retry(total=0, read=False, raise_on_status=False),
        timeout=settings.prometheus_timeout_seconds,
    )


def _describe(error: BaseException, url: str) -> str:
    """An error from requests/prometheus-api-client in words: what failed, where; without
    the credentials a URL or an error text may hold (it reaches logs and conditions)."""
    return redact(_explain(error, url))


def _explain(error: BaseException, url: str) -> str:
    where = f"Prometheus at {url}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"{where}: connection timed out"
    if isinstance(error, requests.exceptions.ConnectionError):
        text = str(error)
        if "Connection refused" in text:
            return f"{where}: connection refused"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"{where}: host name does not resolve"
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(error, requests.exceptions.SSLError):
            return f"{where}: TLS certificate not trusted (set prometheus_ca_file)"
        return f"{where}: cannot connect ({text[:200]})"
    if isinstance(error, requests.exceptions.Timeout):
        return f"{where}: no answer within the timeout"
    if isinstance(error, PrometheusApiClientException):
        return f"{where} answered with an error: {str(error)[:300]}"
    return f"{where}: {type(error).__name__}: {str(error)[:300]}"


class MetricsPoller:
    """Polls Prometheus every settings.tick_seconds and publishes a MetricsSnapshot.

    `clock` gives the evaluation instant of each tick [s since epoch]; tests inject one.
    `client` replaces the PrometheusConnect (tests use recorded answers).
    """

    def __init__(
        self,
        settings: OperatorSettings,
        clock: Callable[[], float] = time.time,
        *,
        client: QueryClient | None = None,
        templates: Mapping[str, QueryTemplate] | None = None,
        gpus: GpuTypes = BUILTIN,
    ) -> None:
        if not settings.prometheus_url:
            raise ValueError("MetricsPoller needs settings.prometheus_url; use poller_for()")
        self.settings = settings
        self.url = settings.prometheus_url.rstrip("/")
        self.source = f"Prometheus at {redact_url(self.url)}"
        self.gpus = gpus
        self.templates = (
            templates
            if templates is not None
            else priced(load_templates(settings.queries_file), gpus)
        )
        self._window = check_window(settings.rate_window)
        self._selector = selector_for({"namespace": settings.namespaces})
        self._clock = clock
        self._client: QueryClient = client if client is not None else connect(settings)
        # Until the first tick ends, readers see why there is no data yet.
        self._latest = failed_snapshot(
            clock(), f"{self.source}: the first poll has not finished yet", 0, self.source
        )
        self.ticks = 0
        self.queries_total = 0  # queries sent since start
        self.last_tick_duration_s: float | None = None  # wall time the last tick took

    @property
    def queries_per_tick(self) -> int:
        """Fixed by the template set: independent of the number of ModelDeployments."""
        return len(self.templates)

    def rendered(self) -> dict[str, str]:
        """Every query as it is sent, by name (for logs, docs and `--dry-run`s)."""
        return {n: t.render(self._window, self._selector) for n, t in self.templates.items()}

    def latest(self) -> MetricsSnapshot:
        """The last published snapshot (before the first tick: one that says so)."""
        return self._latest

    async def run(self, stop_event: asyncio.Event) -> None:
        """Poll every tick_seconds until `stop_event` is set. Never raises on a failed query."""
        loop = asyncio.get_running_loop()
        interval_s = self.settings.tick_seconds
        next_tick = loop.time()
        while not stop_event.is_set():
            try:
                await self.poll_once()
            except Exception:  # a bug in parsing must not stop the poller: report and go on
                log.exception("metrics poll failed unexpectedly")
                at = self._clock()
                self._latest = failed_snapshot(
                    at,
                    f"{self.source}: internal error while polling (see the operator log)",
                    0,
                    self.source,
                )
            next_tick += interval_s
            delay_s = next_tick - loop.time()
            if delay_s < 0:  # a slow tick: skip the missed ones instead of bursting
                next_tick = loop.time()
                delay_s = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=delay_s)

    async def poll_once(self) -> MetricsSnapshot:
        """Run every query once (in a worker thread), publish the snapshot and return it."""
        at = self._clock()
        started = time.monotonic()
        snapshot = await asyncio.to_thread(self._poll_blocking, at)
        self.last_tick_duration_s = time.monotonic() - started
        self.ticks += 1
        self.queries_total += snapshot.queries_run
        self._latest = snapshot
        if snapshot.problem:
            log.warning("metrics snapshot at %.0f: %s", at, snapshot.problem)
        return snapshot

    def _poll_blocking(self, at: float) -> MetricsSnapshot:
        self._refresh_token()
        results: dict[str, Sequence[Series] | QueryFailure] = {}
        run = 0
        # The rate query first: when Prometheus is unreachable, stop after one attempt.
        names = [RATE_QUERY, *(n for n in self.templates if n != RATE_QUERY)]
        for name in names:
            template = self.templates[name]
            run += 1
            try:
                results[name] = self._query(template, at)
            except PrometheusDown as down:
                return failed_snapshot(at, str(down), run, self.source)
            except requests.exceptions.Timeout as error:
                if name == RATE_QUERY:  # an overloaded Prometheus: do not pile 12 more on it
                    return failed_snapshot(at, _describe(error, self.url), run, self.source)
                results[name] = QueryFailure(_describe(error, self.url))
            except Exception as error:  # any answer that is not a vector is a failed query
                results[name] = QueryFailure(_describe(error, self.url))
        return build_snapshot(at, results, run, self.source, self.gpus)

    def _query(self, template: QueryTemplate, at: float) -> Sequence[Series]:
        promql = template.render(self._window, self._selector)
        try:
            result = self._client.custom_query(promql, params={"time": f"{at:.3f}"})
        except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout) as e:
            raise PrometheusDown(_describe(e, self.url)) from e
        if not isinstance(result, list):
            raise TypeError(f"expected an instant vector, got {type(result).__name__}")
        return result

    def _refresh_token(self) -> None:
        path = self.settings.prometheus_bearer_token_file
        if not path or not isinstance(self._client, PrometheusConnect):
            return
        try:
            token = Path(path).read_text().strip()
        except OSError as e:
            log.warning("cannot read the Prometheus bearer token file %s: %s", path, e.strerror)
            self._client.headers = None
            return
        self._client.headers = {"Authorization": f"Bearer {token}"}


def priced(templates: Mapping[str, QueryTemplate], gpus: GpuTypes) -> dict[str, QueryTemplate]:
    """`templates` with the default GPU price query joined on the node label keys of `gpus`
    (a price query the queries file overrides is kept as written)."""
    out = dict(templates)
    if out.get(PRICE_QUERY) == DEFAULT_TEMPLATES[PRICE_QUERY]:
        out[PRICE_QUERY] = gpu_price_query(gpus.label_keys)
    return out


def poller_for(
    settings: OperatorSettings,
    clock: Callable[[], float] = time.time,
    gpus: GpuTypes = BUILTIN,
) -> MetricsPoller | None:
    """The process's poller, or None when no Prometheus URL is configured (decide on priors).
    `gpus`: the GPU type mapping (the price query's node labels)."""
    if not settings.prometheus_url:
        return None
    return MetricsPoller(settings, clock, gpus=gpus)
