"""What a replay reports: one row per policy, as a table, as JSON, and as a plot.

Pure formatting of PolicyRuns; the plot (matplotlib, an optional extra) is the only I/O.
Figures per policy over the whole replay:
- GPU cost [USD] = sum over ticks of replicas x GPUs x price x tick hours (loading included);
- value [USD] = sum of in-SLO requests x USD per request of the serving variant's quality;
- net value = value - GPU cost; vs oracle = net / the oracle's net;
- SLO attainment = in-SLO requests / all requests that arrived;
- switches = moves of the Service from one variant to another (paretoscale), or changes of
  the variant that got the most traffic (others); per day = switches / replay days;
- GPU-hours = sum of GPUs that exist x tick hours.
Against a fixed choice (what `paretoscale plan` gives once), when the run has `static:*+hpa`
policies and the oracle:
- best static net value = the highest net value of the run's `static:*+hpa` policies;
- headroom captured = (net - best static net) / (oracle net - best static net): 1 = all
  of the oracle's gain over the fixed choice, 0 = none, negative = worse than the fixed
  choice; None when the run lacks a static policy or the oracle, or when the oracle is not
  above the best static policy by more than HEADROOM_EPS of its net (nothing to capture);
- GPU cost vs best static = GPU cost / the best static policy's GPU cost (1.12 = 12% more);
- p95 latency vs SLO: the run holds no per-request latencies, so it is derived from each
  tick's latency at the SLO percentile (`run.tick_latency_s`: the perf table's at the
  tick's load, or the latency at the limit plus the mean queue wait), as a fraction of the
  SLO; the figure is the arrivals-weighted quantile of those per-tick values at the SLO
  percentile (p95 for a p95 SLO): in the ticks that carried that share of the requests, the
  tick's own p95 was at most this. > 1: the policy ran past the SLO in more than 5% of its
  traffic. None without that per-tick record.
Over several seeds of one scenario (`average`): every figure is the mean of the seeds'
figures (headroom captured: the mean of each seed's ratio, so every seed weighs the same);
`headroom_by_seed` keeps each one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paretoscale.replay.run import PolicyRun


@dataclass(frozen=True)
class Summary:
    """One policy's totals (see the module docstring)."""

    policy: str
    gpu_cost_usd: float
    value_usd: float
    net_value_usd: float
    net_value_vs_oracle: float | None
    slo_attainment: float
    switches: int
    switches_per_day: float
    gpu_hours: float
    notes: tuple[str, ...]
    best_static_net_value_usd: float | None = None
    headroom_captured: float | None = None
    gpu_cost_vs_best_static: float | None = None
    p95_latency_vs_slo: float | None = None
    headroom_by_seed: tuple[float | None, ...] = ()


HEADROOM_EPS = 1e-4


def is_static(policy: str) -> bool:
    """A `static:<variant>+hpa` policy (labels such as " (cheapest)" may follow)."""
    return policy.startswith("static:") and "+hpa" in policy


