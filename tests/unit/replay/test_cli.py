"""`paretoscale replay` as a user runs it: JSON keys, the table, calibration, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretoscale.cli import main

from .conftest import ASSISTANT

SHAPE = "window_start_s,rate_rps,active_clients\n0,10,1\n600,40,1\n1200,25,1\n"
TOKENS = "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(
    f"2023-11-16 18:15:{i:02d}.0000000,{300 + 97 * i % 1500},{20 + 37 * i % 400}" for i in range(60)
)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "shape.csv").write_text(SHAPE)
    (tmp_path / "tokens.csv").write_text(TOKENS)
    (tmp_path / "prices.csv").write_text(
        "time_s,gpu_type,usd_per_gpu_hour\n0,H100,6.88\n900,H100,3\n"
    )
    (tmp_path / "aws.csv").write_text(
        "timestamp,instance,price_usd\r\n2025-04-23T18:52:57,p5.48xlarge,98.32\r\n2025-04-01,p5.48xlarge,\r\n2025-06-05T07:00:00,p5.48xlarge,55.04\r\n"
    )
    return {k: str(tmp_path / f"{k}.csv") for k in ("shape", "tokens", "prices", "aws")}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keys_and_fractions(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, out, _ = run(
        capsys, "-f", str(ASSISTANT), "--rate-series", files["shape"], "--peak-rps", "40",
        "--tokens", files["tokens"], "--prices", files["prices"], "-o", "json",
        "--policy", "static:best+hpa,paretoscale", "--policy", "oracle",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert [p["policy"] for p in doc["policies"]] == [
        "static:bf16+hpa (best quality)",
        "paretoscale",
        "oracle",
    ]
    keys = {
        "policy",
        "gpuCost",
        "value",
        "netValue",
        "netValueVsOracle",
        "sloAttainment",
        "switches",
        "gpuHours",
    }
    for p in doc["policies"]:
        assert keys <= set(p)
        assert 0.0 <= p["sloAttainment"] <= 1.0 and p["netValueVsOracle"] <= 1.0 + 1e-9
    assert doc["policies"][2]["netValueVsOracle"] == 1.0


def test_table_plot_and_aws_prices(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    png = tmp_path / "r.png"
    code, out, _ = run(
        capsys, "-f", str(ASSISTANT), "--rate-series", files["shape"], "--peak-rps", "40",
        "--prices", files["aws"], "--prices-gpu", "H100", "--policy", "paretoscale,oracle",
        "--reality-speed", "fp8=0.8", "--plot", str(png),
    )  # fmt: skip
    assert code == 0 and "POLICY" in out and "paretoscale" in out and "VS ORACLE" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_profiles(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, out, _ = run(
        capsys,
        "-f",
        str(ASSISTANT),
        "--calibrate-profiles",
        "--tokens",
        files["tokens"],
        "-o",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    fp8 = {v["name"]: v for v in doc["variants"]}["fp8"]
    assert fp8["declaredCapacity"] == pytest.approx(15.9048, abs=1e-3)
    assert fp8["perfmodelCapacity"] > 0 and len(fp8["profile"]) >= 2


@pytest.mark.parametrize(
    ("argv", "source", "words"),
    [
        (["--rate-series", "SHAPE"], "--peak-rps", "needs --peak-rps"),
        ([], "--rate-series/--trace", "give a load"),
        (
            ["--rate-series", "SHAPE", "--peak-rps", "9", "--policy", "hpa"],
            "--policy",
            "unknown policy 'hpa'",
        ),
        (
            ["--rate-series", "SHAPE", "--peak-rps", "9", "--policy", "static:nope+hpa"],
            "--policy",
            "no variant 'nope'",
        ),
        (
            ["--rate-series", "SHAPE", "--peak-rps", "9", "--reality-speed", "fp8"],
            "--reality-speed",
            "expected VARIANT=FACTOR",
        ),
        (
            ["--rate-series", "SHAPE", "--peak-rps", "9", "--reality-speed", "x=1"],
            "--reality-speed",
            "no variant 'x'",
        ),
        (
            ["--rate-series", "SHAPE", "--peak-rps", "9", "--prices", "AWS"],
            "AWS",
            "pass --prices-gpu",
        ),
        (["--rate-series", "SHAPE", "--peak-rps", "-1"], "--peak-rps", "must be > 0"),
        (["--trace", "/nonexistent.csv"], "/nonexistent.csv", "cannot read"),
        (
            ["--rate-series", "TOKENS", "--peak-rps", "9"],
            "TOKENS",
            "missing column(s)",
        ),
    ],
    ids=[
        "no-peak",
        "no-load",
        "unknown-policy",
        "unknown-variant",
        "bad-speed",
        "speed-variant",
        "aws-no-gpu",
        "negative-peak",
        "missing-file",
        "wrong-format",
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    argv: list[str],
    source: str,
    words: str,
) -> None:
    subst = {"SHAPE": files["shape"], "AWS": files["aws"], "TOKENS": files["tokens"]}
    argv = [subst.get(a, a) for a in argv]
    code, _, err = run(capsys, "-f", str(ASSISTANT), *argv)
    assert code == 2
    assert f"error: {subst.get(source, source)}:" in err and words in err


def test_malformed_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-f", str(ASSISTANT), "--seed", "x")
    assert code == 2 and "--seed" in err


def test_a_gpu_type_the_simulator_has_no_figures_for_exits_2(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    md = tmp_path / "md.yaml"
    md.write_text(ASSISTANT.read_text().replace("type: L40S", "type: acme-x1"))
    code, _, err = run(capsys, "-f", str(md), "--rate-series", files["shape"], "--peak-rps", "9")
    assert code == 2
    assert "replayed on the built-in GPU types" in err and "unknown GPU type 'acme-x1'" in err


def test_profiles_model_and_measured(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """`--profiles model` plans with no declared profile (every capacity the operator's
    prior), `measured` with the simulator's own; each runs, and the static policies pick
    their variant by the chosen profiles."""
    from paretoscale.api.manifest import parse_manifests
    from paretoscale.decide.evaluate import evaluate
    from paretoscale.replay.calibrate import without_profiles
    from paretoscale.replay.policies import cheapest_feasible_variant

    spec = without_profiles(parse_manifests(ASSISTANT.read_text(), "x")[0].spec)
    assert all(v.profile is None for v in spec.variants)
    assert {e.capacity_basis for e in evaluate(spec, 20.0, {}, {})} == {"model"}
    load = ["-f", str(ASSISTANT), "--rate-series", files["shape"], "--peak-rps", "40",
            "--tokens", files["tokens"], "--policy", "paretoscale,static:cheapest+hpa", "-o", "json"]  # fmt: skip
    chosen = {}
    for basis in ("declared", "measured", "model"):
        code, out, _ = run(capsys, *load, "--profiles", basis)
        assert code == 0
        names = [p["policy"] for p in json.loads(out)["policies"]]
        chosen[basis] = next(n.split(" ")[0] for n in names if n.startswith("static:"))
    # the static policies' capacity comes from the same variant_capacity: the prior's
    declared = parse_manifests(ASSISTANT.read_text(), "x")[0].spec
    assert chosen["declared"] == f"static:{cheapest_feasible_variant(declared, 40.0)}+hpa"
    assert chosen["model"] == f"static:{cheapest_feasible_variant(spec, 40.0)}+hpa"
    assert chosen["model"] != chosen["declared"]
