"""The rollout state machine of DESIGN.md, as a pure step function.

    Stable(v) -> Preparing(v->w): w scaled to its target, v untouched
              -> Verifying: w Ready; the Service routes to v and w; w analysed against the SLO
              -> Switching: the Service routes to w only
              -> Draining: v keeps its pods for the grace period, then goes to 0
              -> Stable(w)
    Preparing/Verifying time out or fail analysis -> RollingBack -> Stable(v), Degraded.

Verification is fail-closed (rollout/analysis.py): the Service moves to w only on a
Successful verdict once verifySeconds have passed; Inconclusive (too little traffic) and
Unavailable (metrics or the latency reading missing) wait, and roll back when Verifying has
lasted verify_deadline_s() (verifyTimeoutSeconds) with a reason that says which. A first
rollout (nothing serves yet) moves on readiness unless the analysis failed: rolling back
would leave nothing serving.

`step` maps (state, decision, cluster facts, verdict, now) to the next state and the desired
fleet (replicas per variant and the Service's variants). The shell applies the fleet; every
apply is idempotent, so an operator restart at any phase resumes by stepping again from the
persisted state. One switch at a time: a new target waits for Stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from paretoscale.api.status import Phase
from paretoscale.api.types import RolloutSpec
from paretoscale.decide.types import Decision
from paretoscale.rollout.analysis import Verdict


@dataclass(frozen=True)
class VariantFacts:
    """What the cluster shows for one variant's Deployment."""

    desired: int = 0  # spec.replicas (0 when the Deployment does not exist)
    ready: int = 0  # readyReplicas: loading pods are not counted


@dataclass(frozen=True)
class RolloutState:
    phase: Phase = "Stable"
    active: str | None = None
    target: str | None = None
    target_replicas: int = 0
    started_at: float | None = None
    phase_since: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Fleet:
    """Desired world: replicas per variant (absent = leave as is) and the Service's variants."""

    replicas: Mapping[str, int]
    service: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Switch:
    from_variant: str | None
    to_variant: str
    outcome: Literal["completed", "rolledBack"]
    reason: str


@dataclass(frozen=True)
class Step:
    state: RolloutState
    fleet: Fleet
    events: tuple[Event, ...] = ()
    switch: Switch | None = None


def _keep(facts: Mapping[str, VariantFacts], name: str | None) -> dict[str, int]:
    return {name: facts.get(name, VariantFacts()).desired} if name else {}


def _service(*names: str | None) -> tuple[str, ...]:
    return tuple(n for n in names if n)


