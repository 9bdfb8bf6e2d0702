"""The demo's figures: cost and GPU-hours in day time, SLO attainment read from vLLM's
histogram as the replay counts it, quality served, switches, and the lines that say so."""

from __future__ import annotations

import pytest

from paretoscale.demo.summary import (
    Figures,
    LoadTotals,
    comparison_table,
    count_within,
    day_histogram,
    delta,
    gpu_cost_usd,
    gpu_hours,
    interval_day_hours,
    live_figures,
    mean_quality,
    report_lines,
    slo_attainment,
    slo_counts,
    switches,
    verdict,
)

from .helpers import INF, hist, sample


def test_each_sample_holds_until_the_next_in_day_time() -> None:
    # x288: 12.5 wall s = 1 day-hour. 1 H100 for 1 h at $12.29, then 2 for 2 h at $6.88.
    samples = [sample(0), sample(12.5, fp8=2, h100_usd=6.88), sample(37.5, fp8=5)]
    assert interval_day_hours(samples, 288) == pytest.approx([1.0, 2.0, 0.0])
    assert gpu_hours(samples, 288) == pytest.approx(1 + 2 * 2)
    assert gpu_cost_usd(samples, 288) == pytest.approx(12.29 + 2 * 2 * 6.88)
    assert gpu_hours([], 288) == 0.0


def test_gpus_of_every_variant_cost_during_a_switch() -> None:
    samples = [sample(0, fp8=1, l40s=2), sample(12.5)]
    assert gpu_cost_usd(samples, 288) == pytest.approx(12.29 + 2 * 1.86)


@pytest.mark.parametrize(
    ("bound", "within", "edges"),
    [
        (8.0, 60 + (90 - 60) * 3 / 5, (5.0, 10.0)),  # inside the (5, 10] bucket, linear
        (5.0, 60.0, (5.0, 5.0)),  # on an edge: that bucket's count
        (1.0, 0.0, (0.0, 2.5)),  # the first bucket starts at 0
        (20.0, 90.0, (10.0, INF)),  # beyond the last finite edge: no credit above it
    ],
    ids=["between-edges", "on-an-edge", "first-bucket", "past-the-last-edge"],
)
def test_requests_within_a_bound_interpolate_inside_the_bucket(
    bound: float, within: float, edges: tuple[float, float]
) -> None:
    assert count_within(hist(60, 90, 100), bound) == pytest.approx((within, *edges))


def test_empty_histograms_count_nothing() -> None:
    assert count_within({}, 8.0) == (0.0, 0.0, INF)
    assert slo_counts([sample(0), sample(1)], 8.0, 95) == (0.0, 0.0)
    assert slo_attainment([sample(0)], 8.0, 95) is None


def test_deltas_never_go_negative() -> None:
    assert delta({5.0: 3.0, INF: 4.0}, {5.0: 5.0, INF: 2.0}) == {5.0: 0.0, INF: 2.0}


def test_attainment_counts_a_window_meeting_its_percentile_as_fully_within() -> None:
    samples = [
        sample(0, buckets=hist(0, 0, 0)),
        # 100 requests, 96 within 8 s: p95 met -> all 100 count
        sample(3, buckets=hist(96, 96, 100)),
        # 100 more: 52 <= 5 s, 40 in (5, 10] s of which 3/5 count as <= 8 s, so 76 within
        # 8 s: 0.76 / 0.95 = 80 count
        sample(6, buckets=hist(148, 188, 200)),
    ]
    within, served = slo_counts(samples, 8.0, 95)
    assert (within, served) == pytest.approx((100 + 80, 200))
    assert slo_attainment(samples, 8.0, 95) == pytest.approx(180 / 200)
    assert slo_attainment(samples, 8.0, 95, failed=25) == pytest.approx(180 / 225)


def test_what_came_before_the_first_sample_is_not_counted() -> None:
    warmed_up = [sample(0, buckets=hist(0, 10, 50)), sample(3, buckets=hist(50, 60, 100))]
    assert slo_counts(warmed_up, 8.0, 95) == pytest.approx((50, 50))  # the day's 50, all <= 5 s


