"""Build the ModelDeployment status from one tick's results (pure).

Conditions change only when something changed (api/conditions.py); the frontier table and the
decision are rewritten each tick, money rounded to cents. `status_changed` lets the shell skip
the patch when nothing but timestamps of unchanged facts would move.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from paretoscale.api.conditions import get_condition, set_condition
from paretoscale.api.status import (
    Basis,
    Condition,
    DecisionStatus,
    ModelDeploymentStatus,
    ObservedStatus,
    RolloutStatus,
    ScaleDownIntent,
    SwitchRecord,
    VariantStatus,
)
from paretoscale.decide.types import Decision, ScaleDown, VariantEval
from paretoscale.rollout.machine import RolloutState, Step
from paretoscale.tick.memory import RolledBack
from paretoscale.tick.tick import recently_failed as tick_recently_failed
from paretoscale.tick.tick import retry_after_s as retry_after_s

MAX_SWITCHES = 10


@functools.lru_cache(maxsize=256)
def rfc3339(t: float) -> str:
    """`t` as the status writes times (memoized: a tick formats the same few instants for
    every object)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def usd(x: float | None) -> str | None:
    if x is None or not math.isfinite(x):
        return None
    return f"{x:.2f}"


def rollout_state(status: RolloutStatus) -> RolloutState:
    return RolloutState(
        phase=status.phase,
        active=status.active,
        target=status.target,
        target_replicas=status.target_replicas or 0,
        started_at=parse_time(status.started_at),
        phase_since=parse_time(status.phase_since),
        message=status.message,
    )


def rollout_status(state: RolloutState) -> RolloutStatus:
    return RolloutStatus(
        phase=state.phase,
        active=state.active,
        target=state.target,
        target_replicas=state.target_replicas or None,
        started_at=rfc3339(state.started_at) if state.started_at is not None else None,
        phase_since=rfc3339(state.phase_since) if state.phase_since is not None else None,
        message=state.message,
    )


# VariantEval.capacity_basis -> the frontier row's basis.
ROW_BASIS: dict[str, Basis] = {
    "profile": "priors", "model": "model", "live": "live", "estimate": "estimate",
}  # fmt: skip


def variant_row(e: VariantEval) -> VariantStatus:
    return VariantStatus(
        name=e.name,
        feasible=e.feasible,
        on_frontier=e.on_frontier,
        replicas=e.replicas,
        capacity_per_replica=round(e.capacity_rps, 3),
        hourly_cost=usd(e.hourly_cost_usd) or "0.00",
        cost_per_1k_requests=usd(e.cost_per_1k_requests_usd),
        value_per_hour=usd(e.value_per_hour_usd) or "0.00",
        net_value_per_hour=usd(e.net_value_per_hour_usd) or "0.00",
        basis=ROW_BASIS[e.capacity_basis],
        reason=e.reason,
    )


@dataclass(frozen=True)
class TickResult:
    """Everything one tick learned, for the status."""

    now: float
    generation: int | None
    mode: str
    decision: Decision
    step: Step | None  # None in Recommend mode
    observed: ObservedStatus
    metrics_problem: str | None
    prometheus_configured: bool
    capacity_corrections: dict[str, float]
    apply_error: str | None = None
    conflict: str | None = None  # an object we would apply but do not own (nothing applied)
    collision: bool = False  # the conflict is a <md>-<variant> name collision
    # (name, scheduler message) of pods that cannot be placed; None: not known this tick
    pending_pods: tuple[tuple[str, str], ...] | None = ()


def _degraded_cleared(conds: list[Condition], now_s: str, gen: int | None) -> list[Condition]:
    """Degraded once nothing degrades this tick: a failed apply or an infeasible SLO is over
    as soon as a tick applies and meets the SLO again; a rollback stays reported until the
    next switch completes."""
    cur = get_condition(conds, "Degraded")
    if cur is None:
        return set_condition(conds, "Degraded", False, "AsExpected", "", now_s, gen)
    if cur.status == "True" and cur.reason in ("ApplyFailed", "SLOInfeasible"):
        what = "applies succeed" if cur.reason == "ApplyFailed" else "the SLO is met"
        return set_condition(conds, "Degraded", False, "AsExpected", f"{what} again", now_s, gen)
    return conds


