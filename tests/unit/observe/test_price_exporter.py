"""The GPU price exporter (paretoscale.sim.prices): exposition, runtime prices, the AWS series.

It lives here, next to the parser of what it serves, because the observe tests depend on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from paretoscale.observe.snapshot import build_snapshot
from paretoscale.sim.prices import (
    FakeNode,
    PriceExporter,
    PricePoint,
    SeriesPrices,
    main,
    parse_nodes,
    price_on,
    read_price_series,
    render_metrics,
)

AWS_P5 = Path(__file__).resolve().parents[3] / "data/prices/aws_p5.48xlarge_us-east-1_daily.csv"
AWS_P5_EXCERPT = Path(__file__).parent / "data" / "aws_p5_excerpt.csv"
NODES = (FakeNode("h100-0", "H100"), FakeNode("l40s-0", "L40S"))


def test_render_metrics() -> None:
    assert render_metrics(NODES, {"H100": 6.88}) == (
        "# HELP node_gpu_hourly_cost Hourly cost per GPU on this node, USD (as OpenCost).\n"
        "# TYPE node_gpu_hourly_cost gauge\n"
        'node_gpu_hourly_cost{node="h100-0",instance="h100-0"} 6.88\n'
        "# HELP kube_node_labels Kubernetes labels converted to Prometheus labels (as kube-state-metrics).\n"
        "# TYPE kube_node_labels gauge\n"
        'kube_node_labels{node="h100-0",label_nvidia_com_gpu_product="NVIDIA-H100-80GB-HBM3"} 1\n'
        'kube_node_labels{node="l40s-0",label_nvidia_com_gpu_product="NVIDIA-L40S"} 1\n'
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("h100-0", "expected NODE=GPU_TYPE"),
        ("h100-0=X100", "unknown GPU type 'X100'"),
        ("", "no nodes given"),
        ("a=H100,a=L4", "node names repeat"),
    ],
)
def test_parse_nodes_refuses(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_nodes(text)


def test_parse_nodes() -> None:
    assert parse_nodes("h100-0=H100, l40s-0=L40S") == NODES


def test_runtime_prices_win_over_the_source() -> None:
    exporter = PriceExporter(
        NODES, {"L40S": 1.86}, price_source=lambda now: {"H100": now}, clock=lambda: 5.0
    )
    assert exporter.current_prices() == {"H100": 5.0, "L40S": 1.86}
    exporter.set_prices({"H100": 6.88, "L40S": None})
    assert exporter.current_prices() == {"H100": 6.88}
    for bad, match in (
        ({"X": 1}, "unknown GPU type"),
        ({"H100": -1}, ">= 0"),
        ({"H100": "6"}, "a number or null"),
    ):
        with pytest.raises(ValueError, match=match):
            exporter.set_prices(bad)


def test_the_aws_p5_price_cut() -> None:
    # Rows of the real series around the 2025-06-05 cut, as stored (CRLF, rows without price).
    series = read_price_series(AWS_P5_EXCERPT)
    assert series[0] == PricePoint(date(2025, 4, 23), 98.32)
    assert price_on(series, date(2025, 6, 4)) / 8 == pytest.approx(12.29)
    assert price_on(series, date(2025, 6, 5)) / 8 == pytest.approx(6.88)
    # Replayed at 10 s per day from 2025-06-01: the cut arrives after 40 s.
    replay = SeriesPrices(series, "H100", 0.0, 10.0, 8.0, start_day=date(2025, 6, 1))
    assert replay(39.9)["H100"] == pytest.approx(12.29)
    assert replay(40.0)["H100"] == pytest.approx(6.88)


def test_read_the_whole_aws_p5_series() -> None:
    series = read_price_series(AWS_P5)
    assert series[0] == PricePoint(date(2025, 4, 23), 98.32)
    assert series[-1] == PricePoint(date(2026, 8, 22), 55.04)
    assert list(series) == sorted(series, key=lambda p: p.day)
    assert price_on(series, date(2025, 6, 4)) / 8 == pytest.approx(12.29)
    assert price_on(series, date(2025, 6, 5)) / 8 == pytest.approx(6.88)
    assert price_on(series, date(2020, 1, 1)) == 98.32  # before the series: its first price


def test_series_with_blank_rows_crlf_and_several_rows_a_day(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_bytes(
        b"timestamp,instance,price_usd\r\n"
        b"2025-01-02T09:00:00,x,20\r\n"
        b"2025-01-01,x,\r\n"
        b"2025-01-01T08:00:00,x,10\r\n"
        b"2025-01-02T07:00:00,x,15\r\n"
        b"2025-01-04T07:00:00,x,40\r\n"
    )
    series = read_price_series(csv)
    assert series == (
        PricePoint(date(2025, 1, 1), 10.0),
        PricePoint(date(2025, 1, 2), 20.0),  # the later row of the day
        PricePoint(date(2025, 1, 4), 40.0),
    )
    prices = SeriesPrices(
        series, "H100", started_at=1000.0, seconds_per_day=10.0, per_gpu_divisor=2.0
    )
    # 10 s per day: day 0, day 1, day 2 (no row: carries day 1), day 3, and beyond the end.
    assert [prices(t)["H100"] for t in (1000, 1012, 1025, 1030, 5000)] == [
        5.0,
        10.0,
        10.0,
        20.0,
        20.0,
    ]
    later = SeriesPrices(series, "H100", 0.0, 10.0, 1.0, start_day=date(2025, 1, 2))
    assert later(0.0) == {"H100": 20.0} and later.day_at(25.0) == date(2025, 1, 4)


def test_http_metrics_and_post(tmp_path: Path) -> None:
    exporter = PriceExporter(NODES, {"H100": 6.88})
    host, port = exporter.start()
    base = f"http://{host}:{port}"
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'node_gpu_hourly_cost{node="h100-0",instance="h100-0"} 6.88' in text
        post = urllib.request.Request(
            f"{base}/prices", data=json.dumps({"H100": 12.29, "L40S": 1.86}).encode(), method="POST"
        )
        with urllib.request.urlopen(post, timeout=5) as r:
            assert json.load(r) == {"H100": 12.29, "L40S": 1.86}
        bad = urllib.request.Request(f"{base}/prices", data=b'{"H100": -3}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=5)
        assert e.value.code == 400 and b">= 0" in e.value.read()
        with urllib.request.urlopen(f"{base}/prices", timeout=5) as r:
            assert json.load(r) == {"H100": 12.29, "L40S": 1.86}
    finally:
        exporter.stop()


def test_what_it_serves_parses_as_prices() -> None:
    # The default gpu_price query returns one series per product label; this is its shape.
    served = {"NVIDIA-H100-80GB-HBM3": "6.88", "NVIDIA-L40S": "1.86"}
    result = [
        {"metric": {"label_nvidia_com_gpu_product": p}, "value": [1, v]} for p, v in served.items()
    ]
    assert build_snapshot(0.0, {"gpu_price": result}, 1).gpu_prices_usd_per_hour == {
        "H100": 6.88,
        "L40S": 1.86,
    }


def test_main_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "h100-0=X100", "--port", "0"]) == 2
    assert "unknown GPU type 'X100'" in capsys.readouterr().err
    assert main(["--nodes", "h100-0=H100", "--series", "x.csv"]) == 2
    assert "--series needs --gpu-type" in capsys.readouterr().err


def test_main_serves_until_terminated() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paretoscale.sim.prices",
            "--port",
            "0",
            "--nodes",
            "h100-0=H100",
            "--price",
            "H100=6.88",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving GPU prices on http://127.0.0.1:")
        url = line.split()[4]
        with urllib.request.urlopen(url, timeout=5) as r:
            assert b"6.88" in r.read()
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
