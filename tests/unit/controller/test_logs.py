"""`paretoscale run --log-format json|text`: every line of real output is one JSON object."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest

from paretoscale.controller.logs import configure_logging, jsonable

NASTY = 'quote " and\nnewline, tab\t, unicode \u2028 é'


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_run_json_output_parses_line_by_line(tmp_path: Path) -> None:
    """The real operator, started with a kubeconfig path holding `"` and a newline that does
    not exist: it logs its settings, then why it cannot start, as JSON lines, and exits 1."""
    kubeconfig = tmp_path / 'kube"config\nwith a newline'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARETOSCALE_", "KUBE"))}
    proc = subprocess.run(
        [sys.executable, "-m", "paretoscale", "run", "--log-format", "json",
         "--kubeconfig", str(kubeconfig), "--metrics-port", "0", "--health-port", "0"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) >= 2
    for r in records:
        assert {"ts", "level", "logger", "message"} <= set(r)
        assert r["ts"].endswith("+00:00")
    assert records[0]["message"].startswith("settings {")
    last = records[-1]
    assert last["level"] == "CRITICAL" and last["logger"] == "paretoscale"
    assert f"the kubeconfig {kubeconfig} failed" in last["message"]  # `"` and `\n` intact
    assert "pass --kubeconfig PATH or set KUBECONFIG" in last["message"]


def test_json_lines_carry_kopf_object_and_exception(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream)
    body = kopf.Body(
        {
            "apiVersion": "paretoscale.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "assistant", "namespace": "llm", "uid": "u-1"},
        }
    )
    logger = kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())
    logger.info("tick: %s", NASTY, extra={"ratio": float("nan"), "tags": ("a", 1)})
    try:
        raise RuntimeError(NASTY)
    except RuntimeError:
        logging.getLogger("paretoscale").exception("reconcile failed")
    logging.getLogger("paretoscale").debug("plain %d", 7, stack_info=True)
    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""  # each record ends its line; none spans two
    first, second, third = (json.loads(line) for line in lines[:-1])
    assert first["message"] == f"tick: {NASTY}" and first["level"] == "INFO"
    assert first["object"] == {
        "apiVersion": "paretoscale.io/v1alpha1",
        "kind": "ModelDeployment",
        "name": "assistant",
        "uid": "u-1",
        "namespace": "llm",
    }
    assert first["ratio"] == "nan" and first["tags"] == ["a", 1]
    assert "settings" not in first and "k8s_skip" not in first
    assert second["level"] == "ERROR" and isinstance(second["exception"], str)
    assert second["exception"].startswith("Traceback") and NASTY in second["exception"]
    assert third["message"] == "plain 7" and "test_logs.py" in third["stack"]
    assert all(line.isascii() for line in lines)


def test_text_format_prefixes_the_object(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "INFO", stream)
    body = kopf.Body({"metadata": {"name": "assistant", "namespace": "llm"}})
    kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings()).warning("slow")
    logging.getLogger("paretoscale").debug("hidden below INFO")
    out = stream.getvalue()
    assert out.rstrip("\n").endswith("WARNING kopf.objects: [llm/assistant] slow")
    assert "hidden" not in out


def test_jsonable_keeps_json_and_stringifies_the_rest() -> None:
    assert jsonable({"a": [1, 2.5, None, True], 3: float("inf")}) == {
        "a": [1, 2.5, None, True],
        "3": "inf",
    }
    assert jsonable(Path("/x")) == "/x"
