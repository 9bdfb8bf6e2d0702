"""`paretoscale profile`: points and the measured token mix from vllm bench serve results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.cli import main
from paretoscale.profile import ProfileRow, build_profile, measured_mix

DATA = Path(__file__).parent / "data" / "vllm_bench"
FILES = sorted(str(p) for p in DATA.glob("rate*.json"))


def test_points_and_mix_from_the_result_files() -> None:
    rows = build_profile({f: Path(f).read_text() for f in FILES}, "e2e", 95)
    assert [(r.requests_per_second, r.latency_seconds) for r in rows] == [(2.0, 3.35), (8.0, 6.02)]
    mix = measured_mix(rows)
    assert mix is not None and mix.files == 2
    # sum(total_input_tokens) / sum(completed) over both files
    assert mix.prompt_tokens == pytest.approx((4_158_000 + 16_700_000) / 3000)
    assert mix.output_tokens == pytest.approx((126_600 + 505_000) / 3000)
    # the largest gap: the 2 req/s file's 6,930 prompt tokens
    assert mix.spread == pytest.approx(abs(6930.0 / mix.prompt_tokens - 1.0))


def test_no_tokens_in_the_results_means_no_mix() -> None:
    rows = [ProfileRow(2.0, 3.1, 100, 0), ProfileRow(8.0, 5.5, None, None, 1000, 100)]
    assert measured_mix(rows) is None


def test_cli_prints_profile_tokens_that_parse_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["profile", *FILES, "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["profileTokens"] == {"promptTokens": 6952.7, "outputTokens": 210.5}
    assert main(["profile", *FILES]) == 0
    out = capsys.readouterr().out
    assert "profileTokens: {promptTokens: 6952.7, outputTokens: 210.5}" in out
    # the printed YAML pastes under a variant
    example = (Path(__file__).parents[2] / "examples" / "assistant-llama-8b.yaml").read_text()
    block = "\n".join("    " + line for line in out.splitlines() if not line.startswith("#"))
    start = example.index("    profile:                    # per replica")
    end = example.index("  - name: fp8")
    spec = parse_manifests(example[:start] + block + "\n" + example[end:], "x")[0].spec
    bf16 = spec.variants[0]
    assert bf16.profile_tokens is not None
    assert bf16.profile_tokens.prompt_tokens == pytest.approx(6952.7)
    assert [p.requests_per_second for p in bf16.profile or []] == [2.0, 8.0]


def test_cli_warns_when_the_mix_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"request_rate": 2, "completed": 10, "p95_e2el_ms": 3000.0}))
    assert main(["profile", str(f), "-o", "json"]) == 0
    out, err = capsys.readouterr()
    assert "profileTokens" not in json.loads(out)
    assert "token mix is unknown" in err


EXAMPLE = Path(__file__).parents[2] / "examples" / "assistant-llama-8b.yaml"


def test_estimate_prints_a_profile_the_operator_plans_the_same_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from paretoscale.api.accelerators import BUILTIN
    from paretoscale.decide.evaluate import variant_capacity
    from paretoscale.economics.work import TokenMix

    argv = ["profile", "--estimate", "-f", str(EXAMPLE), "--variant", "fp8", "--tokens", "2000/300"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "# basis: model, uncertainty ±21%" in out
    # pasted in place of fp8's profile, it parses and gives the prior's capacity at its mix
    example = EXAMPLE.read_text()
    block = "\n".join("    " + line for line in out.splitlines() if not line.startswith("#"))
    start = example.index("  - name: fp8")
    start = example.index("    profile:", start)
    end = example.index("  - name: w4a16-l40s")
    spec = parse_manifests(example[:start] + block + "\n" + example[end:], "x")[0].spec
    fp8 = spec.variants[1]
    assert fp8.profile_tokens is not None and fp8.profile_tokens.prompt_tokens == 2000
    mix = TokenMix(2000, 300)
    slo = spec.slo
    pasted, basis = variant_capacity(fp8, slo.seconds, None, None, slo.latency, mix)
    bare = fp8.model_copy(update={"profile": None, "profile_tokens": None})
    prior, prior_basis = variant_capacity(
        bare, slo.seconds, None, None, slo.latency, mix, BUILTIN, slo.percentile
    )
    assert (basis, prior_basis) == ("profile", "model")
    assert pasted == pytest.approx(prior, rel=1e-3)


def test_estimate_json_lists_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--estimate", "-f", str(EXAMPLE), "-o", "json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["variant"] for d in docs] == ["bf16", "fp8", "w4a16-l40s", "bf16-eagle3"]
    eagle = docs[3]
    assert eagle["basis"] == "model" and eagle["uncertainty"] == pytest.approx(0.23)
    rates = [p["requestsPerSecond"] for p in eagle["profile"]]
    assert rates == sorted(rates) and eagle["capacityAtSlo"] in rates


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--estimate"], "-f: --estimate needs -f md.yaml"),
        (
            ["--estimate", "-f", str(EXAMPLE), "--variant", "nope"],
            "no variant 'nope'; variants: bf16",
        ),
        (["--estimate", "-f", str(EXAMPLE), "--tokens", "10/x"], "--tokens: expected IN/OUT"),
        (["--estimate", "-f", str(EXAMPLE), "r.json"], "drop RESULT.json"),
        (["--variant", "bf16", "r.json"], "--variant: goes with --estimate -f md.yaml"),
        ([], "give vllm bench serve RESULT.json files, or --estimate -f md.yaml"),
    ],
)
def test_estimate_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(["profile", *argv]) == 2
    assert words in capsys.readouterr().err


def test_estimate_says_what_to_change_where_the_model_cannot_apply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = EXAMPLE.read_text().replace(
        "vllm: {model: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8}",
        "vllm: {model: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8, maxModelLen: 10000000}",
    )
    md = tmp_path / "md.yaml"
    md.write_text(text)
    assert main(["profile", "--estimate", "-f", str(md), "--variant", "fp8"]) == 2
    err = capsys.readouterr().err
    assert "variant fp8: no performance-model estimate: the simulator cannot run" in err
    assert "max seq len (10000000)" in err