def headroom_captured(net: float, best_static_net: float, oracle_net: float) -> float | None:
    """(net - best static) / (oracle - best static); None when the oracle is not above the
    best static policy by more than HEADROOM_EPS of its net (module docstring)."""
    gap = oracle_net - best_static_net
    if not math.isfinite(gap) or gap <= HEADROOM_EPS * max(abs(oracle_net), 1.0):
        return None
    return (net - best_static_net) / gap


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The smallest value whose cumulative weight reaches q of the total (NaN values and
    zero weights skipped; inf kept, it sorts last); None when nothing is left."""
    keep = ~np.isnan(values) & (weights > 0)
    if not keep.any():
        return None
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cum = np.cumsum(w)
    i = int(np.searchsorted(cum, q * cum[-1] - 1e-12, side="left"))
    return float(v[min(i, len(v) - 1)])


def summarize(
    runs: Sequence[PolicyRun],
    tick_s: float,
    oracle: PolicyRun | None = None,
    percentile: float = 95.0,
) -> list[Summary]:
    """Totals per run; vs-oracle figures against `oracle` (default: the run named "oracle");
    vs-static figures against the best `static:*+hpa` run; latency at the SLO `percentile`."""
    oracle = oracle or next((r for r in runs if r.name == "oracle"), None)
    oracle_net = float(oracle.value_usd.sum() - oracle.cost_usd.sum()) if oracle else None
    days = len(runs[0].arrivals) * tick_s / 86400.0 if runs else 0.0
    statics = [r for r in runs if is_static(r.name)]
    best = max(statics, key=lambda r: float(r.value_usd.sum() - r.cost_usd.sum()), default=None)
    best_net = float(best.value_usd.sum() - best.cost_usd.sum()) if best else None
    best_cost = float(best.cost_usd.sum()) if best else None
    out = []
    for r in runs:
        cost, value = float(r.cost_usd.sum()), float(r.value_usd.sum())
        arrived = float(r.arrivals.sum())
        vs = None
        if oracle_net is not None and oracle_net != 0:
            vs = (value - cost) / oracle_net
        headroom = None
        if best_net is not None and oracle_net is not None:
            headroom = headroom_captured(value - cost, best_net, oracle_net)
        latency = None
        if r.latency_vs_slo is not None:
            latency = weighted_quantile(r.latency_vs_slo, r.arrivals, percentile / 100.0)
        out.append(
            Summary(
                policy=r.name,
                gpu_cost_usd=cost,
                value_usd=value,
                net_value_usd=value - cost,
                net_value_vs_oracle=vs,
                slo_attainment=float(r.in_slo.sum()) / arrived if arrived > 0 else 1.0,
                switches=r.switches,
                switches_per_day=r.switches / days if days > 0 else 0.0,
                gpu_hours=float(r.gpus.sum()) * tick_s / 3600.0,
                notes=r.notes,
                best_static_net_value_usd=best_net,
                headroom_captured=headroom,
                gpu_cost_vs_best_static=cost / best_cost if best_cost else None,
                p95_latency_vs_slo=latency,
            )
        )
    return out


def _mean(xs: Sequence[float | None]) -> float | None:
    known = [x for x in xs if x is not None]
    return sum(known) / len(known) if known else None


def average(per_seed: Sequence[Sequence[Summary]]) -> list[Summary]:
    """One Summary per policy, the mean over seeds of one scenario (`per_seed[i]`: seed i's
    summaries, the same policies in the same order); see the module docstring."""
    if not per_seed:
        return []
    out = []
    for row in zip(*per_seed, strict=True):
        first = row[0]
        if any(s.policy != first.policy for s in row):
            raise ValueError(f"seeds disagree on the policies: {[s.policy for s in row]}")
        n = len(row)
        out.append(
            Summary(
                policy=first.policy,
                gpu_cost_usd=sum(s.gpu_cost_usd for s in row) / n,
                value_usd=sum(s.value_usd for s in row) / n,
                net_value_usd=sum(s.net_value_usd for s in row) / n,
                net_value_vs_oracle=_mean([s.net_value_vs_oracle for s in row]),
                slo_attainment=sum(s.slo_attainment for s in row) / n,
                switches=round(sum(s.switches for s in row) / n),
                switches_per_day=sum(s.switches_per_day for s in row) / n,
                gpu_hours=sum(s.gpu_hours for s in row) / n,
                notes=first.notes,
                best_static_net_value_usd=_mean([s.best_static_net_value_usd for s in row]),
                headroom_captured=_mean([s.headroom_captured for s in row]),
                gpu_cost_vs_best_static=_mean([s.gpu_cost_vs_best_static for s in row]),
                p95_latency_vs_slo=_mean([s.p95_latency_vs_slo for s in row]),
                headroom_by_seed=tuple(s.headroom_captured for s in row),
            )
        )
    return out


def _usd(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def table(title: str, rows: Sequence[Summary]) -> str:
    """A fixed-width table, one policy per row, notes under it."""
    head = ("POLICY", "GPU COST $", "VALUE $", "NET VALUE $", "VS ORACLE", "HEADROOM",
            "COST/STATIC", "P95/SLO", "SLO ATTAIN", "SWITCHES", "SW/DAY", "GPU-HOURS")  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append(
            (
                r.policy,
                _usd(r.gpu_cost_usd),
                _usd(r.value_usd),
                _usd(r.net_value_usd),
                _pct(r.net_value_vs_oracle, 1),
                _ratio(r.headroom_captured),
                _ratio(r.gpu_cost_vs_best_static),
                _ratio(r.p95_latency_vs_slo),
                f"{r.slo_attainment:.2%}",
                str(r.switches),
                f"{r.switches_per_day:.1f}",
                f"{r.gpu_hours:,.0f}",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = [title]
    for row in lines:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        text.append("  ".join(cells).rstrip())
    for r in rows:
        for note in r.notes:
            text.append(f"  {r.policy}: {note}")
    text.append(headroom_note(rows))
    return "\n".join(text)


def headroom_note(rows: Sequence[Summary]) -> str:
    """One line: the best static net value that HEADROOM and COST/STATIC are measured
    against, or why they are blank."""
    best = next((r.best_static_net_value_usd for r in rows), None)
    if best is None:
        return "  HEADROOM, COST/STATIC: '-' (no static:*+hpa policy in the run)"
    if all(r.headroom_captured is None for r in rows):
        why = (
            "no oracle in the run"
            if not any(r.policy == "oracle" for r in rows)
            else "the oracle is not above it"
        )
        return f"  HEADROOM: '-' ({why}); best static net value {_usd(best)} USD"
    return (
        f"  HEADROOM = (net - best static) / (oracle - best static), best static net value "
        f"{_usd(best)} USD; COST/STATIC = GPU cost / its GPU cost; P95/SLO = latency at the "
        "SLO percentile / SLO"
    )


def _pct(x: float | None, nd: int) -> str:
    return "-" if x is None else f"{x:.{nd}%}"


def _ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.2f}"


def _clean(x: float | None, nd: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, nd)


def to_json(rows: Sequence[Summary], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"policies": [{policy, gpuCost, value, netValue, netValueVsOracle, bestStaticNetValue,
    headroomCaptured, gpuCostVsBestStatic, p95LatencyVsSlo, sloAttainment, switches,
    gpuHours[, headroomBySeed]}, ...]} in USD, ratios and fractions 0..1 (None/null: not measurable in the run,
    see the module docstring), plus `extra` keys."""
    doc: dict[str, Any] = dict(extra or {})
    doc["policies"] = [
        {
            "policy": r.policy,
            "gpuCost": _clean(r.gpu_cost_usd, 2),
            "value": _clean(r.value_usd, 2),
            "netValue": _clean(r.net_value_usd, 2),
            "netValueVsOracle": _clean(r.net_value_vs_oracle),
            "bestStaticNetValue": _clean(r.best_static_net_value_usd, 2),
            "headroomCaptured": _clean(r.headroom_captured),
            "gpuCostVsBestStatic": _clean(r.gpu_cost_vs_best_static),
            "p95LatencyVsSlo": _clean(r.p95_latency_vs_slo),
            "sloAttainment": _clean(r.slo_attainment),
            "switches": r.switches,
            "switchesPerDay": _clean(r.switches_per_day, 3),
            "gpuHours": _clean(r.gpu_hours, 2),
            "notes": list(r.notes),
        }
        | (
            {"headroomBySeed": [_clean(h) for h in r.headroom_by_seed]}
            if r.headroom_by_seed
            else {}
        )
        for r in rows
    ]
    return doc