def build_status(old: ModelDeploymentStatus, r: TickResult) -> ModelDeploymentStatus:
    now_s = rfc3339(r.now)
    d = r.decision
    conds = list(old.conditions)
    gen = r.generation

    if r.step is not None:
        state = r.step.state
        rollout = rollout_status(state)
        active = state.active
        switches = list(old.last_switches)
        variant_since = old.variant_since
        if r.step.switch is not None:
            sw = r.step.switch
            switches = [
                SwitchRecord(
                    from_variant=sw.from_variant,
                    to_variant=sw.to_variant,
                    at=now_s,
                    reason=sw.reason[:1024],
                    outcome=sw.outcome,
                ),
                *switches,
            ][:MAX_SWITCHES]
            variant_since = now_s  # a rollback restarts the dwell too: no immediate retry
    else:
        rollout, active, switches, variant_since = (
            old.rollout,
            old.active_variant,
            list(old.last_switches),
            old.variant_since,
        )

    phase = rollout.phase
    serving = next((e for e in d.evaluations if e.name == active), None)
    replicas = d.replicas if d.variant == active else (serving.replicas if serving else None)
    if r.step is not None and active is not None:
        replicas = r.step.fleet.replicas.get(active, replicas)

    if r.mode == "Recommend":
        conds = set_condition(
            conds,
            "Ready",
            True,
            "Recommending",
            f"recommending {d.best}; workloads untouched (mode: Recommend)",
            now_s,
            gen,
        )
        conds = set_condition(
            conds, "Progressing", False, "Stable", "Recommend mode: no rollout", now_s, gen
        )
    else:
        if active is None:
            conds = set_condition(
                conds,
                "Ready",
                False,
                "NoVariantServing",
                rollout.message or "first rollout in progress",
                now_s,
                gen,
            )
        elif not d.slo_met:
            conds = set_condition(
                conds,
                "Ready",
                False,
                "SLOInfeasible",
                d.reasons[0] if d.reasons else "",
                now_s,
                gen,
            )
        else:
            conds = set_condition(conds, "Ready", True, "Serving", f"serving {active}", now_s, gen)
        if phase == "Stable":
            scaling = d.action == "scale"
            conds = set_condition(
                conds,
                "Progressing",
                scaling,
                "Scaling" if scaling else "Stable",
                "; ".join(d.reasons)[:1024] if scaling else f"stable on {active}",
                now_s,
                gen,
            )
        else:
            conds = set_condition(
                conds, "Progressing", True, "RollingOut", rollout.message, now_s, gen
            )

    rolled_back = (
        r.step is not None and r.step.switch is not None and r.step.switch.outcome == "rolledBack"
    )
    if r.apply_error:
        conds = set_condition(conds, "Degraded", True, "ApplyFailed", r.apply_error, now_s, gen)
    elif rolled_back:
        assert r.step is not None and r.step.switch is not None
        conds = set_condition(
            conds,
            "Degraded",
            True,
            "RolledBack",
            f"rolled back from {r.step.switch.to_variant}: {r.step.switch.reason}",
            now_s,
            gen,
        )
    elif not d.slo_met:
        conds = set_condition(
            conds, "Degraded", True, "SLOInfeasible", d.reasons[0] if d.reasons else "", now_s, gen
        )
    elif r.step is not None and r.step.switch is not None and r.step.switch.outcome == "completed":
        conds = set_condition(
            conds,
            "Degraded",
            False,
            "AsExpected",
            f"switched to {r.step.switch.to_variant}",
            now_s,
            gen,
        )
    else:
        conds = _degraded_cleared(conds, now_s, gen)

    conds = _slo_reachable(conds, d, now_s, gen)
    if not r.prometheus_configured:
        conds = set_condition(
            conds,
            "MetricsAvailable",
            False,
            "NoPrometheus",
            "no Prometheus configured: deciding on priors (spec.traffic.expectedRequestsPerSecond)",
            now_s,
            gen,
        )
    elif r.metrics_problem:
        conds = set_condition(
            conds, "MetricsAvailable", False, "MetricsUnavailable", r.metrics_problem, now_s, gen
        )
    else:
        conds = set_condition(conds, "MetricsAvailable", True, "MetricsFresh", "", now_s, gen)
    conds = set_condition(conds, "SpecValid", True, "Valid", "", now_s, gen)
    conds = _cleared_or_set_conflict(conds, r.conflict, r.collision, now_s, gen)
    conds = _capacity_pending(conds, r.pending_pods, now_s, gen)
    if (error := get_condition(conds, "ReconcileError")) is not None and error.status == "True":
        conds = set_condition(conds, "ReconcileError", False, "Reconciled", "", now_s, gen)

    scale_down = (
        ScaleDownIntent(since=rfc3339(d.scale_down.since), replicas=d.scale_down.replicas)
        if d.scale_down
        else None
    )
    return ModelDeploymentStatus(
        observed_generation=gen,
        phase=phase,
        active_variant=active,
        target_variant=(rollout.target or d.best) if r.mode != "Recommend" else d.best,
        replicas=replicas,
        hourly_cost=usd(serving.hourly_cost_usd) if serving else None,
        net_value_per_hour=usd(serving.net_value_per_hour_usd) if serving else None,
        observed=r.observed,
        frontier=[variant_row(e) for e in d.evaluations],
        decision=DecisionStatus(
            variant=d.variant if r.mode != "Recommend" else d.best,
            replicas=d.replicas
            if r.mode != "Recommend"
            else next(e.replicas for e in d.evaluations if e.name == d.best),
            action=d.action,
            reasons=list(d.reasons),
            at=now_s,
        ),
        rollout=rollout,
        conditions=conds,
        last_switches=switches,
        capacity_corrections=r.capacity_corrections,
        variant_since=variant_since,
        scale_down=scale_down,
    )


