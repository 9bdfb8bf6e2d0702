"""What `paretoscale plan` shows: the frontier table and the decision, as rows and as JSON.

Pure formatting of a Decision; the plot (matplotlib, optional extra) is the only I/O here.
"""

from __future__ import annotations

import math
from typing import Any

from paretoscale.decide.types import Decision, VariantEval


def _round(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, nd)


def variant_json(e: VariantEval) -> dict[str, Any]:
    return {
        "name": e.name,
        "gpu": e.gpu_type,
        "quality": e.quality,
        "feasible": e.feasible,
        "onFrontier": e.on_frontier,
        "replicas": e.replicas,
        "capacityPerReplica": _round(e.capacity_rps),
        "capacityBasis": e.capacity_basis,
        "hourlyCost": _round(e.hourly_cost_usd),
        "costPer1kRequests": _round(e.cost_per_1k_requests_usd),
        "valuePerHour": _round(e.value_per_hour_usd),
        "netValuePerHour": _round(e.net_value_per_hour_usd),
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


def _money(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.2f}"


def plan_table(name: str, decision: Decision) -> str:
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
                f"{e.capacity_rps:.2f}" + (" (est)" if e.capacity_basis == "estimate" else ""),
                _money(e.hourly_cost_usd),
                _money(e.cost_per_1k_requests_usd),
                _money(e.value_per_hour_usd),
                _money(e.net_value_per_hour_usd),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"{name} at {decision.requests_per_s:g} req/s (USD)"]
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


def plot_frontier(name: str, decision: Decision, path: str) -> None:
    """Cost per 1,000 requests vs quality: frontier, dominated and infeasible points, the choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rate = decision.requests_per_s
    xs = {
        e.name: (e.cost_per_1k_requests_usd if rate > 0 else e.hourly_cost_usd)
        for e in decision.evaluations
    }
    front = sorted(
        (x, e.quality)
        for e in decision.evaluations
        if e.on_frontier and (x := xs[e.name]) is not None
    )
    ax.plot(
        [x for x, _ in front],
        [q for _, q in front],
        "-o",
        color="tab:blue",
        label="Pareto frontier",
    )
    for e in decision.evaluations:
        x = xs[e.name]
        if x is None:
            continue
        style = (
            ("o", "tab:blue")
            if e.on_frontier
            else (("x", "tab:gray") if e.feasible else ("x", "tab:red"))
        )
        ax.plot([x], [e.quality], style[0], color=style[1])
        ax.annotate(e.name, (x, e.quality), textcoords="offset points", xytext=(5, 5), fontsize=8)
    chosen = decision.evaluation(decision.variant)
    chosen_x = xs[chosen.name]
    if chosen_x is not None:
        ax.plot(
            [chosen_x],
            [chosen.quality],
            "*",
            markersize=16,
            color="tab:orange",
            label=f"choice: {chosen.name} x {decision.replicas}",
        )
    ax.set_xlabel("USD per 1,000 requests" if rate > 0 else "USD per hour (no load)")
    ax.set_ylabel("quality (offline score)")
    ax.set_title(f"{name} at {rate:g} req/s: gray = dominated, red = misses the SLO")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
