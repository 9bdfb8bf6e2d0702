"""What `paretoscale plan` shows: the frontier table and the decision, as rows and as JSON.

Pure formatting of a Decision; the plot (matplotlib, optional extra) is the only I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from paretoscale.decide.types import Decision, VariantEval
from paretoscale.economics.money import usd


def _round(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, nd)


def _if_feasible(e: VariantEval, x: float | None) -> float | None:
    """A money figure of a variant that cannot serve the load means nothing: None."""
    return x if e.feasible else None


def variant_json(e: VariantEval) -> dict[str, Any]:
    """One variant's row; its money fields are null when it cannot meet the SLO."""
    return {
        "name": e.name,
        "gpu": e.gpu_type,
        "quality": e.quality,
        "feasible": e.feasible,
        "onFrontier": e.on_frontier,
        "replicas": e.replicas,
        "capacityPerReplica": _round(e.capacity_rps),
        "capacityBasis": e.capacity_basis,
        "hourlyCost": _round(_if_feasible(e, e.hourly_cost_usd)),
        "costPer1kRequests": _round(_if_feasible(e, e.cost_per_1k_requests_usd)),
        "valuePerHour": _round(_if_feasible(e, e.value_per_hour_usd)),
        "netValuePerHour": _round(_if_feasible(e, e.net_value_per_hour_usd)),
        "paybackDays": _round(e.payback_days, 2) if e.payback_days is not None else None,
        "reason": e.reason,
    }


def plan_json(name: str, decision: Decision) -> dict[str, Any]:
    return {
        "modelDeployment": name,
        "requestsPerSecond": decision.requests_per_s,
        "decision": {
            "variant": decision.variant,
            "replicas": decision.replicas,
            "action": decision.action,
            "sloMet": decision.slo_met,
            "reasons": list(decision.reasons),
        },
        "variants": [variant_json(e) for e in decision.evaluations],
    }


# CAP/REPLICA's note on where a capacity comes from (none: a declared profile, or live).
_BASIS_MARK = {"model": " (model)", "estimate": " (est)"}


