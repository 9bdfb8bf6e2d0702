"""The `paretoscale` policy: the operator's own pieces, tick by tick, on Prometheus-like
observations. Nothing here decides; it wires what controller/reconcile.py wires:

1. Observation (decide/types.py): the request rate and tokens per request Prometheus shows
   (observe.py: delayed, windowed, noisy), the live GPU prices, and the capacity
   corrections learned so far (as kept in status).
2. decide(spec, observation, current state) (decide/policy.py): variant and replicas, with
   hysteresis, dwell, payback, scale-down stabilization, and the variants whose rollout was
   rolled back within the last min dwell blocked (`recently_failed`, as status.py derives it
   from lastSwitches).
3. analyze() (rollout/analysis.py) on the target's latency at the SLO percentile and its
   requests in the rate window, then step() (rollout/machine.py): Stable -> Preparing (target
   scaled up, the active one keeps serving) -> Verifying (the Service routes to both, each
   Ready pod a share) -> Switching -> Draining (the old one keeps its replicas for the grace
   period) -> Stable; rollback on timeout or failed analysis. The machine's fleet is what the
   replay's fleet applies; a variant it leaves out keeps its replicas. A completed switch or
   a rollback restarts the dwell (status.py's variantSince).
4. The live correction (decide/corrections.py update_corrections): every variant with a
   latency reading outside the overflow bucket gives (requests/s per reporting replica,
   latency at the SLO percentile) -> corrected_capacity_factor -> EWMA, clamped; used from
   the next tick on, as status carries it. `learn_min_load` > 0 (policy
   `paretoscale:guarded`, a proposal, not what the operator does) learns only from a variant
   loaded at >= that share of its declared capacity at the SLO with >= 20 requests in the
   window: at low load the latency hardly moves with load, and a quantile interpolated inside
   a wide vLLM bucket then reads as a large change in capacity.
Both variants run, and cost, from Preparing to the end of Draining: the cut-over cost.
Like every policy, it starts with a warm fleet: its first choice is Stable and Ready at the
first tick (`--cold-start` takes that first rollout through the machine instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.corrections import update_corrections
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, Observation, ScaleDown
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.observe import PromView
from paretoscale.replay.policies import TickInput, declared_capacity_rps
from paretoscale.rollout.analysis import analyze
from paretoscale.rollout.machine import RolloutState, VariantFacts, step

MIN_LEARN_REQUESTS = 20.0


@dataclass(frozen=True)
class OperatorMemory:
    """What the operator keeps in the ModelDeployment's status between ticks."""

    rollout: RolloutState = field(default_factory=RolloutState)
    desired: dict[str, int] = field(default_factory=dict)  # replicas applied per variant
    variant_since: float | None = None
    scale_down: ScaleDown | None = None
    corrections: dict[str, float] = field(default_factory=dict)
    rolled_back: tuple[tuple[str, float, str], ...] = ()  # (variant, at [s], why)
    switches: int = 0
    rollbacks: int = 0


@dataclass(frozen=True)
class Paretoscale:
    """The operator, as controller/reconcile.py runs it, in Auto mode."""

    spec: ModelDeploymentSpec
    label: str = "paretoscale"
    correction: bool = True
    learn_min_load: float = 0.0
    cold_start: bool = False

    @property
    def name(self) -> str:
        return self.label

    @property
    def needs_histograms(self) -> bool:
        return True

    def decide(self, tick: TickInput) -> FleetTarget:
        spec, now, view = self.spec, tick.now_s, tick.view
        m = tick.memory if isinstance(tick.memory, OperatorMemory) else OperatorMemory()
        names = [v.name for v in spec.variants]
        q = spec.slo.percentile / 100.0
        latency = {n: view.latency_reading(i, q) for i, n in enumerate(names)}
        facts = {
            n: VariantFacts(desired=m.desired.get(n, 0), ready=tick.ready[i])
            for i, n in enumerate(names)
            if n in m.desired
        }
        state0 = m.rollout
        active = facts.get(state0.active or "", VariantFacts())
        dwell = spec.rollout.min_dwell_seconds
        current = CurrentState(
            active=state0.active,
            replicas=active.desired,
            variant_since=m.variant_since,
            scale_down=m.scale_down,
            rollout_in_progress=state0.phase != "Stable",
            pods_loading=active.ready < active.desired,
            recently_failed={v: why for v, at, why in m.rolled_back if now - at < dwell},
        )
        obs = Observation(
            at=now,
            requests_per_s=view.rate_rps(),
            tokens_per_request=view.tokens_per_request(),
            usd_per_gpu_hour=dict(tick.prices),
            capacity_factors=dict(m.corrections),
        )
        decision = decide(spec, obs, current)
        if tick.memory is None and not self.cold_start:
            return self._running_before(decision.variant, decision.replicas, now)
        target = state0.target or ""
        target_i = names.index(target) if target in names else None
        target_latency = latency.get(target)
        verdict = analyze(
            target,
            target_latency[0] if target_latency else None,
            spec.slo.seconds,
            f"p{spec.slo.percentile:g} {spec.slo.latency}",
            view.requests_in_window(target_i) if target_i is not None else None,
            None,
        )
        result = step(state0, decision, facts, verdict, spec.rollout, now)
        desired = {**m.desired, **result.fleet.replicas}
        variant_since, rolled_back = m.variant_since, m.rolled_back
        switches, rollbacks = m.switches, m.rollbacks
        if result.switch is not None:
            variant_since = now
            if result.switch.outcome == "rolledBack":
                rollbacks += 1
                rolled_back = (
                    *rolled_back[-7:],
                    (result.switch.to_variant, now, result.switch.reason),
                )
            elif result.switch.from_variant is not None:
                switches += 1
        corrections = m.corrections
        if self.correction:
            per_replica = {}
            for i, n in enumerate(names):
                rate, lat = view.rate_per_replica_rps(i), latency[n]
                if rate is None or lat is None or lat[1] or not self._learns(view, i, rate):
                    continue
                per_replica[n] = (rate, lat[0])
            corrections = update_corrections(spec, m.corrections, per_replica)
        memory = OperatorMemory(
            rollout=result.state,
            desired=desired,
            variant_since=variant_since,
            scale_down=decision.scale_down,
            corrections=corrections,
            rolled_back=rolled_back,
            switches=switches,
            rollbacks=rollbacks,
        )
        return FleetTarget(desired, result.fleet.service, "pods", memory)

    def _learns(self, view: PromView, i: int, rate_rps: float) -> bool:
        """Whether variant i's reading may correct it: as the operator does (controller/
        observing.py), only with no request waiting (a backlog is an earlier load's latency);
        learn_min_load adds the ablation's load floor (see the module docstring)."""
        waiting = view.waiting_total(i)
        if waiting is None or waiting >= 1:
            return False
        if self.learn_min_load <= 0:
            return True
        v = self.spec.variants[i]
        enough = (view.requests_in_window(i) or 0.0) >= MIN_LEARN_REQUESTS
        return enough and rate_rps >= self.learn_min_load * declared_capacity_rps(self.spec, v)

    def _running_before(self, variant: str, replicas: int, now_s: float) -> FleetTarget:
        """The first tick: the operator ran before the replay, so its first choice is
        already Stable and Ready, like every other policy's warm fleet (`cold_start` instead
        takes the first rollout through the machine, verification included)."""
        memory = OperatorMemory(
            rollout=RolloutState("Stable", variant, message="running before the replay"),
            desired={variant: replicas},
            variant_since=now_s,
        )
        return FleetTarget({variant: replicas}, (variant,), "pods", memory)
