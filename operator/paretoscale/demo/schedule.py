"""The demo's compressed day (pure): which load and which GPU price hold at each wall second.

One day of a ServeGen rate series (144 ten-minute windows) is played in `day_wall_s` wall
seconds, so each wall second stands for `compression` = 86,400 / day_wall_s seconds of the
day (x288 for a 5-minute day). Rates are real requests per wall second: the load generator
sends them, the simulators serve them at their real speed; only the day's clock runs fast.

- rate [req/s] at wall second t = rates[floor(t x compression / window_s)], the day's
  windows scaled so the busiest one is `peak_rps`;
- H100 price [USD per GPU-hour] = `before` until `change_at_day_s` (noon), `after` from it
  (the 2025-06-05 AWS p5.48xlarge cut: $98.32 -> $55.04 per 8-GPU hour = $12.29 -> $6.88);
- rollout timings shrink with the day, so they last as long in day time as they would in a
  real day: the dwell is a fifth of the day (4.8 h), scale-down waits a tenth (2.4 h);
- before the day, a warm-up as long as the operator's rate window at the day's first rate,
  so the load the operator reads at 00:00 is the day's, not an empty window's.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DAY_S = 86_400.0
WINDOWS_PER_DAY = 144
NOON_S = DAY_S / 2
STARTUP_DELAY_ENV = "PARETOSCALE_SIM_STARTUP_DELAY_S"  # read by the simulator bridge


@dataclass(frozen=True)
class PricePlan:
    """USD per GPU-hour by GPU type over the day: `base` all day, except that `gpu_type`
    costs `before` until `change_at_day_s` and `after` from then on."""

    base: Mapping[str, float]
    gpu_type: str
    before: float
    after: float
    change_at_day_s: float = NOON_S

    @property
    def changes(self) -> bool:
        return self.before != self.after

    def at(self, day_s: float) -> dict[str, float]:
        """Prices in force at `day_s` seconds into the day."""
        usd = self.after if day_s >= self.change_at_day_s else self.before
        return {**self.base, self.gpu_type: usd}


@dataclass(frozen=True)
class Timings:
    """The ModelDeployment's rollout and traffic timings for a compressed day [wall s], and
    the operator's PromQL rate window."""

    min_dwell_s: int
    scale_down_stabilization_s: int
    verify_s: int
    drain_grace_s: int
    ready_timeout_s: int
    startup_s: int
    rate_window_s: int

    @property
    def rate_window(self) -> str:
        """The rate window as a PromQL duration (`1m`, `20s`)."""
        s = self.rate_window_s
        return f"{s // 60}m" if s % 60 == 0 else f"{s}s"