def plan_table(name: str, decision: Decision) -> str:
    """The frontier table: one row per variant, `*` on the choice; money columns read `-` for a
    variant that cannot meet the SLO (its figures at max replicas would mislead)."""
    head = (
        "VARIANT",
        "GPU",
        "QUALITY",
        "FEASIBLE",
        "FRONTIER",
        "REPLICAS",
        "CAP/REPLICA",
        "COST/H",
        "COST/1K",
        "VALUE/H",
        "NET/H",
    )
    rows = [head]
    for e in decision.evaluations:
        mark = "*" if e.name == decision.variant else " "
        rows.append(
            (
                f"{mark}{e.name}",
                e.gpu_type,
                f"{e.quality:.3f}",
                "yes" if e.feasible else "no",
                "yes" if e.on_frontier else "no",
                str(e.replicas),
                f"{e.capacity_rps:.2f}" + _BASIS_MARK.get(e.capacity_basis, ""),
                usd(_if_feasible(e, e.hourly_cost_usd)),
                usd(_if_feasible(e, e.cost_per_1k_requests_usd)),
                usd(_if_feasible(e, e.value_per_hour_usd)),
                usd(_if_feasible(e, e.net_value_per_hour_usd)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"{name} at {decision.requests_per_s:g} req/s"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    lines.append(f"Decision: {decision.variant} x {decision.replicas} ({decision.action})")
    lines += [f"  - {r}" for r in decision.reasons]
    for e in decision.evaluations:
        if e.reason:
            lines.append(f"  ! {e.name}: {e.reason}")
        if e.payback_days is not None:
            days = "never" if not math.isfinite(e.payback_days) else f"{e.payback_days:.1f} days"
            lines.append(f"  $ {e.name}: one-time cost pays back in {days}")
    return "\n".join(lines)


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels (y up)


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _clamp(b: Box, inside: Box) -> Box:
    dx = max(inside[0] - b[0], 0.0) - max(b[2] - inside[2], 0.0)
    dy = max(inside[1] - b[1], 0.0) - max(b[3] - inside[3], 0.0)
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


def place_labels(
    anchors: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[float, float]],
    inside: Box,
    gap: float = 4.0,
    marker: float = 5.0,
) -> list[Box]:
    """Where each label goes: a box beside its anchor point, inside `inside`, over no other
    label and no marker (a square of half-side `marker` around each other anchor, of half-side
    just under `gap` around its own).

    Labels are placed in order. Each tries the four corners beside its point (right-above,
    right-below, left-above, left-below), each moved inside the frame when it sticks out; a
    corner that needs no move wins over one that does. Only when all four overlap something
    does it try the same corners one, two, ... label heights further out. When no spot is free
    (a crowded plot), the spot with the least overlap wins.
    """
    placed: list[Box] = []
    for i, ((x, y), (w, h)) in enumerate(zip(anchors, sizes, strict=True)):
        own = gap - 0.5
        obstacles = [
            (ax - r, ay - r, ax + r, ay + r)
            for j, (ax, ay) in enumerate(anchors)
            for r in [own if j == i else marker]
        ]
        best: tuple[float, Box] | None = None
        for level in range(len(anchors) + 1):
            lift = level * (h + 1.0)
            free: list[tuple[bool, Box]] = []
            for right, above in ((True, True), (True, False), (False, True), (False, False)):
                x0 = x + gap if right else x - gap - w
                y0 = y + gap + lift if above else y - gap - h - lift
                box = (x0, y0, x0 + w, y0 + h)
                moved = _clamp(box, inside)
                clash = sum(_overlap(moved, b) for b in (*placed, *obstacles))
                if clash == 0.0:
                    free.append((moved != box, moved))
                elif best is None or clash < best[0]:
                    best = (clash, moved)
            if free:
                best = (0.0, min(free, key=lambda f: f[0])[1])
                break
        assert best is not None
        placed.append(best[1])
    return placed


def plot_frontier(name: str, decision: Decision, path: str) -> None:
    """Cost per 1,000 requests vs quality: frontier, dominated and infeasible points, the choice.

    Infeasible variants are drawn at their cost at max replicas (which still misses the SLO).
    Variants drawn at the same spot share one label (one name per line); labels never overprint
    each other or a point and stay inside the axes (place_labels); the legend sits below the
    axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dpi = 120
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=dpi)
    rate = decision.requests_per_s
    points = [
        (e, x)
        for e in decision.evaluations
        if (x := (e.cost_per_1k_requests_usd if rate > 0 else e.hourly_cost_usd)) is not None
        and math.isfinite(x)
    ]
    front = sorted((x, e.quality) for e, x in points if e.on_frontier)
    ax.plot(
        [x for x, _ in front],
        [q for _, q in front],
        "-o",
        color="tab:blue",
        label="Pareto frontier",
        zorder=2,
    )
    kinds = (
        ("dominated (feasible)", "s", "tab:gray", True),
        ("misses the SLO", "x", "tab:red", False),
    )
    for label, mark, color, feasible in kinds:
        group = [(x, e.quality) for e, x in points if e.feasible == feasible and not e.on_frontier]
        if group:
            ax.plot(
                [x for x, _ in group],
                [q for _, q in group],
                mark,
                color=color,
                linestyle="none",
                label=label,
                zorder=2,
            )
    chosen = next((p for p in points if p[0].name == decision.variant), None)
    if chosen is not None:
        ax.plot(
            [chosen[1]],
            [chosen[0].quality],
            "*",
            markersize=16,
            color="tab:orange",
            linestyle="none",
            label=f"choice: {decision.variant} x {decision.replicas}",
            zorder=3,
        )
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("USD per 1,000 requests" if rate > 0 else "USD per hour (no load)")
    ax.set_ylabel("quality (offline score)")
    ax.set_title(f"{name} at {rate:g} req/s")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.canvas.draw()  # fixes the layout: display coordinates are final from here on
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    # Points drawn at the same pixel share one label, their names one per line.
    spots: dict[tuple[int, int], list[str]] = {}
    where: dict[tuple[int, int], tuple[float, float]] = {}
    for e, x in points:
        px, py = (float(v) for v in ax.transData.transform((x, e.quality)))
        key = (round(px), round(py))
        spots.setdefault(key, []).append(e.name)
        where.setdefault(key, (x, e.quality))
    notes = [
        ax.annotate(
            "\n".join(names),
            where[key],
            xytext=(0, 0),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=8,
            annotation_clip=False,
        )
        for key, names in spots.items()
    ]
    anchors = [(float(a[0]), float(a[1])) for a in map(ax.transData.transform, where.values())]
    sizes = [(b.width, b.height) for b in (n.get_window_extent(renderer) for n in notes)]
    pad = 3.0
    boxes = place_labels(
        anchors,
        sizes,
        (frame.x0 + pad, frame.y0 + pad, frame.x1 - pad, frame.y1 - pad),
        marker=6.0 * dpi / 72,
    )
    to_points = 72 / dpi
    for note, (ax_, ay), box in zip(notes, anchors, boxes, strict=True):
        note.xyann = ((box[0] - ax_) * to_points, (box[1] - ay) * to_points)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
