"""Every numeric flag of every subcommand refuses NaN, infinity and out-of-range values: the
process exits 2 with a message naming the flag and what to give instead, and never hangs
(each run is bounded by a timeout; the test asserts the status and the message)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "examples" / "assistant-llama-8b.yaml")
RATES = str(ROOT / "data" / "traces" / "servegen_m-large_rate.csv")
PLAN = ("plan", "-f", EXAMPLE)
FINITE = "is not a finite number"
RANGE = "is out of range"
PRICE_HINT = "give a price from 0 to 10,000 USD per GPU-hour, such as H100=2.69"

# fmt: off
CASES: list[tuple[str, tuple[str, ...], str]] = [
    # plan
    ("plan-price-nan", (*PLAN, "--rate", "12", "--price", "H100=nan"), f"H100: nan {FINITE}"),
    ("plan-price-inf", (*PLAN, "--rate", "12", "--price", "H100=inf"), f"H100: inf {FINITE}"),
    ("plan-price-huge", (*PLAN, "--rate", "12", "--price", "H100=1e999"), f"H100: inf {FINITE}"),
    ("plan-price-negative", (*PLAN, "--rate", "12", "--price", "H100=-1"), f"-1 {RANGE}"),
    ("plan-price-word", (*PLAN, "--rate", "12", "--price", "H100=cheap"), "'cheap' is not a number"),
    ("plan-rate-nan", (*PLAN, "--rate", "nan"), f"argument --rate: nan {FINITE}"),
    ("plan-rate-inf", (*PLAN, "--rate", "inf"), f"argument --rate: inf {FINITE}"),
    ("plan-rate-negative", (*PLAN, "--rate", "-1"), f"argument --rate: -1 {RANGE}"),
    ("plan-rate-huge", (*PLAN, "--rate", "1e300"), "give a number from 0 to 1,000,000 (requests/s)"),
    ("plan-price-huge-finite", (*PLAN, "--rate", "12", "--price", "H100=1e300"), f"H100: 1e+300 {RANGE}"),
    ("plan-price-other-gpu-nan", (*PLAN, "--rate", "12", "--price", "H100=2", "--price", "L40S=nan"), f"L40S: nan {FINITE}"),
    ("plan-rate-overflow", (*PLAN, "--rate", "1e400"), f"argument --rate: inf {FINITE}"),
    ("plan-rate-minus-inf", (*PLAN, "--rate=-inf"), f"argument --rate: -inf {FINITE}"),
    ("plan-tokens-huge", (*PLAN, "--rate", "1", "--tokens", "1e300/100"), "--tokens: need 0 < IN"),
    ("plan-tokens-inf", (*PLAN, "--rate", "1", "--tokens", "100/inf"), "--tokens: need 0 < IN"),
    ("plan-tokens-nan", (*PLAN, "--rate", "1", "--tokens", "nan/100"), "--tokens: need 0 < IN"),
    # profile (the flag is checked before any result file is read)
    ("profile-percentile-nan", ("profile", "r.json", "--percentile", "nan"), f"--percentile: nan {FINITE}"),
    ("profile-percentile-100", ("profile", "r.json", "--percentile", "100"), f"100 {RANGE}; give a number > 0 and < 100"),
    # run (flags and PARETOSCALE_* variables are checked before any connection)
    ("run-tick-nan", ("run", "--tick-seconds", "nan"), f"--tick-seconds: nan {FINITE}"),
    ("run-tick-zero", ("run", "--tick-seconds", "0"), f"--tick-seconds: 0 {RANGE}"),
    ("run-stale-inf", ("run", "--stale-after-seconds", "inf"), f"--stale-after-seconds: inf {FINITE}"),
    ("run-price-nan", ("run", "--price", "H100=nan"), f"argument --price: H100: nan {FINITE}"),
    ("run-port", ("run", "--metrics-port", "70000"), "--metrics-port: 70000 is out of range; give a whole number from 0 to 65,535"),
    ("run-log-format", ("run", "--log-format", "xml"), "--log-format: invalid choice: 'xml'"),
    # replay
    ("replay-peak-nan", ("replay", "-f", EXAMPLE, "--peak-rps", "nan"), f"--peak-rps: nan {FINITE}"),
    ("replay-dispersion-inf", ("replay", "-f", EXAMPLE, "--dispersion", "inf"), f"--dispersion: inf {FINITE}"),
    ("replay-tick-nan", ("replay", "-f", EXAMPLE, "--tick-seconds", "nan"), f"--tick-seconds: nan {FINITE}"),
    ("replay-days-neg", ("replay", "-f", EXAMPLE, "--days", "-1"), f"--days: -1 {RANGE}"),
    ("replay-delay-inf", ("replay", "-f", EXAMPLE, "--metrics-delay-seconds", "inf"), f"inf {FINITE}"),
    ("replay-window-nan", ("replay", "-f", EXAMPLE, "--rate-window-seconds", "nan"), f"nan {FINITE}"),
    ("replay-gpus-nan", ("replay", "-f", EXAMPLE, "--prices-gpus-per-instance", "nan"), f"nan {FINITE}"),
    ("replay-seed-neg", ("replay", "-f", EXAMPLE, "--seed", "-1"), "--seed: -1 is out of range"),
    ("replay-speed-inf", ("replay", "-f", EXAMPLE, "--reality-speed", "fp8=inf", "--rate-series", RATES), "fp8: the factor must be > 0 and < 1000, got inf"),
    ("replay-plot-no-folder", ("replay", "-f", EXAMPLE, "--rate-series", RATES, "--peak-rps", "9", "--plot", "/no-such-folder/r.png"), "--plot:\n  cannot write /no-such-folder/r.png: no folder /no-such-folder"),
    ("plan-plot-no-folder", (*PLAN, "--rate", "1", "--plot", "/no-such-folder/f.png"), "error: --plot: cannot write /no-such-folder/f.png: no folder /no-such-folder\n"),
    # sim serve | load | prices | bridge
    ("sim-speed-nan", ("sim", "serve", "m", "--sim-speed", "nan"), f"--sim-speed: nan {FINITE}"),
    ("sim-delay-inf", ("sim", "serve", "m", "--sim-startup-delay-s", "inf"), f"inf {FINITE}"),
    ("sim-params-neg", ("sim", "serve", "m", "--sim-params-b", "-8"), f"--sim-params-b: -8 {RANGE}"),
    ("sim-time-scale-nan", ("sim", "serve", "m", "--sim-time-scale", "nan"), f"nan {FINITE}"),
    ("sim-acceptance-2", ("sim", "serve", "m", "--sim-spec-acceptance", "2"), f"2 {RANGE}; give a number from 0 to 1"),
    ("load-rate-nan", ("sim", "load", "--url", "http://127.0.0.1:1", "--rate-rps", "nan"), f"--rate-rps: nan {FINITE}"),
    ("load-scale-inf", ("sim", "load", "--url", "http://127.0.0.1:1", "--rate-rps", "1", "--time-scale", "inf"), f"inf {FINITE}"),
    ("load-concurrency-0", ("sim", "load", "--url", "http://127.0.0.1:1", "--rate-rps", "1", "--concurrency", "0"), "--concurrency: 0 is out of range"),
    ("prices-price-nan", ("sim", "prices", "--nodes", "h100-0=H100", "--price", "H100=nan"), f"--price: H100: nan {FINITE}"),
    ("prices-day-inf", ("sim", "prices", "--nodes", "h100-0=H100", "--seconds-per-day", "inf"), f"inf {FINITE}"),
    ("bridge-poll-nan", ("sim", "bridge", "--kubeconfig", "k", "--file-sd-dir", "d", "--poll-s", "nan"), f"--poll-s: nan {FINITE}"),
    # demo (hack/demo)
    ("demo-peak-nan", ("demo", "--peak-rps", "nan"), f"--peak-rps: nan {FINITE}"),
    ("demo-minutes-inf", ("demo", "--minutes", "inf"), f"--minutes: inf {FINITE}"),
    ("demo-refresh-nan", ("demo", "--refresh-seconds", "nan"), f"nan {FINITE}"),
]
# fmt: on


def paretoscale(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARETOSCALE_")}
    return subprocess.run(
        [sys.executable, "-m", "paretoscale", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**clean, **(env or {})},
        cwd=ROOT,
    )


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_number_exits_2_saying_what_to_change(argv: tuple[str, ...], words: str) -> None:
    proc = paretoscale(*argv)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_price_message_says_the_range_and_an_example() -> None:
    proc = paretoscale(*PLAN, "--rate", "12", "--price", "H100=nan")
    assert proc.returncode == 2
    assert proc.stderr == f"error: --price: H100: nan {FINITE}; {PRICE_HINT}\n"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PARETOSCALE_TICK_SECONDS", "inf", "tick_seconds: must be a finite number"),
        ("PARETOSCALE_TICK_SECONDS", "nan", "tick_seconds"),
        ("PARETOSCALE_LOG_FORMAT", "xml", "PARETOSCALE_LOG_FORMAT: 'xml' is not json or text"),
        ("PARETOSCALE_LOG_LEVEL", "LOUD", "PARETOSCALE_LOG_LEVEL: 'LOUD' is not one of"),
    ],
    ids=["tick-inf", "tick-nan", "log-format", "log-level"],
)
def test_run_bad_environment_exits_2(variable: str, value: str, words: str) -> None:
    proc = paretoscale("run", env={variable: value})
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr


def test_run_bad_gpu_types_file_exits_2_naming_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "gpu-types.yaml"
    bad.write_text("gpuTypes:\n  x9: {labelKey: acme.com/accelerator}\n")
    proc = paretoscale("run", "--gpu-types-file", str(bad))
    assert proc.returncode == 2, proc.stderr
    assert f"invalid GPU types file {bad}" in proc.stderr
    assert "gpuTypes.x9: a new GPU type needs labelValue" in proc.stderr
    proc = paretoscale("run", env={"PARETOSCALE_GPU_TYPES_FILE": str(tmp_path / "missing.yaml")})
    assert proc.returncode == 2 and "cannot read the GPU types file" in proc.stderr


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("targetUtilization: 0.8", "targetUtilization: .nan", "Input should be a finite number"),
        ("seconds: 8}", "seconds: .inf}", "spec.slo.seconds: Input should be a finite number"),
        ("seconds: 8}", "seconds: 1e999}", "spec.slo.seconds: Input should be a valid number"),
        ("available: 16}", "available: 100000000000000000000}", "less than or equal to 100000"),
        ("calibrationFactor: 0.30", 'calibrationFactor: "0.3"', "Input should be a valid number"),
    ],
    ids=["nan", "inf", "overflow", "huge-int", "number-as-string"],
)
def test_bad_number_in_the_spec_file_exits_2(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    text = Path(EXAMPLE).read_text()
    assert old in text
    spec = tmp_path / "md.yaml"
    spec.write_text(text.replace(old, new, 1))
    proc = paretoscale("plan", "-f", str(spec), "--rate", "12")
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