def plot(
    path: str,
    title: str,
    runs: Sequence[PolicyRun],
    variant_names: Sequence[str],
    tick_s: float,
    summaries: Sequence[Summary] | None = None,
) -> None:
    """Load; per policy the replicas it ran, colored by the variant that got the most
    traffic, with its figures (net value, headroom captured, GPU cost vs best static, p95
    latency vs SLO, SLO attainment; `summaries`, default summarize(runs)); cumulative GPU
    cost. Needs matplotlib (the `plot` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not runs:
        return
    ticks = len(runs[0].arrivals)
    step = max(1, ticks // 4000)  # at most ~4,000 points a line
    hours = np.arange(0, ticks, step) * tick_s / 3600.0
    fig, axes = plt.subplots(
        2 + len(runs), 1, figsize=(12, 3 + 1.2 * len(runs) + 3), sharex=True,
        gridspec_kw={"height_ratios": [2] + [1] * len(runs) + [2]},
    )  # fmt: skip
    axes[0].plot(hours, runs[0].arrivals[::step] / tick_s, color="black", lw=0.7)
    axes[0].set_ylabel("load req/s")
    axes[0].set_title(title)
    colors = plt.get_cmap("tab10")
    figures = {x.policy: x for x in (summaries or summarize(runs, tick_s))}
    for ax, r in zip(axes[1:-1], runs, strict=True):
        f = figures.get(r.name)
        if f is not None:
            ax.text(
                0.005, 0.95,
                f"net {_usd(f.net_value_usd)} $  headroom {_ratio(f.headroom_captured)}  "
                f"cost/static {_ratio(f.gpu_cost_vs_best_static)}  "
                f"p95/SLO {_ratio(f.p95_latency_vs_slo)}  SLO {f.slo_attainment:.2%}",
                transform=ax.transAxes, fontsize=7, va="top",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0},
            )  # fmt: skip
        total = r.replicas.sum(axis=1)[::step]
        prim = r.primary[::step]
        for v, name in enumerate(variant_names):
            mask = prim == v
            if mask.any():
                ax.fill_between(
                    hours,
                    0,
                    np.where(mask, total, 0),
                    step="post",
                    color=colors(v % 10),
                    lw=0,
                    label=name,
                )
        ax.plot(hours, total, color="black", lw=0.5, drawstyle="steps-post")
        ax.set_ylabel(r.name, rotation=0, ha="right", fontsize=8)
    handles = [Rectangle((0, 0), 1, 1, color=colors(v % 10)) for v in range(len(variant_names))]
    axes[1].legend(
        handles, list(variant_names), fontsize=7, loc="upper right", ncol=len(variant_names)
    )
    for r in runs:
        axes[-1].plot(hours, np.cumsum(r.cost_usd)[::step], lw=1, label=r.name)
    axes[-1].set_ylabel("cumulative GPU $")
    axes[-1].set_xlabel("hours")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
