"""`hack/demo` end to end, in its short mode: a one-minute day on its own cluster.

It must exit 0, print a summary with figures, write the plot, and leave nothing running:
every process it started (found while it runs: its descendants, and the processes whose
command line names its output directory, i.e. the cluster's components) must be gone
afterwards, and its cluster state dir removed. Does not use the session cluster: the demo
brings up and takes down its own (hack/cluster --dir OUT/cluster).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(360)]

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "hack" / "demo"
DEMO_TIMEOUT_S = 300


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process now."""
    out: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out[int(entry.name)] = (ppid, cmdline.strip())
    return out


def _started_by(root: int, marker: str) -> dict[int, str]:
    """Processes below `root`, and those whose command line mentions `marker`."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = procs[child][1]
            todo.append(child)
    found.update({pid: cmd for pid, (_, cmd) in procs.items() if marker in cmd})
    found.pop(root, None)
    return found


def _still_running(seen: dict[int, str]) -> dict[int, str]:
    """Those of `seen` that run now with the same command line (a reused pid is not one)."""
    now = _processes()
    return {pid: cmd for pid, cmd in seen.items() if pid in now and now[pid][1] == cmd and cmd}


def test_demo_short_mode_runs_a_day_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PROMETHEUS_URL")}
    proc = subprocess.Popen(
        [str(DEMO), "--minutes", "1", "--out", str(out), "--refresh-seconds", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    seen: dict[int, str] = {}
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            seen.update(_started_by(proc.pid, str(out)))
            time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.terminate()  # the demo cleans up on SIGTERM too
            proc.wait(120)
    reader.join(10)
    text = "".join(lines)
    assert proc.returncode == 0, f"hack/demo exited {proc.returncode}:\n{text[-6000:]}"

    # A summary with figures, against the best-quality baseline.
    money, pct = r"\$[\d,]+\.\d\d", r"\d+\.\d\d%"
    assert re.search(rf"paretoscale \(this run, live\)\s+{money}\s+[\d.]+\s+{pct}", text), text
    assert re.search(rf"bf16 all day, HPA \(replay\)\s+{money}\s+[\d.]+\s+{pct}", text), text
    assert re.search(r"paretoscale spent \d+\.\d% (less|more) than the best-quality", text), text
    assert re.search(r"Load generator \(warm-up included\): [\d,]+ sent, [\d,]+ served", text), text
    assert re.search(r"Timing: .*total \d+s", text), text
    assert re.search(r"\[day \d\d:\d\d \| \d:\d\d\] load", text), "no live view lines"

    png = out / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    doc = json.loads((out / "demo.json").read_text())
    assert len(doc["figures"]) == 2 and len(doc["samples"]) >= 10
    assert doc["figures"][0]["gpu_cost_usd"] > 0 and doc["loadReport"]["ok"] > 0

    # It started an operator, simulators and a cluster, and stopped every one of them.
    commands = " ".join(seen.values())
    assert "paretoscale.cli run" in commands and "paretoscale.sim serve" in commands
    assert "kube-apiserver" in commands and "prometheus" in commands
    assert _still_running(seen) == {}
    assert not (out / "cluster").exists(), "hack/cluster down did not remove the state dir"
