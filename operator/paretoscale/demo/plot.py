"""The demo's plot (matplotlib, the only I/O here): over the day's clock, the load offered and
the load the operator saw; the replicas of each variant; the cost per hour of the live fleet
next to the best-quality variant all day (the replay), with the GPU price.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from paretoscale.demo.counterfactual import Baseline
from paretoscale.demo.sample import Sample
from paretoscale.demo.schedule import DAY_S, DemoDay, PricePlan

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def draw(
    path: Path,
    title: str,
    day: DemoDay,
    samples: Sequence[Sample],
    variants: Sequence[str],
    prices: PricePlan,
    baseline: Baseline | None,
) -> None:
    """Write the PNG to `path` (its directory must exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [s.day_s / 3600.0 for s in samples]
    fig, (ax_load, ax_rep, ax_cost) = plt.subplots(
        3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [1.1, 1, 1.1]}
    )
    fig.suptitle(title.replace("$", r"\$"), fontsize=11)  # "$" starts mathtext

    # Load: the schedule (what the load generator sent) and what the operator read.
    edges = [s / 3600.0 for s in day.window_start_s] + [DAY_S / 3600.0]
    ax_load.stairs(day.rates_rps, edges, color="black", lw=1, label="offered (ServeGen, scaled)")
    seen = [(h, s.observed_rps) for h, s in zip(hours, samples, strict=True)]
    ax_load.plot([h for h, r in seen if r is not None], [r for _, r in seen if r is not None],
                 color="tab:gray", lw=1.5, label="seen by the operator (Prometheus)")  # fmt: skip
    ax_load.set_ylabel("load, req/s")
    ax_load.legend(loc="upper left", fontsize=8)

    # Replicas per variant (pods that exist), stacked; the active variant as a band on top.
    colors = {v: COLORS[i % len(COLORS)] for i, v in enumerate(variants)}
    stacks = [[s.replicas.get(v, 0) for s in samples] for v in variants]
    if samples:
        ax_rep.stackplot(hours, stacks, labels=list(variants), step="post",
                         colors=[colors[v] for v in variants], alpha=0.85)  # fmt: skip
    if baseline is not None:
        ax_rep.step([i * baseline.tick_s / 3600.0 for i in range(len(baseline.replicas))],
                    baseline.replicas, where="post", color="black", lw=1, ls="--",
                    label=f"{baseline.variant} all day (replay)")  # fmt: skip
    top = max([sum(x) for x in zip(*stacks, strict=True)] + [1]) if samples else 1
    for a, b in itertools.pairwise(samples):
        if a.active in colors:
            ax_rep.axvspan(a.day_s / 3600.0, b.day_s / 3600.0, ymin=0.93, ymax=1.0,
                           color=colors[a.active], lw=0)  # fmt: skip
    ax_rep.set_ylim(0, top * 1.6 + 0.5)
    ax_rep.set_ylabel("replicas\n(band: serving)")
    ax_rep.legend(loc="upper left", bbox_to_anchor=(0.0, 0.92), fontsize=8,
                  ncol=len(variants) + 1)  # fmt: skip

    # Cost per hour: live fleet vs the baseline, with the price of the GPU whose price moves.
    ax_cost.step(hours, [s.usd_per_hour for s in samples], where="post", color="tab:orange",
                 lw=1.5, label="paretoscale (live)")  # fmt: skip
    if baseline is not None:
        ax_cost.step([i * baseline.tick_s / 3600.0 for i in range(len(baseline.usd_per_hour))],
                     baseline.usd_per_hour, where="post", color="tab:blue", lw=1,
                     label=f"{baseline.variant} all day, HPA (replay)")  # fmt: skip
    ax_cost.set_ylabel("GPU cost, USD/h")
    ax_cost.set_xlabel("hour of the day")
    price = ax_cost.twinx()
    price.step([0, prices.change_at_day_s / 3600.0, 24],
               [prices.before, prices.after, prices.after], where="post", color="tab:red",
               lw=1, ls=":", label=f"{prices.gpu_type} USD/GPU-h")  # fmt: skip
    price.set_ylabel(f"{prices.gpu_type} USD per GPU-hour", color="tab:red")
    price.set_ylim(0, max(prices.before, prices.after) * 1.4)
    lines = ax_cost.get_legend_handles_labels()
    more = price.get_legend_handles_labels()
    ax_cost.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax_cost.set_xlim(0, 24)
    ax_cost.set_xticks(range(0, 25, 3))
    for ax in (ax_load, ax_rep, ax_cost):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
