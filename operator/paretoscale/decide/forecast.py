"""A short-horizon forecast of the request rate, so slow replicas start before the ramp (pure).

Two forecasts of the rate at t + h from what the memory holds:
- seasonal (when earlier days are known): the daily profile (SLOTS_PER_DAY slots, each the
  mean rate of that slot, smoothed over days with DAY_ALPHA) gives the shape of the day:
      forecast = level x profile(t + h) / profile(t)
  (profile read at slot centres, linearly interpolated; both points must be known);
- else Holt's linear trend on the recent ticks:
      level' = a x rate + (1 - a) x (level + trend x dt)
      trend' = b x (level' - level) / dt + (1 - b) x trend
      forecast = max(0, level + trend x h)
The margin is a quantile (MARGIN_Q) of recent errors, actual / forecast, tracked by a
stochastic quantile estimate (margin' = margin + MARGIN_STEP x (q - [ratio <= margin])),
clamped to [1, MARGIN_MAX]: `upper()` = forecast x margin. Errors are measured at the horizon
the caller asks for: one forecast at a time is kept and compared with the rate observed when
it falls due; `mape` is the mean absolute percentage error of those comparisons.
Everything lives in ForecastMemory (about 60 numbers), which the operator keeps in status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

DAY_S = 86400.0
SLOTS_PER_DAY = 48
SLOT_S = DAY_S / SLOTS_PER_DAY
DAY_ALPHA = 0.5
LEVEL_ALPHA = 0.3
TREND_BETA = 0.05
MARGIN_Q = 0.9
MARGIN_STEP = 0.02
MARGIN_MAX = 2.0


@dataclass(frozen=True)
class RateForecast:
    """The rate expected horizon_s ahead [req/s]: the point forecast and point x margin;
    `path_rps`: the rates the daily profile expects at every slot over the next hours
    (`path`), empty before a day is known."""

    point_rps: float
    upper_rps: float
    horizon_s: float
    path_rps: tuple[float, ...] = ()


@dataclass(frozen=True)
class ForecastMemory:
    """What the forecast remembers between ticks (all rates in req/s, times in s)."""

    at: float | None = None  # last observation
    level: float | None = None
    trend: float = 0.0  # req/s per s
    profile: tuple[float | None, ...] = (None,) * SLOTS_PER_DAY
    slot: int | None = None  # absolute slot (at // SLOT_S) being accumulated
    slot_sum: float = 0.0
    slot_n: int = 0
    due_at: float | None = None  # the forecast under test: when it falls due
    due_rps: float = 0.0  # and what it said
    margin: float = 1.0
    error_sum: float = 0.0  # sum of |actual - forecast| / actual
    errors: int = 0

    @property
    def mape(self) -> float | None:
        """Mean absolute percentage error of the forecasts that fell due (0-1)."""
        return self.error_sum / self.errors if self.errors else None


def _profile_at(profile: tuple[float | None, ...], t: float) -> float | None:
    pos = (t % DAY_S) / SLOT_S - 0.5
    i0 = math.floor(pos)
    w = pos - i0
    a, b = profile[i0 % SLOTS_PER_DAY], profile[(i0 + 1) % SLOTS_PER_DAY]
    if a is None or b is None:
        return None
    return (1 - w) * a + w * b


def predict(m: ForecastMemory, horizon_s: float) -> float | None:
    """The rate expected at m.at + horizon_s (see the module docstring); None before any."""
    if m.at is None or m.level is None:
        return None
    now_shape = _profile_at(m.profile, m.at)
    then_shape = _profile_at(m.profile, m.at + horizon_s)
    if now_shape is not None and then_shape is not None and now_shape > 0:
        return max(0.0, m.level * then_shape / now_shape)
    return max(0.0, m.level + m.trend * horizon_s)


def upper(m: ForecastMemory, horizon_s: float) -> float | None:
    """The forecast times the error margin: the rate to plan replicas for."""
    p = predict(m, horizon_s)
    return None if p is None else p * m.margin


def observe(
    m: ForecastMemory, at: float, rate: float | None, horizon_s: float, min_gap_s: float = 0.0
) -> ForecastMemory:
    """Fold one observed rate in; score the pending forecast; issue one at horizon_s.

    An observation less than min_gap_s after the last one (a reconcile between two metric
    polls) is not folded in: the trend divides by the time between observations."""
    if rate is None or rate < 0 or (m.at is not None and at - m.at < max(min_gap_s, 1e-9)):
        return m
    out = m
    if out.due_at is not None and at >= out.due_at:
        margin, error_sum, errors = out.margin, out.error_sum, out.errors
        if out.due_rps > 0 and rate > 0:
            below = rate / out.due_rps <= margin
            margin = min(MARGIN_MAX, max(1.0, margin + MARGIN_STEP * (MARGIN_Q - below)))
            error_sum, errors = error_sum + abs(rate - out.due_rps) / rate, errors + 1
        out = replace(out, due_at=None, margin=margin, error_sum=error_sum, errors=errors)

    slot = int(at // SLOT_S)
    profile, slot_sum, slot_n = out.profile, out.slot_sum, out.slot_n
    if out.slot is not None and slot != out.slot and slot_n > 0:
        mean = slot_sum / slot_n
        i = out.slot % SLOTS_PER_DAY
        old = profile[i]
        new = mean if old is None else (1 - DAY_ALPHA) * old + DAY_ALPHA * mean
        profile = (*profile[:i], new, *profile[i + 1 :])
        slot_sum, slot_n = 0.0, 0
    elif out.slot is not None and slot != out.slot:
        slot_sum, slot_n = 0.0, 0

    if out.level is None or out.at is None:
        level, trend = rate, 0.0
    else:
        dt = at - out.at
        level = LEVEL_ALPHA * rate + (1 - LEVEL_ALPHA) * (out.level + out.trend * dt)
        trend = TREND_BETA * (level - out.level) / dt + (1 - TREND_BETA) * out.trend
    out = replace(
        out,
        at=at,
        level=level,
        trend=trend,
        profile=profile,
        slot=slot,
        slot_sum=slot_sum + rate,
        slot_n=slot_n + 1,
    )
    if out.due_at is None:
        p = predict(out, horizon_s)
        if p is not None:
            out = replace(out, due_at=at + horizon_s, due_rps=p)
    return out


def path(m: ForecastMemory, span_s: float) -> tuple[float, ...]:
    """The seasonal forecast at every SLOT_S over the next `span_s` seconds: level x
    profile(t + k x SLOT_S) / profile(t); empty unless the daily profile covers all of it
    (a trend is not extrapolated over hours)."""
    if m.at is None or m.level is None or span_s <= 0:
        return ()
    now_shape = _profile_at(m.profile, m.at)
    if now_shape is None or now_shape <= 0:
        return ()
    out = []
    for k in range(1, math.ceil(span_s / SLOT_S) + 1):
        then = _profile_at(m.profile, m.at + k * SLOT_S)
        if then is None:
            return ()
        out.append(max(0.0, m.level * then / now_shape))
    return tuple(out)


def forecast(m: ForecastMemory, horizon_s: float, span_s: float = 0.0) -> RateForecast | None:
    """predict() and upper() together, and the path over `span_s`; None before any
    observation."""
    p = predict(m, horizon_s)
    return None if p is None else RateForecast(p, p * m.margin, horizon_s, path(m, span_s))
