"""`paretoscale plan | profile | crds` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paretoscale.cli import main

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "examples" / "assistant-llama-8b.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-f", EXAMPLE, "--rate", "12", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["decision"]["variant"] == "fp8" and doc["decision"]["replicas"] == 1
    assert doc["decision"]["reasons"]
    row = {v["name"]: v for v in doc["variants"]}["fp8"]
    assert row["feasible"] and row["onFrontier"] and row["replicas"] == 1
    assert row["hourlyCost"] == pytest.approx(6.88)
    assert row["costPer1kRequests"] == pytest.approx(6.88 / 43.2, abs=1e-4)
    assert row["netValuePerHour"] == pytest.approx(row["valuePerHour"] - 6.88, abs=1e-3)


def test_plan_price_override_moves_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, "plan", "-f", EXAMPLE, "--rate", "12", "--price", "H100=40", "-o", "json"
    )
    assert json.loads(out)["decision"]["variant"] == "w4a16-l40s"


def test_plan_table_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "f.png"
    code, out, _ = run(capsys, "plan", "-f", EXAMPLE, "--rate", "12", "--plot", str(png))
    assert code == 0 and "Decision: fp8 x 1" in out and "*fp8" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--rate", "1", "--price", "H100"], "expected TYPE=USD_PER_GPU_HOUR"),
        (["--rate", "1", "--price", "A100=1"], "GPU type A100 is not in spec.gpus"),
        (["--rate", "1", "--price", "H100=-1"], "-1 is out of range; give a price from 0"),
    ],
    ids=["bad-price", "unknown-price-gpu", "negative-price"],
)
def test_plan_bad_flags_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, _, err = run(capsys, "plan", "-f", EXAMPLE, *argv)
    assert code == 2 and words in err


def test_plan_bad_file_exit_2_with_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        Path(EXAMPLE).read_text().replace("type: L40S, count: 1", "type: L41S, count: 1")
    )
    code, _, err = run(capsys, "plan", "-f", str(bad), "--rate", "1")
    assert code == 2 and "variants[2] (w4a16-l40s): gpu.type L41S is not listed" in err
    bad.write_text(Path(EXAMPLE).read_text().replace("type: L40S", "type: L41S"))
    code, _, err = run(capsys, "plan", "-f", str(bad), "--rate", "1")
    assert code == 2 and "spec.gpus[1].type: unknown GPU type 'L41S'" in err
    assert "--gpu-types-file" in err
    code, _, err = run(capsys, "plan", "-f", str(tmp_path / "missing.yaml"), "--rate", "1")
    assert code == 2 and "cannot read" in err


def test_plan_runs_a_gpu_type_declared_in_a_gpu_types_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    md = tmp_path / "md.yaml"
    md.write_text(Path(EXAMPLE).read_text().replace("type: L40S", "type: acme-x1"))
    types = tmp_path / "types.yaml"
    types.write_text(
        "gpuTypes:\n  acme-x1:\n    labelKey: acme.com/accelerator\n    labelValue: x1\n"
        "    resource: acme.com/gpu\n    memoryGiB: 48\n    memoryBandwidthTBps: 0.9\n"
        "    bf16Tflops: 360\n    computeCapability: '8.9'\n"
    )
    code, out, err = run(
        capsys, "plan", "-f", str(md), "--rate", "1", "--gpu-types-file", str(types), "-o", "json"
    )
    assert code == 0, err
    rows = {v["name"]: v for v in json.loads(out)["variants"]}
    assert rows["w4a16-l40s"]["feasible"]
    types.write_text("gpuTypes:\n  acme-x1: {labelKey: acme.com/accelerator}\n")
    code, _, err = run(capsys, "plan", "-f", str(md), "--rate", "1", "--gpu-types-file", str(types))
    assert code == 2 and "gpuTypes.acme-x1: a new GPU type needs labelValue" in err


def test_crds_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crds")
    assert code == 0 and out == (ROOT / "crds" / "modeldeployments.paretoscale.io.yaml").read_text()


def _bench_result(path: Path, rate: float | str, p95_e2el_ms: float | None, **extra: object) -> str:
    doc: dict[str, object] = {
        "request_rate": rate,
        "request_throughput": 3.9,
        "completed": 100,
        "failed": 0,
        "p99_e2el_ms": 9000.0,
        **extra,
    }
    if p95_e2el_ms is not None:
        doc["p95_e2el_ms"] = p95_e2el_ms
    path.write_text(json.dumps(doc))
    return str(path)


def test_profile_from_vllm_bench_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = [
        _bench_result(tmp_path / "r8.json", 8, 5500.0),
        _bench_result(tmp_path / "r2.json", 2, 3100.0),
        _bench_result(tmp_path / "rinf.json", "inf", 9800.0, request_throughput=14.0),
    ]
    code, out, _ = run(capsys, "profile", *files, "-o", "json")
    assert code == 0
    assert json.loads(out)["profile"] == [
        {"requestsPerSecond": 2, "latencySeconds": 3.1},
        {"requestsPerSecond": 8, "latencySeconds": 5.5},
        {"requestsPerSecond": 14.0, "latencySeconds": 9.8},
    ]
    code, out, _ = run(capsys, "profile", *files)
    assert "- {requestsPerSecond: 2, latencySeconds: 3.1}" in out


def test_profile_missing_percentile_says_which_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = _bench_result(tmp_path / "r.json", 2, None)
    code, _, err = run(capsys, "profile", f, "--latency", "e2e", "--percentile", "95")
    assert code == 2
    assert "no 'p95_e2el_ms'" in err and "--metric-percentiles 95" in err and "p99_e2el_ms" in err


def test_plan_infeasible_rows_show_no_money(capsys: pytest.CaptureFixture[str]) -> None:
    """At 100 req/s the L40S variant cannot meet the SLO within 16 replicas: its money columns
    read `-` in the table and null in JSON; every other money cell reads `$x.xx`."""
    code, out, _ = run(capsys, "plan", "-f", EXAMPLE, "--rate", "100")
    assert code == 0
    rows = {line.split()[0].lstrip("*"): line.split() for line in out.splitlines()[2:6]}
    assert rows["w4a16-l40s"][3] == "no" and rows["w4a16-l40s"][-4:] == ["-"] * 4
    for name in ("bf16", "fp8", "bf16-eagle3"):
        assert all(cell.startswith("$") for cell in rows[name][-4:]), rows[name]
    _, out, _ = run(capsys, "plan", "-f", EXAMPLE, "--rate", "100", "-o", "json")
    row = {v["name"]: v for v in json.loads(out)["variants"]}["w4a16-l40s"]
    assert not row["feasible"]
    money = ("hourlyCost", "costPer1kRequests", "valuePerHour", "netValuePerHour")
    assert [row[k] for k in money] == [None] * 4


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"paretoscale {version('paretoscale')}"


def test_plot_without_matplotlib_exits_2_with_the_extra(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = run(
        capsys, "plan", "-f", EXAMPLE, "--rate", "12", "--plot", str(tmp_path / "f.png")
    )
    assert code == 2 and out == ""
    assert err == "error: --plot: needs matplotlib: pip install 'paretoscale[plot]'\n"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("missing-dir/f.png", "no folder"),
        ("f.xyz", "Format 'xyz' is not supported"),
        ("", "it is a folder"),
    ],
    ids=["no-dir", "bad-format", "a-folder"],
)
def test_plot_unwritable_path_exits_2_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, words: str
) -> None:
    path = tmp_path / name
    code, _, err = run(capsys, "plan", "-f", EXAMPLE, "--rate", "12", "--plot", str(path))
    assert code == 2 and err.startswith(f"error: --plot: cannot write {path}: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_python_dash_m_and_a_closed_pipe(tmp_path: Path) -> None:
    """`python -m paretoscale plan ... | head -1`: the reader is gone before the output is
    written; the command still exits 0, with nothing on stderr."""
    read, write = os.pipe()
    os.close(read)  # no reader: every write to the pipe fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "paretoscale", "plan", "-f", EXAMPLE, "--rate", "12"],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, b"")
    proc = subprocess.run(
        [sys.executable, "-m", "paretoscale", "plan", "-f", EXAMPLE, "--rate", "12"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and b"Decision: fp8 x 1" in proc.stdout
