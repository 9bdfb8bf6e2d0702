"""The live view: a block redrawn in place on a terminal, a plain line otherwise."""

from __future__ import annotations

from paretoscale.demo.view import ViewContext, block, fit, line, redraw, replicas_text

from .helpers import hist, sample

CTX = ViewContext(
    title="paretoscale demo: a day",
    day_wall_s=300.0,
    compression=288.0,
    slo_s=8.0,
    percentile=95.0,
    slo_metric="e2e",
    variants=("bf16", "fp8", "w4a16-l40s"),
    gpu_of={"bf16": "H100", "fp8": "H100", "w4a16-l40s": "L40S"},
)


def day_so_far() -> list:
    return [
        sample(0, buckets=hist(0, 0, 0)),
        sample(150, fp8=2, h100_usd=6.88, buckets=hist(1200, 1234, 1234), observed=17.94),
    ]


def test_the_block_shows_every_figure() -> None:
    lines = block(CTX, day_so_far(), width=200)
    assert lines[0] == "paretoscale demo: a day"
    assert lines[1] == "day 12:00  [############------------]  wall 2:30 / 5:00"
    assert lines[2] == "load      10.0 req/s offered, 17.9 req/s seen by the operator"
    assert lines[3] == "serving   fp8 (Stable)"
    assert lines[4] == "replicas  fp8 2/2 (ready/existing)"
    # 1 H100 at $12.29 for 150 x 288 s = 12 day-hours
    assert lines[5] == (
        "cost      $13.76/h now on 2 GPU(s) (H100 $6.88, L40S $1.86 per GPU-h); $147.48 so far"
    )
    assert lines[6] == "SLO       100.00% of 1,234 requests within p95 e2e <= 8 s"
    assert lines[7].startswith("decision  fp8 x 1 (stay): staying on fp8: fp8 has run 10s")


def test_a_long_decision_wraps_onto_a_few_lines() -> None:
    lines = block(CTX, day_so_far(), width=40)
    decision = lines[7:]
    assert 2 <= len(decision) <= 3
    assert all(ln.startswith(" " * 10) for ln in decision[1:])


def test_before_any_sample_and_before_any_request() -> None:
    assert block(CTX, [])[1] == "waiting for the first sample..."
    first = block(CTX, [sample(0, active=None, phase="Preparing")], width=200)
    assert first[3] == "serving   nothing yet (Preparing)"
    assert first[6] == "SLO       no requests served yet (p95 e2e <= 8 s)"


def test_a_rollout_in_progress_shows_both_variants() -> None:
    s = sample(10, fp8=1, l40s=1, active="fp8", phase="Verifying", target="w4a16-l40s")
    assert block(CTX, [s], width=200)[3] == "serving   fp8 -> w4a16-l40s (Verifying)"
    assert replicas_text(s, CTX.variants) == "fp8 1/1, w4a16-l40s 1/1"
    assert replicas_text(sample(0, fp8=0), CTX.variants) == "none"


def test_the_plain_line_for_logs() -> None:
    text = line(CTX, day_so_far())
    assert text.startswith("[day 12:00 | 2:30] load 10.0 (seen 17.9) req/s | fp8 (Stable) | ")
    assert "replicas fp8 2/2 | $13.76/h (H100 $6.88, L40S $1.86) | SLO 100.0% | fp8 x 1" in text
    assert "\n" not in text and "\x1b" not in text
    assert line(CTX, []) == "waiting for the first sample"


def test_redraw_moves_up_over_the_last_block_and_clears() -> None:
    assert redraw(["a", "b"], 0, 80) == "\x1b[Ja\nb\n"
    assert redraw(["a"], 3, 80) == "\x1b[3F\x1b[Ja\n"


def test_lines_never_wrap() -> None:
    assert fit(["x" * 30, "short"], 20) == ["x" * 17 + "...", "short"]
