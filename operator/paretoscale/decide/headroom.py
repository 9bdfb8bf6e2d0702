"""How much headroom the replicas keep: what a reading can tell, and what a miss costs (pure).

- `noise_band`: the relative error of a load read over a rate window. Requests arrive as a
  Poisson process and their work varies (a coefficient of variation of about WORK_CV for
  LLM prompts), so the work of the N = rate x window requests a reading counts has a
  relative standard deviation of sqrt((1 + WORK_CV^2) / N): about 9% for a 70B model at
  2 req/s over 2 minutes, 2% for an 8B one at 30 req/s. The band is NOISE_Z of those, and
  never more than half the headroom the target utilization u leaves, (1/u - 1) / 2, so a
  load inside it still runs below the capacity at the SLO. decide() adds no replica for a
  load that is past the replicas by less than the band while every saturation signal is
  calm: a replica of a 70B model loads for ten minutes and costs four GPUs, and a single
  noisy reading is no reason to start one.
- `rate_at_risk`: the rate the replicas must carry at full capacity at the SLO over the
  time a new one takes to load. A fleet past its capacity misses the SLO for nearly every
  request (its queue grows), so one more replica pays while the chance that the load
  exceeds what the fleet carries is above its cost / the value per hour the fleet serves
  (the newsvendor's critical ratio). The forecast's margin is the MARGIN_Q quantile of
  actual / forecast (decide/forecast.py); read as log-normal, the quantile q = 1 - cost /
  value sits at point x margin ^ (z(q) / z(MARGIN_Q)), q within [Q_MIN, Q_MAX]. Where an
  hour of what the fleet serves is worth 60-90 replica-hours (the 8B examples by day) that is
  about the 0.99 quantile; where an idle replica is dear (a 70B at night), nearer the point
  forecast.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from paretoscale.decide.forecast import MARGIN_Q, RateForecast

WORK_CV = 1.0
NOISE_Z = 2.0
Q_MIN = 0.5
Q_MAX = 0.999

_Z_MARGIN = NormalDist().inv_cdf(MARGIN_Q)


def noise_band(rate_rps: float, window_s: float | None, target_utilization: float) -> float:
    """The relative error of `rate_rps` read over `window_s` [ratio]; 0 when the window is not
    known or nothing arrived (see the module docstring)."""
    n = rate_rps * (window_s or 0.0)
    if n <= 0:
        return 0.0
    headroom = (1.0 / target_utilization - 1.0) / 2.0
    return min(NOISE_Z * math.sqrt((1.0 + WORK_CV**2) / n), max(headroom, 0.0))


def loss_quantile(replica_usd_per_hour: float, value_usd_per_hour: float) -> float:
    """The quantile of the load one more replica is worth covering: 1 - its cost / the
    value per hour at risk, within [Q_MIN, Q_MAX]."""
    if value_usd_per_hour <= 0:
        return Q_MIN
    return min(Q_MAX, max(Q_MIN, 1.0 - replica_usd_per_hour / value_usd_per_hour))


def rate_at_risk(
    ahead: RateForecast, replica_usd_per_hour: float, value_usd_per_hour: float
) -> float:
    """The forecast rate [req/s] at `loss_quantile` of its log-normal error (see the module
    docstring); the point forecast when it has no margin."""
    if ahead.point_rps <= 0 or ahead.upper_rps <= ahead.point_rps:
        return ahead.point_rps
    z = NormalDist().inv_cdf(loss_quantile(replica_usd_per_hour, value_usd_per_hour))
    log_margin = math.log(ahead.upper_rps / ahead.point_rps)
    return ahead.point_rps * math.exp(log_margin * z / _Z_MARGIN)