@dataclass(frozen=True)
class DemoDay:
    """One day of a rate series, scaled and compressed (see the module docstring)."""

    window_start_s: tuple[float, ...]  # day seconds, from 0
    rates_rps: tuple[float, ...]  # scaled so max = peak_rps
    day_wall_s: float
    label: str = ""  # where the day comes from, for titles

    @property
    def compression(self) -> float:
        """Day seconds per wall second."""
        return DAY_S / self.day_wall_s

    @property
    def window_s(self) -> float:
        if len(self.window_start_s) < 2:
            return DAY_S
        return self.window_start_s[1] - self.window_start_s[0]

    @property
    def peak_rps(self) -> float:
        return max(self.rates_rps)

    def day_s(self, wall_s: float) -> float:
        """Day seconds at `wall_s` wall seconds after the day started (clamped to the day)."""
        return min(DAY_S, max(0.0, wall_s) * self.compression)

    def wall_s(self, day_s: float) -> float:
        return day_s / self.compression

    def rate_at(self, wall_s: float) -> float:
        """Offered rate [req/s] at `wall_s`: the window it falls in (0 outside the day)."""
        if wall_s < 0 or wall_s >= self.day_wall_s:
            return 0.0
        i = min(int(self.day_s(wall_s) // self.window_s), len(self.rates_rps) - 1)
        return self.rates_rps[i]

    def expected_requests(self) -> float:
        """Requests the whole compressed day offers: sum of rate x window, in wall seconds."""
        return sum(self.rates_rps) * self.window_s / self.compression


def day_of_series(
    window_start_s: Sequence[float],
    rates_rps: Sequence[float],
    day: int,
    peak_rps: float,
    day_wall_s: float,
    label: str = "",
) -> DemoDay:
    """Day `day` (0-based) of a series of ten-minute windows, scaled to `peak_rps`, played in
    `day_wall_s` wall seconds. ValueError when the series has no such whole day."""
    if peak_rps <= 0:
        raise ValueError(f"the peak must be > 0 req/s, got {peak_rps:g}")
    if day_wall_s <= 0:
        raise ValueError(f"the day must last > 0 s, got {day_wall_s:g}")
    if len(window_start_s) != len(rates_rps):
        raise ValueError("window starts and rates differ in length")
    days = len(rates_rps) // WINDOWS_PER_DAY
    if not 0 <= day < days:
        raise ValueError(
            f"day {day} is not in the series: it holds {days} whole day(s) of "
            f"{WINDOWS_PER_DAY} ten-minute windows (days 0-{days - 1})"
        )
    lo, hi = day * WINDOWS_PER_DAY, (day + 1) * WINDOWS_PER_DAY
    starts = [float(s) for s in window_start_s[lo:hi]]
    steps = {round(b - a, 6) for a, b in itertools.pairwise(starts)}
    if steps != {600.0}:
        raise ValueError(f"expected ten-minute windows, found spacings {sorted(steps)} s")
    rates = [float(r) for r in rates_rps[lo:hi]]
    top = max(rates)
    if not top > 0:
        raise ValueError(f"day {day} has no load")
    return DemoDay(
        window_start_s=tuple(s - starts[0] for s in starts),
        rates_rps=tuple(r * peak_rps / top for r in rates),
        day_wall_s=day_wall_s,
        label=label,
    )


def timings_for(day_wall_s: float) -> Timings:
    """Rollout timings for a day played in `day_wall_s` wall seconds (see the docstring):
    60 s dwell and 30 s scale-down stabilization for a 5-minute day; verification and the
    drain grace stay a few seconds so a switch fits in a day-hour; the rate window is a fifth
    of the day, at least 20 s (four 5 s scrapes), 1m for a 5-minute day."""
    return Timings(
        min_dwell_s=max(1, round(day_wall_s / 5)),
        scale_down_stabilization_s=max(1, round(day_wall_s / 10)),
        verify_s=5,
        drain_grace_s=5,
        ready_timeout_s=120,
        startup_s=5,
        rate_window_s=max(20, round(day_wall_s / 5)),
    )


def demo_manifest(
    doc: Mapping[str, Any],
    namespace: str,
    timings: Timings,
    expected_rps: float,
    startup_delay_s: float,
) -> dict[str, Any]:
    """A ModelDeployment document moved to `namespace` with the compressed day's timings:
    rollout (dwell, verification and its deadline, drain grace, ready timeout), traffic
    (scale-down stabilization, the load assumed before metrics exist), each variant's
    startupSeconds, and
    the simulated pods' model-loading delay (env for the bridge). The input is not changed."""
    out = copy.deepcopy(dict(doc))
    out["metadata"] = {**out.get("metadata", {}), "namespace": namespace}
    spec = out["spec"]
    spec["rollout"] = {
        **(spec.get("rollout") or {}),
        "minDwellSeconds": timings.min_dwell_s,
        "verifySeconds": timings.verify_s,
        # a target without enough traffic to verify rolls back within a day-hour, not 10 min
        "verifyTimeoutSeconds": 6 * timings.verify_s,
        "drainGraceSeconds": timings.drain_grace_s,
        "readyTimeoutSeconds": timings.ready_timeout_s,
    }
    spec["traffic"] = {
        **(spec.get("traffic") or {}),
        "scaleDownStabilizationSeconds": timings.scale_down_stabilization_s,
        "expectedRequestsPerSecond": round(expected_rps, 3),
    }
    template = spec.setdefault("template", {})
    env = [e for e in (template.get("env") or []) if e.get("name") != STARTUP_DELAY_ENV]
    template["env"] = [*env, {"name": STARTUP_DELAY_ENV, "value": f"{startup_delay_s:g}"}]
    for variant in spec["variants"]:
        variant["startupSeconds"] = timings.startup_s
    return dict(out)


def clock(day_s: float) -> str:
    """HH:MM of a day second (24:00 at the end of the day)."""
    minutes = math.floor(max(0.0, day_s) / 60.0)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
