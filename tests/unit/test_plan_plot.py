"""`paretoscale plan --plot`: labels beside their points, never over each other or a point,
inside the axes; a legend for the frontier, dominated and infeasible points."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretoscale.decide.types import Decision, VariantEval
from paretoscale.plan import Box, place_labels

FRAME: Box = (0.0, 0.0, 600.0, 400.0)


def overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def inside(b: Box, frame: Box) -> bool:
    return frame[0] <= b[0] and frame[1] <= b[1] and b[2] <= frame[2] and b[3] <= frame[3]


def test_labels_of_points_at_one_spot_in_a_corner_stack_inside() -> None:
    anchors = [(598.0, 398.0)] * 5 + [(2.0, 2.0)] * 3
    sizes = [(120.0, 12.0)] * 8
    boxes = place_labels(anchors, sizes, FRAME)
    assert all(inside(b, FRAME) for b in boxes)
    assert all(overlap(a, b) == 0 for a, b in itertools.combinations(boxes, 2))
    for (x, y), b in zip(anchors, boxes, strict=True):  # and none covers any point
        assert all(overlap(b, (px - 5, py - 5, px + 5, py + 5)) == 0 for px, py in anchors)
        assert abs((b[1] + b[3]) / 2 - y) < 80 and abs((b[0] + b[2]) / 2 - x) < 200


points = st.lists(
    st.tuples(st.sampled_from([20.0, 300.0, 590.0]), st.sampled_from([10.0, 200.0, 395.0])),
    min_size=1,
    max_size=9,
)


@settings(max_examples=60, deadline=None)
@given(points, st.integers(20, 160))
def test_labels_never_overlap_when_there_is_room(
    anchors: list[tuple[float, float]], width: int
) -> None:
    sizes = [(float(width), 11.0)] * len(anchors)
    boxes = place_labels(anchors, sizes, FRAME)
    assert all(inside(b, FRAME) for b in boxes)
    assert all(overlap(a, b) == 0 for a, b in itertools.combinations(boxes, 2))


def _eval(name: str, cost: float, quality: float, feasible: bool, front: bool) -> VariantEval:
    return VariantEval(
        name=name, gpu_type="H100", quality=quality, feasible=feasible,
        reason="" if feasible else "misses the SLO", capacity_rps=1.0, capacity_basis="profile",
        replicas=1, hourly_cost_usd=cost * 43.2, cost_per_1k_requests_usd=cost,
        value_per_hour_usd=100.0, net_value_per_hour_usd=100.0 - cost * 43.2, on_frontier=front,
    )  # fmt: skip


def test_plot_labels_inside_the_axes_with_a_legend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five variants at the frontier's top-right corner, two at the same cheap point: each spot
    has one label naming its variants, labels are pairwise apart and inside the axes, and the
    legend names every kind of point."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from paretoscale import plan

    evals = [_eval(f"a-rather-long-variant-name-{i}", 0.9, 0.9, True, True) for i in range(5)]
    evals += [_eval("cheap", 0.1, 0.5, True, True), _eval("cheap-twin", 0.1, 0.5, True, True)]
    evals += [_eval("dominated", 0.5, 0.6, True, False), _eval("slow", 0.05, 0.9, False, False)]
    decision = Decision(
        variant="cheap", replicas=2, action="switch", reasons=(), best="cheap",
        evaluations=tuple(evals), requests_per_s=12.0, rate_basis="priors", slo_met=True,
    )  # fmt: skip
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect it
    path = tmp_path / "f.png"
    plan.plot_frontier("crowded", decision, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    texts = list(ax.texts)  # one label per spot, its variants' names one per line
    assert sorted(t.get_text() for t in texts) == [
        "\n".join(f"a-rather-long-variant-name-{i}" for i in range(5)),
        "cheap\ncheap-twin",
        "dominated",
        "slow",
    ]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for b in boxes:
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "Pareto frontier",
        "dominated (feasible)",
        "misses the SLO",
        "choice: cheap x 2",
    ]