def test_the_days_histogram_leaves_out_what_came_before() -> None:
    samples = [sample(0, buckets=hist(0, 10, 50)), sample(3), sample(6, buckets=hist(50, 60, 100))]
    assert day_histogram(samples) == {2.5: 0.0, 5.0: 50.0, 10.0: 50.0, INF: 50.0}
    assert day_histogram(samples[:2]) == {}


def test_a_sample_without_histogram_passes_its_requests_to_the_next() -> None:
    samples = [sample(0, buckets=hist(0, 0, 0)), sample(3), sample(6, buckets=hist(100, 100, 100))]
    assert slo_counts(samples, 8.0, 95) == pytest.approx((100, 100))


def test_switches_count_moves_of_the_service() -> None:
    actives = [None, "fp8", "fp8", "w4a16-l40s", "w4a16-l40s", "fp8"]
    assert switches([sample(i, active=a) for i, a in enumerate(actives)]) == 2


def test_quality_is_request_weighted() -> None:
    q = {"fp8": 0.810, "w4a16-l40s": 0.781}
    assert mean_quality({"fp8": 300, "w4a16-l40s": 100}, q) == pytest.approx(0.80275)
    assert mean_quality({"gone": 5}, q) is None and mean_quality({}, q) is None


def test_live_figures_put_it_together() -> None:
    samples = [sample(0, buckets=hist(0, 0, 0)), sample(12.5, buckets=hist(100, 100, 100))]
    f = live_figures("live", samples, 288, 8.0, 95, 0, {"fp8": 100}, {"fp8": 0.81})
    assert f == Figures("live", 12.29, 1.0, 1.0, 0.81, 0)


LIVE = Figures("paretoscale (this run, live)", 182.4, 19.3, 0.996, 0.8096, 3)
BASE = Figures("bf16 all day, HPA (replay)", 341.0, 37.0, 1.0, 0.812, 0)


def test_the_verdict_says_how_much_less_at_what_quality_and_slo() -> None:
    assert verdict(LIVE, BASE) == (
        "paretoscale spent 46.5% less than the best-quality variant all day ($158.60 saved "
        "per day), serving 0.24 quality points less, at 99.60% SLO attainment vs 100.00%."
    )
    worse = Figures("live", 400.0, 40.0, None, None, 0)
    assert verdict(worse, BASE).startswith("paretoscale spent 17.3% more than")
    assert "$59.00 extra per day)." in verdict(worse, BASE)


def test_the_table_aligns_one_row_per_way_of_serving() -> None:
    lines = comparison_table([LIVE, BASE])
    assert lines[0].split() == ["GPU", "COST", "GPU-HOURS", "SLO", "ATTAIN", "QUALITY", "SWITCHES"]
    assert lines[1].split()[-5:] == ["$182.40", "19.3", "99.60%", "0.810", "3"]
    assert lines[2].split()[-5:] == ["$341.00", "37.0", "100.00%", "0.812", "0"]
    assert len({len(ln) for ln in lines}) == 1  # aligned


def test_report_lines_name_the_baseline_the_load_and_the_slo_edges() -> None:
    load = LoadTotals(1000, 990, 10, {"no_ready_endpoint": 10}, 1.4, 6.9)
    text = "\n".join(
        report_lines(
            "a day",
            LIVE,
            BASE,
            "bf16",
            {"fp8": 700, "w4a16-l40s": 290},
            load,
            hist(900, 985, 990),
            8.0,
            288,
        )
    )
    assert text.startswith("Summary: a day\n")
    assert "Requests served by variant: fp8 71%, w4a16-l40s 29%." in text
    assert "(warm-up included): 1,000 sent, 990 served, 10 failed (no_ready_endpoint 10)" in text
    assert "between its 5 s and 10 s buckets" in text
    assert "--policy static:best+hpa" in text and "bf16 (the highest quality)" in text
    assert "288x longer in day time" in text