def _slo_reachable(
    conds: list[Condition], d: Decision, now_s: str, gen: int | None
) -> list[Condition]:
    """SLOUnreachable: True with the decision's reason when no variant is feasible at the
    load (decide() then runs the one with the highest net value it can deliver)."""
    if any(e.feasible for e in d.evaluations):
        if get_condition(conds, "SLOUnreachable") is None:
            return conds
        return set_condition(conds, "SLOUnreachable", False, "SLOReachable", "", now_s, gen)
    why = next((x for x in d.reasons if x.startswith("no variant meets")), None)
    message = why or "; ".join(f"{e.name}: {e.reason}" for e in d.evaluations)
    return set_condition(
        conds, "SLOUnreachable", True, "NoVariantMeetsSLO", message[:1024], now_s, gen
    )


def _cleared_or_set_conflict(
    conds: list[Condition], conflict: str | None, collision: bool, now_s: str, gen: int | None
) -> list[Condition]:
    """ResourceConflict True with the message, or False once resolved (absent if never set)."""
    if conflict is not None:
        reason = "NameCollision" if collision else "NotOwned"
        return set_condition(conds, "ResourceConflict", True, reason, conflict, now_s, gen)
    old = get_condition(conds, "ResourceConflict")
    if old is not None and old.status == "True":
        return set_condition(conds, "ResourceConflict", False, "NoConflict", "", now_s, gen)
    return conds


def _capacity_pending(
    conds: list[Condition],
    pending: tuple[tuple[str, str], ...] | None,
    now_s: str,
    gen: int | None,
) -> list[Condition]:
    """CapacityPending True naming the pods the scheduler cannot place (e.g. the GPU pool is
    exhausted), False once none is left (absent if never set); unchanged when not known."""
    if pending is None:
        return conds
    if pending:
        shown = "; ".join(f"{pod}: {why}" if why else pod for pod, why in pending[:10])
        more = f" (and {len(pending) - 10} more)" if len(pending) > 10 else ""
        message = f"{len(pending)} pod(s) Pending, unschedulable: {shown}{more}"
        return set_condition(
            conds, "CapacityPending", True, "Unschedulable", message[:4096], now_s, gen
        )
    old = get_condition(conds, "CapacityPending")
    if old is not None and old.status == "True":
        return set_condition(conds, "CapacityPending", False, "AllScheduled", "", now_s, gen)
    return conds


def reconcile_error_status(
    old: ModelDeploymentStatus, timed_out: bool, message: str, now: float, generation: int | None
) -> ModelDeploymentStatus:
    """The reconcile failed or timed out: say so, keep everything else."""
    conds = set_condition(
        list(old.conditions),
        "ReconcileError",
        True,
        "TimedOut" if timed_out else "ReconcileFailed",
        message[:4096],
        rfc3339(now),
        generation,
    )
    return old.model_copy(update={"conditions": conds})


def invalid_spec_status(
    old: ModelDeploymentStatus, problems: list[str], now: float, generation: int | None
) -> ModelDeploymentStatus:
    """The spec cannot be used: say why, keep everything else (workloads untouched)."""
    conds = set_condition(
        list(old.conditions),
        "SpecValid",
        False,
        "InvalidSpec",
        "; ".join(problems)[:4096],
        rfc3339(now),
        generation,
    )
    return old.model_copy(update={"conditions": conds, "observed_generation": generation})


def scale_down_of(status: ModelDeploymentStatus) -> ScaleDown | None:
    if status.scale_down is None:
        return None
    since = parse_time(status.scale_down.since)
    return ScaleDown(since or 0.0, status.scale_down.replicas)


def recently_failed(
    status: ModelDeploymentStatus, now: float, min_dwell_s: float
) -> dict[str, str]:
    """Variants not to be tried again yet, with why (from lastSwitches): the tick's rule
    (tick/tick.py `recently_failed`, with `min_dwell_s` as its retry interval), read from the
    status."""
    rolled = tuple(
        RolledBack(sw.to_variant, at, sw.reason)
        for sw in status.last_switches
        if sw.outcome == "rolledBack" and (at := parse_time(sw.at)) is not None
    )
    return tick_recently_failed(rolled, now, min_dwell_s)


def comparable(status: ModelDeploymentStatus) -> dict[str, object]:
    """The status without the fields that move every tick (decision time, observed at)."""
    doc = status.model_dump(by_alias=True, exclude_none=True)
    doc.get("decision", {}).pop("at", None)
    doc.get("observed", {}).pop("at", None)
    return doc
