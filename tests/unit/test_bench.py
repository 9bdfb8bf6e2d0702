"""Every benchmark under bench/ runs as documented, at a tiny size: a benchmark that broke
fails here, not in front of the next person who reads docs/. The figures come from the full
size, run by hand (docs/replay.md, README). The operator-at-scale benchmark needs a cluster:
tests/e2e/test_bench_fleet.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
QUICK = {  # benchmark -> a line its quick run prints
    "decide.py": "one decision, 8 variants",
    "sim.py": "ratio sim / baseline",
    "sim_http.py": "over HTTP",
    "replay.py": "headroomCaptured",
}


def run(*argv: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout_s, cwd=BENCH.parent, check=False)  # fmt: skip


def test_every_benchmark_is_covered() -> None:
    assert {p.name for p in BENCH.glob("*.py")} == {*QUICK, "fleet_scale.py"}


@pytest.mark.parametrize("name", sorted({*QUICK, "fleet_scale.py"}))
def test_help_teaches(name: str) -> None:
    r = run(str(BENCH / name), "--help", timeout_s=60)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout and len(r.stdout.splitlines()) > 3


@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_run(name: str) -> None:
    r = run(str(BENCH / name), "--quick")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert QUICK[name] in r.stdout, r.stdout[-3000:]


def test_replay_judges_the_mean_of_several_seeds() -> None:
    r = run(str(BENCH / "replay.py"), "--quick", "--only", "prompt-shift", "--seeds", "2",
            "--no-plot")  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "(seed 1)" in r.stdout and "(seed 2)" in r.stdout
    assert "mean of seeds 1..2" in r.stdout and "(seeds: " in r.stdout, r.stdout[-3000:]
    bad = run(str(BENCH / "replay.py"), "--seeds", "0", timeout_s=60)
    assert bad.returncode == 2 and "--seeds" in bad.stderr
