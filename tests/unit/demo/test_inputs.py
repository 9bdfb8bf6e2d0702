"""What the demo reads before it starts: the data it needs, the prices of the 2025-06-05 cut,
the load plan with its warm-up, and what `hack/cluster up` prints."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from paretoscale.demo import DemoError
from paretoscale.demo.cluster import parse_env
from paretoscale.demo.inputs import data_files, load_plan, prepare, price_plan
from paretoscale.demo.runner import build_parser

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data"


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["--data-dir", str(DATA), *argv])


def test_missing_data_is_named_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"data/ of the repository, or --data-dir") as e:
        data_files(tmp_path)
    assert "servegen_m-large_rate.csv" in str(e.value) and "aws_p5.48xlarge" in str(e.value)


def test_the_h100_price_cut_comes_from_the_aws_series() -> None:
    inputs = prepare(args())
    plan = inputs.prices
    assert (plan.before, plan.after) == pytest.approx((98.32 / 8, 55.04 / 8))  # 12.29 -> 6.88
    assert plan.base == {"L40S": 1.86}  # the example's other GPU type at its spec price
    flat = price_plan(DATA / "prices" / "aws_p5.48xlarge_us-east-1_daily.csv", inputs.spec, False)
    assert flat.before == flat.after == pytest.approx(6.88)


def test_prepare_fits_the_example_to_the_day() -> None:
    inputs = prepare(args("--minutes", "5", "--peak-rps", "25", "--day", "6"))
    assert inputs.day.peak_rps == pytest.approx(25) and inputs.day.compression == 288
    assert inputs.spec.rollout.min_dwell_seconds == 60
    assert inputs.example_spec.rollout.min_dwell_seconds == 1800  # the baseline's, as shipped
    assert inputs.manifest["metadata"]["namespace"] == "demo"
    assert inputs.title == (
        "ServeGen m-large day 6 at a 25 req/s peak, 1 day in 5 min (x288), "
        "H100 $12.29 -> $6.88/GPU-h at 12:00"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [(("--minutes", "0"), "--minutes must be > 0"), (("--day", "14"), "day 14 is not in")],
    ids=["no-minutes", "no-such-day"],
)
def test_bad_flags_fail_before_anything_starts(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(DemoError, match=message):
        prepare(args(*argv))


def test_the_plan_warms_up_at_the_first_rate_then_plays_the_day() -> None:
    inputs = prepare(args("--minutes", "1"))
    plan = load_plan(inputs, seed=1, warmup_s=20)
    warm = [r for r in plan if r.at_s < 20]
    day = [r for r in plan if r.at_s >= 20]
    assert len(warm) == pytest.approx(inputs.day.rates_rps[0] * 20, rel=0.3)
    assert len(day) == pytest.approx(inputs.day.expected_requests(), rel=0.1)
    assert max(r.at_s for r in plan) < 20 + inputs.day.day_wall_s
    assert all(r.prompt_tokens >= 1 and r.output_tokens >= 1 for r in plan)


def test_the_cluster_env_is_read_from_the_export_lines() -> None:
    out = "export KUBECONFIG=/s/kubeconfig\nexport PROMETHEUS_URL=http://127.0.0.1:9\nnoise\n"
    assert parse_env(out) == {"KUBECONFIG": "/s/kubeconfig", "PROMETHEUS_URL": "http://127.0.0.1:9"}


def test_profiles_model_applies_the_example_without_anything_measured() -> None:
    """`--profiles model`: no variant carries a profile or parameters; the operator plans each
    on the performance model's prior; the baseline stays the example as shipped."""
    from paretoscale.decide.evaluate import estimate_problems, evaluate

    inputs = prepare(args("--profiles", "model"))
    for v in inputs.manifest["spec"]["variants"]:
        assert not {"profile", "profileTokens", "parameters"} & set(v), v["name"]
    assert estimate_problems(inputs.spec) == []
    assert {e.capacity_basis for e in evaluate(inputs.spec, 12.0, {}, {})} == {"model"}
    assert all(v.profile for v in inputs.example_spec.variants)
    assert all(v.profile for v in prepare(args()).spec.variants)  # the default: declared
