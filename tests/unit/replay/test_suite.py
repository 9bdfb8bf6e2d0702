"""The scenario suite: every file in bench/scenarios (and bench/heldout) parses and names files
of the repo; the pieces a scenario adds to a replay (a window of a rate series, a token
switch, day-for-day AWS prices, inventory events) do what the files say."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.errors import SpecError
from paretoscale.replay.demand import TokenPool, demand_from_rates
from paretoscale.replay.run import build_scenario
from paretoscale.replay.suite import (
    aws_daily_prices,
    build,
    load_scenario,
    missing_files,
    parse_scenario,
    scenario_files,
    switch_tokens,
    window,
)
from paretoscale.replay.traces import RateSeries

ROOT = Path(__file__).parents[3]
FILES = scenario_files(ROOT / "bench" / "scenarios")
HELD_OUT = scenario_files(ROOT / "bench" / "heldout")


def test_the_suite_has_the_scenarios_of_the_issue() -> None:
    names = {f.stem for f in FILES}
    assert {"diurnal-14d", "h100-price-cut", "prompt-shift", "gpu-shortage", "burst-10x",
            "70b-morning-ramp"} <= names  # fmt: skip


@pytest.mark.parametrize("path", FILES + HELD_OUT, ids=[f.stem for f in FILES + HELD_OUT])
def test_scenario_file_parses_and_names_repo_files(path: Path) -> None:
    sf = load_scenario(path)
    assert sf.name == path.stem and sf.description
    assert missing_files(sf, ROOT) == []
    assert all(not Path(p).is_absolute() and ".." not in Path(p).parts for p in sf.paths())
    md = ROOT / sf.model_deployment
    assert parse_manifests(md.read_text(), str(md))
    assert 0 < sf.quick_hours <= 2.0
    assert "oracle" in sf.policies and any(p.startswith("static:") for p in sf.policies)


def test_bad_scenarios_say_what_to_change() -> None:
    with pytest.raises(SpecError, match="rateSeries"):
        parse_scenario("modelDeployment: x.yaml\ntokens: {source: t.csv}\n", "s.yaml")
    with pytest.raises(SpecError, match="peakRps"):
        parse_scenario(
            "modelDeployment: x.yaml\ntraffic: {rateSeries: r.csv}\ntokens: {source: t}\n", "s"
        )
    with pytest.raises(SpecError, match="switchAtHour"):
        parse_scenario(
            "modelDeployment: x\ntraffic: {rateSeries: r, peakRps: 1}\n"
            "tokens: {source: t, switchTo: u}\n",
            "s",
        )
    with pytest.raises(SpecError, match="unknown key"):
        parse_scenario("modelDeployment: x\nprice: {}\n", "s")


def test_window_cuts_and_shifts() -> None:
    s = RateSeries(np.arange(6, dtype=np.float64) * 600.0, np.full(6, 600.0), np.arange(6.0))
    w = window(s, 1200.0, 1800.0)
    assert w.start_s.tolist() == [0.0, 600.0, 1200.0] and w.rates_rps.tolist() == [2.0, 3.0, 4.0]


def test_aws_prices_day_for_day() -> None:
    prices = aws_daily_prices(
        str(ROOT / "data/prices/aws_p5.48xlarge_us-east-1_daily.csv"), "H100", 8.0,
        date(2025, 6, 3), 0.0,
    )  # fmt: skip
    assert prices.at("H100", 86400.0 * 1.5, 0.0) == pytest.approx(98.32 / 8)  # June 4
    assert prices.at("H100", 86400.0 * 2.0, 0.0) == pytest.approx(55.04 / 8)  # June 5: the cut
    later = aws_daily_prices(
        str(ROOT / "data/prices/aws_p5.48xlarge_us-east-1_daily.csv"), "H100", 8.0,
        date(2025, 6, 3), 86400.0 * 2,
    )  # fmt: skip
    assert later.at("H100", 0.0, 0.0) == pytest.approx(55.04 / 8)


def test_token_switch_keeps_arrivals_and_moves_to_the_new_rows(
    assistant: ModelDeploymentSpec,
) -> None:
    shape = RateSeries(np.arange(3, dtype=np.float64) * 600.0, np.full(3, 600.0), np.full(3, 10.0))
    conv = TokenPool(np.array([1000.0, 1300.0]), np.array([200.0, 220.0]))
    code = TokenPool(np.array([2000.0, 2100.0]), np.array([25.0, 30.0]))
    a = build_scenario(assistant, demand_from_rates(shape, 30.0, 1800.0, conv, 1), None, {}, 1)
    b = build_scenario(assistant, demand_from_rates(shape, 30.0, 1800.0, code, 1), None, {}, 1)
    assert a.demand.arrivals.tolist() == b.demand.arrivals.tolist()
    s = switch_tokens(a, b, 20)
    rows_a = len(a.tables[0].scales)
    assert len(s.tables[0].max_rps) == rows_a + len(b.tables[0].scales)
    assert s.scale_idx[:20] == a.scale_idx[:20]
    assert all(i >= rows_a for i in s.scale_idx[20:])
    assert s.demand.output_mean[25] < 40 < s.demand.output_mean[5]
    k = s.scale_idx[30]
    assert s.tables[1].max_rps[k] == b.tables[1].max_rps[k - rows_a]


def test_quick_build_is_short_and_places_the_events() -> None:
    sf = load_scenario(ROOT / "bench/scenarios/gpu-shortage.yaml")
    built = build(sf, ROOT, quick=True, cache={})
    sc = built.scenario
    assert sc.ticks == round(sf.quick_hours * 3600 / 30)
    at = round((sf.inventory[0][0] - sf.quick_start_hour) * 3600 / 30)
    h100 = sc.available_at("H100")
    assert h100[at - 1] == 16 and h100[at] == sf.inventory[0][2]
