"""A short-horizon forecast of the request rate, so slow replicas start before the ramp (pure).

Two forecasts of the rate at t + h from what the memory holds, each from a level:
- persistence: the level is the rate read now (already a mean over the rate window);
- trend: Holt's linear trend on the recent ticks,
      level' = a x rate + (1 - a) x (level + trend x dt)
      trend' = b x (level' - level) / dt + (1 - b) x trend
  whose forecast is max(0, level + trend x h) before a day is known.
Once earlier days are known, the daily profile (SLOTS_PER_DAY slots, each the mean rate of
that slot, smoothed over days with DAY_ALPHA) gives the shape of the day, and either forecast
is its level x profile(t + h) / profile(t) (profile read at slot centres, linearly
interpolated; both points must be known).
Both are scored at the horizon the caller asks for (one pending forecast of each, compared
with the rate observed when it falls due: an exponentially weighted mean of |log(actual /
forecast)|, ERROR_ALPHA per score), and the trend is used only while its error is the lower.
Persistence is the default: on the replay's seven scenarios (bench/replay.py) the trend's
forecasts were worse than the rate itself at the horizon in every one (mean absolute
percentage error 0.062-0.149 against 0.056-0.134; the 98th percentile of actual / forecast
1.25-2.45 against 1.18-1.46): the trend of a 2-minute rate read every 30 s follows its noise
and its bursts. A steady ramp is where the trend wins, and there it is chosen once one of its
forecasts has fallen due.
The margin is a quantile (MARGIN_Q) of recent errors of the forecast used, actual / forecast,
tracked by a stochastic quantile estimate (margin' = margin + MARGIN_STEP x (q - [ratio <=
margin])), clamped to [1, MARGIN_MAX]: `upper()` = forecast x margin; `mape` is the mean
absolute percentage error of the forecasts used.
Everything lives in ForecastMemory (about 70 numbers), which the operator keeps in status.
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
ERROR_ALPHA = 0.05


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
    rate: float | None = None  # the last rate observed: persistence's level
    due_rate_rps: float = 0.0  # persistence's pending forecast
    due_trend_rps: float = 0.0  # the trend's
    error_rate: float | None = None  # mean |log(actual / forecast)| of persistence
    error_trend: float | None = None  # and of the trend

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


def trend_chosen(m: ForecastMemory) -> bool:
    """Whether the trend's forecasts have scored better than persistence's (module docstring)."""
    return m.error_trend is not None and m.error_rate is not None and m.error_trend < m.error_rate


def _level(m: ForecastMemory, trend: bool) -> float | None:
    return m.level if trend or m.rate is None else m.rate


def _forecast_from(m: ForecastMemory, horizon_s: float, trend: bool) -> float | None:
    level = _level(m, trend)
    if m.at is None or level is None:
        return None
    now_shape = _profile_at(m.profile, m.at)
    then_shape = _profile_at(m.profile, m.at + horizon_s)
    if now_shape is not None and then_shape is not None and now_shape > 0:
        return max(0.0, level * then_shape / now_shape)
    return max(0.0, level + m.trend * horizon_s) if trend else max(0.0, level)


def predict(m: ForecastMemory, horizon_s: float) -> float | None:
    """The rate expected at m.at + horizon_s by the forecast in use (see the module
    docstring); None before any."""
    return _forecast_from(m, horizon_s, trend_chosen(m))


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
        out = replace(
            out,
            due_at=None,
            margin=margin,
            error_sum=error_sum,
            errors=errors,
            error_rate=_scored(out.error_rate, rate, out.due_rate_rps),
            error_trend=_scored(out.error_trend, rate, out.due_trend_rps),
        )

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
        rate=rate,
        profile=profile,
        slot=slot,
        slot_sum=slot_sum + rate,
        slot_n=slot_n + 1,
    )
    if out.due_at is None:
        by_rate = _forecast_from(out, horizon_s, False)
        by_trend = _forecast_from(out, horizon_s, True)
        p = by_trend if trend_chosen(out) else by_rate
        if p is not None:
            out = replace(
                out,
                due_at=at + horizon_s,
                due_rps=p,
                due_rate_rps=by_rate or 0.0,
                due_trend_rps=by_trend or 0.0,
            )
    return out


def _scored(error: float | None, actual: float, said: float) -> float | None:
    """A predictor's mean |log(actual / forecast)| with one more forecast scored; unchanged
    when either is not positive."""
    if said <= 0 or actual <= 0:
        return error
    e = abs(math.log(actual / said))
    return e if error is None else (1 - ERROR_ALPHA) * error + ERROR_ALPHA * e


def path(m: ForecastMemory, span_s: float) -> tuple[float, ...]:
    """The seasonal forecast at every SLOT_S over the next `span_s` seconds: the trend's
    smoothed level x profile(t + k x SLOT_S) / profile(t); empty unless the daily profile
    covers all of it (a trend is not extrapolated over hours)."""
    level = m.level  # the smoothed level: hours ahead, not this minute's rate
    if m.at is None or level is None or span_s <= 0:
        return ()
    now_shape = _profile_at(m.profile, m.at)
    if now_shape is None or now_shape <= 0:
        return ()
    out = []
    for k in range(1, math.ceil(span_s / SLOT_S) + 1):
        then = _profile_at(m.profile, m.at + k * SLOT_S)
        if then is None:
            return ()
        out.append(max(0.0, level * then / now_shape))
    return tuple(out)


def forecast(m: ForecastMemory, horizon_s: float, span_s: float = 0.0) -> RateForecast | None:
    """predict() and upper() together, and the path over `span_s`; None before any
    observation."""
    p = predict(m, horizon_s)
    return None if p is None else RateForecast(p, p * m.margin, horizon_s, path(m, span_s))
