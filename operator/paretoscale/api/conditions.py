"""Conditions with fixed reasons, changed only when something changed.

`set_condition` keeps lastTransitionTime when the status did not flip (Karpenter and Argo do
the same), so a status patch is written only when a condition really moved.
"""

from __future__ import annotations

from paretoscale.api.status import Condition, ConditionType
from paretoscale.redact import redact

# The reasons each condition can carry (CamelCase, as Kubernetes wants them).
REASONS = {
    "Ready": ("Serving", "NoVariantServing", "SLOInfeasible", "Recommending"),
    "Progressing": ("Stable", "RollingOut", "Scaling", "RollingBack"),
    "Degraded": ("AsExpected", "RolledBack", "SLOInfeasible", "ApplyFailed"),
    "MetricsAvailable": ("MetricsFresh", "MetricsUnavailable", "NoPrometheus"),
    "SpecValid": ("Valid", "InvalidSpec"),
    "ResourceConflict": ("NoConflict", "NotOwned", "NameCollision"),
    "ReconcileError": ("Reconciled", "ReconcileFailed", "TimedOut"),
    "CapacityPending": ("AllScheduled", "Unschedulable"),
    "SLOUnreachable": ("SLOReachable", "NoVariantMeetsSLO"),
}


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: bool,
    reason: str,
    message: str,
    now_rfc3339: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime moves only when the status flips.
    A message is redacted (an error text may carry a URL's credentials) unless it is the one
    the condition already holds, which was."""
    if reason not in REASONS[type_]:
        raise ValueError(f"{type_} has no reason {reason!r}; known: {REASONS[type_]}")
    value = "True" if status else "False"
    old = next((c for c in conditions if c.type == type_), None)
    if old is not None and message == old.message:
        if (old.status, old.reason, old.observed_generation) == (value, reason, generation):
            return list(conditions)  # as it was: no new condition to build
    else:
        message = redact(message)
    since = old.last_transition_time if old is not None and old.status == value else now_rfc3339
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def get_condition(conditions: list[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
