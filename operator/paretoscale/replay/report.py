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


def summarize(
    runs: Sequence[PolicyRun], tick_s: float, oracle: PolicyRun | None = None
) -> list[Summary]:
    """Totals per run; vs-oracle figures against `oracle` (default: the run named "oracle")."""
    oracle = oracle or next((r for r in runs if r.name == "oracle"), None)
    oracle_net = float(oracle.value_usd.sum() - oracle.cost_usd.sum()) if oracle else None
    days = len(runs[0].arrivals) * tick_s / 86400.0 if runs else 0.0
    out = []
    for r in runs:
        cost, value = float(r.cost_usd.sum()), float(r.value_usd.sum())
        arrived = float(r.arrivals.sum())
        vs = None
        if oracle_net is not None and oracle_net != 0:
            vs = (value - cost) / oracle_net
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
            )
        )
    return out


def _usd(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def table(title: str, rows: Sequence[Summary]) -> str:
    """A fixed-width table, one policy per row, notes under it."""
    head = ("POLICY", "GPU COST $", "VALUE $", "NET VALUE $", "VS ORACLE", "SLO ATTAIN",
            "SWITCHES", "SW/DAY", "GPU-HOURS")  # fmt: skip
    lines = [head]
    for r in rows:
        vs = "-" if r.net_value_vs_oracle is None else f"{r.net_value_vs_oracle:.1%}"
        lines.append(
            (
                r.policy,
                _usd(r.gpu_cost_usd),
                _usd(r.value_usd),
                _usd(r.net_value_usd),
                vs,
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
    return "\n".join(text)


def _clean(x: float | None, nd: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, nd)


def to_json(rows: Sequence[Summary], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"policies": [{policy, gpuCost, value, netValue, netValueVsOracle, sloAttainment,
    switches, gpuHours}, ...]} in USD and fractions 0..1, plus `extra` keys."""
    doc: dict[str, Any] = dict(extra or {})
    doc["policies"] = [
        {
            "policy": r.policy,
            "gpuCost": _clean(r.gpu_cost_usd, 2),
            "value": _clean(r.value_usd, 2),
            "netValue": _clean(r.net_value_usd, 2),
            "netValueVsOracle": _clean(r.net_value_vs_oracle),
            "sloAttainment": _clean(r.slo_attainment),
            "switches": r.switches,
            "switchesPerDay": _clean(r.switches_per_day, 3),
            "gpuHours": _clean(r.gpu_hours, 2),
            "notes": list(r.notes),
        }
        for r in rows
    ]
    return doc


def plot(
    path: str,
    title: str,
    runs: Sequence[PolicyRun],
    variant_names: Sequence[str],
    tick_s: float,
) -> None:
    """Load; per policy the replicas it ran, colored by the variant that got the most
    traffic; cumulative GPU cost. Needs matplotlib (the `plot` extra)."""
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
    for ax, r in zip(axes[1:-1], runs, strict=True):
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