def step(
    state: RolloutState,
    decision: Decision,
    facts: Mapping[str, VariantFacts],
    verdict: Verdict,
    rollout: RolloutSpec,
    now: float,
) -> Step:
    """One tick of the machine. See the module docstring."""
    v, w = state.active, state.target
    since = state.phase_since if state.phase_since is not None else now
    started = state.started_at if state.started_at is not None else now

    if state.phase == "Stable":
        if decision.action == "switch" and decision.variant != v:
            w, n = decision.variant, decision.replicas
            nxt = RolloutState("Preparing", v, w, n, now, now, f"scaling {w} to {n} replicas")
            msg = f"rolling {v or '(nothing)'} -> {w}: {'; '.join(decision.reasons)}"
            return Step(
                nxt,
                Fleet({**_keep(facts, v), w: n}, _service(v or w)),
                (Event("Normal", "RolloutStarted", msg),),
            )
        if v is None:
            return Step(state, Fleet({}, ()))
        replicas = (
            decision.replicas if decision.variant == v else facts.get(v, VariantFacts()).desired
        )
        events: tuple[Event, ...] = ()
        if decision.action == "scale" and facts.get(v, VariantFacts()).desired != replicas:
            events = (Event("Normal", "Scaled", f"{v}: {'; '.join(decision.reasons)}"),)
        return Step(state, Fleet({v: replicas}, (v,)), events)

    assert w is not None, f"phase {state.phase} without a target"
    n = state.target_replicas

    def rollback(why: str) -> Step:
        back = RolloutState("Stable", v, None, 0, None, now, f"rolled back from {w}: {why}")
        fleet = Fleet({**_keep(facts, v), w: 0}, _service(v))
        return Step(
            back,
            fleet,
            (Event("Warning", "RolledBack", f"{w} -> {v}: {why}"),),
            Switch(v, w, "rolledBack", why),
        )

    if state.phase in ("Preparing", "Verifying") and w not in {
        e.name for e in decision.evaluations
    }:
        return rollback(f"variant {w} was removed from spec")
    if state.phase == "RollingBack":
        return rollback(state.message or "rollback resumed")

    if state.phase == "Preparing":
        ready = facts.get(w, VariantFacts()).ready
        if ready >= n:
            nxt = replace(
                state,
                phase="Verifying",
                phase_since=now,
                message=f"{w} Ready ({ready}/{n}); verifying",
            )
            return Step(nxt, Fleet({**_keep(facts, v), w: n}, _service(v, w)))
        if now - started > rollout.ready_timeout_seconds:
            return rollback(
                f"{w} not Ready after {rollout.ready_timeout_seconds}s ({ready}/{n} Ready)"
            )
        nxt = replace(state, message=f"waiting for {w}: {ready}/{n} Ready")
        return Step(nxt, Fleet({**_keep(facts, v), w: n}, _service(v)))

    if state.phase == "Verifying":
        if verdict.outcome == "Failed":
            return rollback(f"verification failed: {verdict.message}")
        # Fail-closed: only a successful analysis moves the Service, except on a first
        # rollout (nothing serves, so nothing to go back to: readiness suffices).
        passed = verdict.outcome == "Successful" or v is None
        if now - since >= rollout.verify_seconds and passed:
            nxt = replace(
                state,
                phase="Switching",
                phase_since=now,
                message=f"routing to {w} ({verdict.message})",
            )
            return Step(nxt, Fleet({**_keep(facts, v), w: n}, (w,)))
        deadline = verify_deadline_s(rollout)
        if now - since >= deadline:
            return rollback(
                f"verification timed out after {deadline}s: {_why(verdict)} ({verdict.message})"
            )
        waiting = "waiting for metrics: " if verdict.outcome == "Unavailable" else ""
        nxt = replace(state, message=f"verifying {w}: {waiting}{verdict.message}")
        return Step(nxt, Fleet({**_keep(facts, v), w: n}, _service(v, w)))

    if state.phase == "Switching":
        if v is None:
            return _completed(state, w, n, now, facts)
        nxt = replace(state, phase="Draining", phase_since=now, message=f"draining {v}")
        return Step(nxt, Fleet({**_keep(facts, v), w: n}, (w,)))

    # Draining
    if now - since < rollout.drain_grace_seconds:
        return Step(state, Fleet({**_keep(facts, v), w: n}, (w,)))
    return _completed(state, w, n, now, facts)


def verify_deadline_s(rollout: RolloutSpec) -> int:
    """How long Verifying may last without a successful analysis before it rolls back:
    verifyTimeoutSeconds, at least verifySeconds."""
    return max(rollout.verify_timeout_seconds, rollout.verify_seconds)


def _why(verdict: Verdict) -> str:
    """What kept the target from passing, in a few words."""
    if verdict.why:
        return verdict.why
    return "no metrics" if verdict.outcome == "Unavailable" else "no successful analysis"


def _completed(
    state: RolloutState, w: str, n: int, now: float, facts: Mapping[str, VariantFacts]
) -> Step:
    v = state.active
    done = RolloutState("Stable", w, None, 0, None, now, f"serving {w}")
    fleet = Fleet({**({v: 0} if v else {}), w: n}, (w,))
    return Step(
        done,
        fleet,
        (Event("Normal", "Switched", f"{v or '(nothing)'} -> {w} completed"),),
        Switch(v, w, "completed", state.message),
    )
