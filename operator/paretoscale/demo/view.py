"""The demo's live view (pure): a block of lines redrawn in place on a terminal, or one plain
line per refresh when stdout is not a terminal (a log, CI).

Every figure comes from the samples so far (sample.py) and the summary's arithmetic
(summary.py), so what the view shows during the day is what the summary adds up at the end.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paretoscale.demo import summary
from paretoscale.demo.sample import Sample
from paretoscale.demo.schedule import clock

BAR_WIDTH = 24
DECISION_LINES = 3  # the decision and its reasons wrap onto at most this many lines


@dataclass(frozen=True)
class ViewContext:
    """What does not change during the day."""

    title: str
    day_wall_s: float
    compression: float
    slo_s: float
    percentile: float
    slo_metric: str  # e2e | ttft | itl
    variants: tuple[str, ...]  # spec order
    gpu_of: Mapping[str, str]  # variant -> GPU type


def _mmss(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _bar(done: float) -> str:
    n = round(max(0.0, min(1.0, done)) * BAR_WIDTH)
    return "[" + "#" * n + "-" * (BAR_WIDTH - n) + "]"


def _rps(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def replicas_text(s: Sample, variants: Sequence[str]) -> str:
    """`fp8 2/2` per variant that has pods, spec order; `none` when none has."""
    parts = [
        f"{v} {s.ready.get(v, 0)}/{s.replicas.get(v, 0)}"
        for v in variants
        if s.replicas.get(v, 0) or s.ready.get(v, 0)
    ]
    return ", ".join(parts) if parts else "none"


def serving_text(s: Sample) -> str:
    if s.active is None:
        return f"nothing yet ({s.phase})"
    if s.target and s.target != s.active:
        return f"{s.active} -> {s.target} ({s.phase})"
    return f"{s.active} ({s.phase})"


def prices_text(s: Sample, gpu_types: Sequence[str]) -> str:
    return ", ".join(f"{g} ${s.prices[g]:.2f}" for g in gpu_types if g in s.prices)


def slo_text(ctx: ViewContext, samples: Sequence[Sample]) -> str:
    within, served = summary.slo_counts(samples, ctx.slo_s, ctx.percentile)
    bound = f"p{ctx.percentile:g} {ctx.slo_metric} <= {ctx.slo_s:g} s"
    if served <= 0:
        return f"no requests served yet ({bound})"
    return f"{within / served:.2%} of {served:,.0f} requests within {bound}"


def _gpu_types(ctx: ViewContext) -> list[str]:
    return sorted({ctx.gpu_of[v] for v in ctx.variants if v in ctx.gpu_of})


def block(ctx: ViewContext, samples: Sequence[Sample], width: int = 100) -> list[str]:
    """The terminal view: a title and one line per figure; the decision wraps at `width`."""
    if not samples:
        return [ctx.title, "waiting for the first sample..."]
    s = samples[-1]
    cost = summary.gpu_cost_usd(samples, ctx.compression)
    return [
        ctx.title,
        f"day {clock(s.day_s)}  {_bar(s.wall_s / ctx.day_wall_s)}  "
        f"wall {_mmss(s.wall_s)} / {_mmss(ctx.day_wall_s)}",
        f"load      {_rps(s.offered_rps)} req/s offered, "
        f"{_rps(s.observed_rps)} req/s seen by the operator",
        f"serving   {serving_text(s)}",
        f"replicas  {replicas_text(s, ctx.variants)} (ready/existing)",
        f"cost      ${s.usd_per_hour:,.2f}/h now on {s.gpus} GPU(s) "
        f"({prices_text(s, _gpu_types(ctx))} per GPU-h); ${cost:,.2f} so far",
        f"SLO       {slo_text(ctx, samples)}",
        *textwrap.wrap(
            f"decision  {s.decision or '-'}{': ' + s.reason if s.reason else ''}",
            width=max(20, width),
            subsequent_indent=" " * 10,
            max_lines=DECISION_LINES,
            placeholder=" ...",
        ),
    ]


def line(ctx: ViewContext, samples: Sequence[Sample]) -> str:
    """One plain line for a log."""
    if not samples:
        return "waiting for the first sample"
    s = samples[-1]
    within, served = summary.slo_counts(samples, ctx.slo_s, ctx.percentile)
    slo = f"{within / served:.1%}" if served > 0 else "-"
    return (
        f"[day {clock(s.day_s)} | {_mmss(s.wall_s)}] load {_rps(s.offered_rps)} "
        f"(seen {_rps(s.observed_rps)}) req/s | {serving_text(s)} | "
        f"replicas {replicas_text(s, ctx.variants)} | ${s.usd_per_hour:,.2f}/h "
        f"({prices_text(s, _gpu_types(ctx))}) | SLO {slo} | "
        f"{s.decision or '-'}{': ' + s.reason if s.reason else ''}"
    )


def fit(lines: Sequence[str], width: int) -> list[str]:
    """Lines cut to the terminal width (so none wraps and the redraw stays in place)."""
    w = max(10, width)
    return [ln if len(ln) <= w else ln[: w - 3] + "..." for ln in lines]


def redraw(lines: Sequence[str], previous_height: int, width: int) -> str:
    """Text that replaces the `previous_height` lines drawn last with `lines`: cursor up,
    clear to the end of the screen, print."""
    up = f"\x1b[{previous_height}F" if previous_height > 0 else ""
    return up + "\x1b[J" + "\n".join(fit(lines, width)) + "\n"
