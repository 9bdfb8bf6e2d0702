"""A tiny GPU price exporter for tests and the demo: what OpenCost and kube-state-metrics show.

It serves `/metrics` in the Prometheus text format with, per fake node,

    node_gpu_hourly_cost{node="h100-0",instance="h100-0"} 6.88        (OpenCost: USD per GPU-hour)
    kube_node_labels{node="h100-0",label_nvidia_com_gpu_product="NVIDIA-H100-80GB-HBM3"} 1

which is exactly what the operator's default `gpu_price` query joins. A node whose GPU type
has no price gets only its `kube_node_labels` series (the operator then falls back).

Prices change at runtime: `POST /prices` with JSON `{"H100": 6.88, "L40S": null}` (null
removes a price), `PriceExporter.set_prices()`, or a price source called on every scrape, e.g.
a real price series replayed with time compression (`SeriesPrices`): the AWS p5.48xlarge
series in data/prices is USD per hour for 8 H100s; with `--per-gpu-divisor 8` the 2025-06-05
cut from $98.32 to $55.04 per node reads as $12.29 -> $6.88 per GPU-hour. A price set by POST
wins over the series for its GPU type.

    paretoscale sim prices --port 9400 --nodes h100-0=H100,l40s-0=L40S --price L40S=1.86 \
        --series data/prices/aws_p5.48xlarge_us-east-1_daily.csv --gpu-type H100 \
        --per-gpu-divisor 8 --seconds-per-day 10 --start-date 2025-06-01
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from paretoscale.api.gpus import GPUS
from paretoscale.cliargs import gpu_price, number, port

PriceSource = Callable[[float], Mapping[str, float]]  # now [s since epoch] -> USD/GPU-hour


@dataclass(frozen=True)
class FakeNode:
    """A node that carries GPUs of one type."""

    name: str
    gpu_type: str


@dataclass(frozen=True)
class PricePoint:
    """The price on one day [USD per hour of whatever the series prices, e.g. an 8-GPU node]."""

    day: date
    usd_per_hour: float


def parse_nodes(text: str) -> tuple[FakeNode, ...]:
    """`h100-0=H100,l40s-0=L40S` -> nodes; raises ValueError naming the bad item."""
    nodes = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, gpu_type = item.partition("=")
        if not sep or not name or not gpu_type:
            raise ValueError(f"expected NODE=GPU_TYPE such as h100-0=H100, got {item!r}")
        if gpu_type not in GPUS:
            raise ValueError(f"{item}: unknown GPU type {gpu_type!r}; known: {', '.join(GPUS)}")
        nodes.append(FakeNode(name, gpu_type))
    if not nodes:
        raise ValueError("no nodes given; use e.g. --nodes h100-0=H100,l40s-0=L40S")
    if len({n.name for n in nodes}) != len(nodes):
        raise ValueError(f"node names repeat in {text!r}")
    return tuple(nodes)


def check_prices(prices: Mapping[str, Any]) -> dict[str, float | None]:
    """Validate {gpu_type: USD per GPU-hour or None}; raises ValueError saying what to change."""
    out: dict[str, float | None] = {}
    for gpu_type, usd in prices.items():
        if gpu_type not in GPUS:
            raise ValueError(f"unknown GPU type {gpu_type!r}; known: {', '.join(GPUS)}")
        if usd is None:
            out[gpu_type] = None
            continue
        if isinstance(usd, bool) or not isinstance(usd, int | float):
            raise ValueError(f"{gpu_type}: price must be a number or null, got {usd!r}")
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"{gpu_type}: price must be finite and >= 0, got {usd}")
        out[gpu_type] = float(usd)
    return out


def read_price_series(path: str | Path) -> tuple[PricePoint, ...]:
    """A `timestamp,instance,price_usd` CSV as one price per day, ascending.

    Rows without a price are skipped; of several rows on one day the latest timestamp wins.
    Handles CRLF line endings and unsorted rows (the AWS tracker's file has both).
    """
    latest: dict[date, tuple[datetime, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            text = (row.get("price_usd") or "").strip()
            if not text:
                continue
            at = datetime.fromisoformat(row["timestamp"].strip())
            usd = float(text)
            if not math.isfinite(usd) or usd < 0:
                raise ValueError(f"{path}: bad price {text!r} at {row['timestamp']}")
            day = at.date()
            if day not in latest or at >= latest[day][0]:
                latest[day] = (at, usd)
    if not latest:
        raise ValueError(f"{path}: no rows with a price")
    return tuple(PricePoint(d, usd) for d, (_, usd) in sorted(latest.items()))


def price_on(series: Sequence[PricePoint], day: date) -> float:
    """The price in force on `day`: the last point on or before it (the first before the series)."""
    days = [p.day for p in series]
    i = bisect.bisect_right(days, day) - 1
    return series[max(i, 0)].usd_per_hour


@dataclass(frozen=True)
class SeriesPrices:
    """A price series replayed fast: `seconds_per_day` of wall time per day of the series.

    price(now) = price_on(start_day + floor((now - started_at) / seconds_per_day)) / divisor
    [USD per GPU-hour when the series is per node and divisor = GPUs per node].
    """

    series: tuple[PricePoint, ...]
    gpu_type: str
    started_at: float  # [s since epoch] wall time of the series' start_day
    seconds_per_day: float
    per_gpu_divisor: float = 1.0
    start_day: date | None = None  # default: the series' first day

    def day_at(self, now: float) -> date:
        first = self.start_day or self.series[0].day
        days = math.floor(max(0.0, now - self.started_at) / self.seconds_per_day)
        return first + timedelta(days=days)

    def __call__(self, now: float) -> Mapping[str, float]:
        return {self.gpu_type: price_on(self.series, self.day_at(now)) / self.per_gpu_divisor}


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(nodes: Sequence[FakeNode], prices: Mapping[str, float]) -> str:
    """The /metrics body for these nodes at these USD-per-GPU-hour prices by GPU type."""
    lines = [
        "# HELP node_gpu_hourly_cost Hourly cost per GPU on this node, USD (as OpenCost).",
        "# TYPE node_gpu_hourly_cost gauge",
    ]
    for n in nodes:
        if n.gpu_type in prices:
            name = _label_value(n.name)
            lines.append(
                f'node_gpu_hourly_cost{{node="{name}",instance="{name}"}} {prices[n.gpu_type]!r}'
            )
    lines += [
        "# HELP kube_node_labels Kubernetes labels converted to Prometheus labels (as kube-state-metrics).",
        "# TYPE kube_node_labels gauge",
    ]
    for n in nodes:
        product = _label_value(GPUS[n.gpu_type].label_value)
        lines.append(
            f'kube_node_labels{{node="{_label_value(n.name)}",'
            f'label_nvidia_com_gpu_product="{product}"}} 1'
        )
    return "\n".join(lines) + "\n"


class PriceExporter:
    """Serves /metrics for `nodes` at prices that can change while it runs.

    The price for a GPU type is the one set by `set_prices()`/POST /prices if any, else the
    one `price_source(now)` gives. `start()` serves in a background thread; `stop()` ends it.
    """

    def __init__(
        self,
        nodes: Sequence[FakeNode],
        prices: Mapping[str, float] | None = None,
        price_source: PriceSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nodes = tuple(nodes)
        self._price_source = price_source
        self._clock = clock
        self._lock = threading.Lock()
        self._manual: dict[str, float] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_prices(prices or {})

    def set_prices(self, prices: Mapping[str, Any]) -> None:
        """Set (or with None remove) prices [USD per GPU-hour] by GPU type. ValueError if bad."""
        checked = check_prices(prices)
        with self._lock:
            for gpu_type, usd in checked.items():
                if usd is None:
                    self._manual.pop(gpu_type, None)
                else:
                    self._manual[gpu_type] = usd

    def current_prices(self) -> dict[str, float]:
        """USD per GPU-hour by GPU type, now."""
        base = dict(self._price_source(self._clock())) if self._price_source else {}
        with self._lock:
            return {**base, **self._manual}

    def metrics_text(self) -> str:
        return render_metrics(self.nodes, self.current_prices())

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the price exporter is not serving")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve in a daemon thread; returns (host, port) (port 0 picks a free one)."""
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="price-exporter", daemon=True
        )
        self._thread.start()
        return self.address

    def wait(self) -> None:
        """Block until the server thread ends (after `stop()`, e.g. from a signal handler)."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None


def _handler_for(exporter: PriceExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, exporter.metrics_text(), "text/plain; version=0.0.4")
            elif path == "/prices":
                self._send(200, json.dumps(exporter.current_prices()) + "\n", "application/json")
            elif path in ("/healthz", "/health"):
                self._send(200, "ok\n", "text/plain")
            else:
                self._send(404, "not found: try /metrics or /prices\n", "text/plain")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/prices":
                self._send(404, "POST /prices only\n", "text/plain")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError('expected a JSON object such as {"H100": 6.88}')
                exporter.set_prices(body)
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                self._send(400, f"{e}\n", "text/plain")
                return
            self._send(200, json.dumps(exporter.current_prices()) + "\n", "application/json")

        def _send(self, status: int, text: str, content_type: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: scraped every second
            pass

    return Handler


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paretoscale sim prices",
        description="Serve node_gpu_hourly_cost and kube_node_labels for fake GPU nodes.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port(), default=9400, help="0 picks a free port")
    p.add_argument("--nodes", required=True, help="NODE=GPU_TYPE,... e.g. h100-0=H100,l40s-0=L40S")
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="TYPE=USD",
        help="USD per GPU-hour for a GPU type (repeatable); wins over --series",
    )
    p.add_argument("--series", help="price CSV (timestamp,instance,price_usd) replayed over time")
    p.add_argument("--gpu-type", help="the GPU type the series prices (with --series)")
    p.add_argument(
        "--per-gpu-divisor",
        type=number(0, 1024, lo_open=True),
        default=1.0,
        help="divide series prices by this (8 for an 8-GPU node price)",
    )
    p.add_argument(
        "--seconds-per-day",
        type=number(0, 1e7, lo_open=True, unit="seconds"),
        default=86400.0,
        help="wall seconds per series day (time compression)",
    )
    p.add_argument("--start-date", type=date.fromisoformat, help="series day to start at")
    return p


def _build(args: argparse.Namespace, now: float) -> PriceExporter:
    nodes = parse_nodes(args.nodes)
    prices: dict[str, float] = {}
    for item in args.price:
        try:
            gpu_type, usd = gpu_price(item)
        except ValueError as e:
            raise ValueError(f"--price: {e}") from None
        prices[gpu_type] = usd
    source: PriceSource | None = None
    if args.series:
        if not args.gpu_type or args.gpu_type not in GPUS:
            raise ValueError(f"--series needs --gpu-type, one of {', '.join(GPUS)}")
        if args.seconds_per_day <= 0 or args.per_gpu_divisor <= 0:
            raise ValueError("--seconds-per-day and --per-gpu-divisor must be > 0")
        source = SeriesPrices(
            read_price_series(args.series),
            args.gpu_type,
            now,
            args.seconds_per_day,
            args.per_gpu_divisor,
            args.start_date,
        )
    elif args.gpu_type or args.start_date:
        raise ValueError("--gpu-type and --start-date go with --series")
    return PriceExporter(nodes, prices, source)


def main(argv: Sequence[str] | None = None) -> int:
    """`paretoscale sim prices ...`: serve until SIGINT/SIGTERM; 2 on bad arguments."""
    args = _parser().parse_args(argv)
    try:
        exporter = _build(args, time.time())
    except (ValueError, OSError) as e:
        print(f"paretoscale sim prices: {e}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=exporter.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        host, port = exporter.start(args.host, args.port)
    except OSError as e:
        print(
            f"paretoscale sim prices: cannot listen on {args.host}:{args.port}: {e.strerror}",
            file=sys.stderr,
        )
        return 2
    print(
        f"serving GPU prices on http://{host}:{port}/metrics "
        f"({json.dumps(exporter.current_prices())})",
        flush=True,
    )
    exporter.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
