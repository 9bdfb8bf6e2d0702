"""Credentials never leave the process: redact() and the edges that use it (log lines, status
conditions, the Prometheus poller's problem text). Events go through the same redact() in
actuate/kube.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from paretoscale.api.conditions import set_condition
from paretoscale.config import OperatorSettings
from paretoscale.controller.logs import configure_logging
from paretoscale.observe.prometheus import MetricsPoller
from paretoscale.redact import MASK, redact
from paretoscale.sim.bridge import free_loopback_port

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZw"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Prometheus at https://alice:s3cr3t@prom.example:9090: refused", "alice:s3cr3t"),
        ("GET http://tok3n@prom:9090/api/v1/query", "tok3n"),
        ("{'Authorization': 'Bearer abc.def-ghi'}", "abc.def-ghi"),
        ("authorization: Basic YWxpY2U6czNjcjN0", "YWxpY2U6czNjcjN0"),
        ("sent Bearer 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        (f"token file held {JWT}", JWT),
        ("https://prom/api?query=up&access_token=q1w2e3&x=1", "q1w2e3"),
        ('{"password": "hunter2"}', "hunter2"),
        ("password=hunter2 and more", "hunter2"),
        ("api_key: k-123", "k-123"),
    ],
)
def test_credentials_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize(
    "text",
    [
        "Prometheus at https://prom.example:9090: connection refused",
        "cannot read the Prometheus bearer token file /var/run/token: No such file",
        "numSpeculativeTokens: 3; prompt tokens: 1155; basic authentication failed",
        "variant 'fp8': FP8 weights need compute capability 8.9+",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_are_redacted(fmt: str) -> None:
    stream = io.StringIO()
    handler = configure_logging(fmt, "INFO", stream)  # type: ignore[arg-type]
    try:
        logging.getLogger("paretoscale").warning(
            "poll of %s failed", "https://alice:s3cr3t@prom:9090", extra={"hdr": f"Bearer {JWT}"}
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue()
    assert "s3cr3t" not in line and JWT not in line and "https://***@prom:9090" in line
    if fmt == "json":
        assert json.loads(line)["message"] == "poll of https://***@prom:9090 failed"


def test_condition_messages_are_redacted() -> None:
    (cond,) = set_condition(
        [],
        "MetricsAvailable",
        False,
        "MetricsUnavailable",
        "Prometheus at https://alice:s3cr3t@prom:9090: connection refused",
        "2026-12-06T00:00:00Z",
        1,
    )
    assert cond.message == "Prometheus at https://***@prom:9090: connection refused"


def test_a_condition_set_again_stays_redacted_and_unchanged() -> None:
    raw = "Prometheus at https://alice:s3cr3t@prom:9090: connection refused"
    args = ("MetricsAvailable", False, "MetricsUnavailable")
    first = set_condition([], *args, raw, "2026-12-06T00:00:00Z", 1)
    again = set_condition(first, *args, raw, "2026-12-06T00:05:00Z", 1)
    assert again == first and again[0].message == first[0].message  # redacted, first time kept
    assert "s3cr3t" not in again[0].message
    same = set_condition(again, *args, again[0].message, "2026-12-06T00:10:00Z", 1)
    assert same[0] is again[0]  # nothing moved: the condition is not built again
    moved = set_condition(same, *args, raw, "2026-12-06T00:10:00Z", 2)
    assert moved[0].observed_generation == 2 and "s3cr3t" not in moved[0].message
    assert moved[0].last_transition_time == "2026-12-06T00:00:00Z"  # the status did not flip


def test_the_poller_never_reports_the_url_credentials() -> None:
    """A real PrometheusConnect against a closed port: the problem names the place, not the
    password."""
    url = f"http://alice:s3cr3t@127.0.0.1:{free_loopback_port()}"
    poller = MetricsPoller(OperatorSettings(prometheus_url=url, prometheus_timeout_seconds=2))
    snapshot = asyncio.run(poller.poll_once())
    assert snapshot.problem and "connection refused" in snapshot.problem
    assert "s3cr3t" not in snapshot.problem and "alice" not in snapshot.problem
    assert "s3cr3t" not in poller.source and "***@127.0.0.1" in poller.source
