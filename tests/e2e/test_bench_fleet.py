"""bench/fleet_scale.py runs as documented, at a tiny size, on the session's cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def test_fleet_scale_quick(cluster: Any) -> None:
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig}
    if cluster.prometheus_url:
        env["PROMETHEUS_URL"] = cluster.prometheus_url
    argv = ["--count", "4", "--baseline", "2", "--ticks", "1", "--tick-seconds", "3"]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet_scale.py"), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "Prometheus queries per tick" in r.stdout and "first decision for all" in r.stdout
