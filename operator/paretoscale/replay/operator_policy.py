"""The `paretoscale` policy: the operator's own tick (tick/tick.py), tick by tick, on
Prometheus-like observations. Nothing here decides; like controller/reconcile.py, it only
builds the tick's inputs and applies its outcome:

1. `replay_inputs` turns what the replay's Prometheus shows (observe.py's PromView: delayed,
   windowed, noisy) into the tick's Observation: the request rate, arrivals, aborted requests
   and the token mix (prompt and output tokens per request), the live GPU prices, the
   capacity factors of the profiles learned so far (decide/learned.py), and, per variant
   with Ready replicas or requests in the window, its signals (completions per Ready
   replica-second, requests in the window, latency at the SLO percentile with its bucket
   and, where the SLO is a bucket edge, the share of requests within it, requests waiting
   and running and the KV-cache usage at the last scrape, requests finished and aborted
   since its replicas started, none failed); and the cluster facts: per variant the
   replicas last applied (the Deployment's spec.replicas) and the Ready ones.
2. `tick()` does the rest, exactly as in the operator: saturation guard, forecast floor,
   decide(), rollout analysis and the rollout machine, the learned profiles, the memory.
3. The machine's fleet is what the replay's fleet applies; a variant it leaves out keeps its
   replicas. Both variants run, and cost, from Preparing to the end of Draining.
Ablations switch one piece of the tick off (TickOptions): `paretoscale:no-correction`,
`paretoscale:no-saturation` (no saturation guard), `paretoscale:no-forecast` (no forecast
floor), and `paretoscale:guarded` (`learn_min_load` 0.5: learn only at >= half the declared
capacity with >= 20 requests in the window; a proposal, not what the operator does).
Like every policy, it starts with a warm fleet: its first choice is Stable and Ready at the
first tick (`--cold-start` takes that first rollout through the machine instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.learned import factors
from paretoscale.decide.types import LatencyReading, Observation, VariantSignals
from paretoscale.replay.fleet import FleetTarget
from paretoscale.replay.policies import TickInput
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import TickMemory, TickOptions
from paretoscale.tick.tick import tick


@dataclass(frozen=True)
class OperatorMemory:
    """The tick's memory, plus what the replay's fleet needs and counts."""

    tick: TickMemory = field(default_factory=TickMemory)
    desired: dict[str, int] = field(default_factory=dict)  # replicas applied per variant
    switches: int = 0
    rollbacks: int = 0

    @property
    def rollout(self) -> RolloutState:
        return self.tick.rollout

    @property
    def variant_since(self) -> float | None:
        return self.tick.variant_since

    @property
    def corrections(self) -> Mapping[str, float]:
        """The learned capacity factors the next decision uses."""
        return factors(self.tick.learned)

    @property
    def forecast_mape(self) -> float | None:
        return self.tick.forecast.mape


def replay_inputs(
    spec: ModelDeploymentSpec, tick_in: TickInput, memory: OperatorMemory
) -> tuple[Observation, dict[str, VariantFacts]]:
    """The tick's Observation and cluster facts from the replay's view (module docstring)."""
    view = tick_in.view
    q = spec.slo.percentile / 100.0
    variants: dict[str, VariantSignals] = {}
    for i, v in enumerate(spec.variants):
        per_replica, in_window = (
            view.rate_per_replica_rps(i, served=True),
            view.requests_in_window(i),
        )
        if per_replica is None and not in_window:
            continue  # no series: no Ready replica and no request in the window
        found = view.latency_bucket(i, q)
        share = view.share_within(i, spec.slo.seconds)
        counts = view.finished_since_start(i)
        variants[v.name] = VariantSignals(
            requests_per_s=view.rate_rps(i),
            requests_per_replica_s=per_replica,
            requests_in_window=in_window,
            latency=LatencyReading(
                found.value,
                found.lower_edge,
                found.upper_edge,
                share[0] if share else None,
                share[1] if share else None,
            )
            if found is not None
            else None,
            waiting=view.waiting_total(i),
            running=view.running_total(i),
            kv_cache_usage=view.gauge_max(i, "kv", 1),
            finished_total=counts[0] if counts else None,
            errors_total=0.0 if counts else None,  # no request fails in the replay
            aborts_total=counts[1] if counts else None,
        )
    mix = view.token_mix()
    obs = Observation(
        at=tick_in.now_s,
        requests_per_s=view.rate_rps(),
        tokens_per_request=view.tokens_per_request(),
        usd_per_gpu_hour=dict(tick_in.prices),
        capacity_factors=memory.corrections,
        variants=variants,
        arrivals_per_s=view.arrivals_rps(),
        aborted_per_s=view.aborted_rps(),
        rate_window_s=view.window_ticks * view.tick_s,
        prompt_tokens_per_request=mix.prompt_tokens if mix else None,
        output_tokens_per_request=mix.output_tokens if mix else None,
        gpus_available=dict(tick_in.available),
    )
    facts = {
        v.name: VariantFacts(desired=memory.desired.get(v.name, 0), ready=tick_in.ready[i])
        for i, v in enumerate(spec.variants)
        if v.name in memory.desired
    }
    return obs, facts


@dataclass(frozen=True)
class Paretoscale:
    """The operator, as controller/reconcile.py runs it, in Auto mode."""

    spec: ModelDeploymentSpec
    label: str = "paretoscale"
    correction: bool = True
    learn_min_load: float = 0.0
    cold_start: bool = False
    saturation_guard: bool = True
    forecast: bool = True

    @property
    def name(self) -> str:
        return self.label

    @property
    def needs_histograms(self) -> bool:
        return True

    def options(self, tick_s: float) -> TickOptions:
        """The operator's tick options (Auto mode, polled every tick), with this policy's
        ablations."""
        return TickOptions(
            mode="Auto",
            correction=self.correction,
            learn_min_load=self.learn_min_load,
            saturation_guard=self.saturation_guard,
            forecast=self.forecast,
            tick_seconds=tick_s,
        )

    def decide(self, tick_in: TickInput) -> FleetTarget:
        m = tick_in.memory if isinstance(tick_in.memory, OperatorMemory) else OperatorMemory()
        obs, facts = replay_inputs(self.spec, tick_in, m)
        out = tick(self.spec, m.tick, obs, facts, tick_in.now_s, self.options(tick_in.view.tick_s))
        d = out.decision
        if tick_in.memory is None and not self.cold_start:
            # The operator ran before the replay: its first choice is already Stable and
            # Ready, like every other policy's warm fleet.
            first = replace(
                out.memory,
                rollout=RolloutState("Stable", d.variant, message="running before the replay"),
                variant_since=tick_in.now_s,
            )
            memory = OperatorMemory(first, {d.variant: d.replicas})
            return FleetTarget({d.variant: d.replicas}, (d.variant,), "pods", memory)
        assert out.step is not None
        switches, rollbacks = m.switches, m.rollbacks
        sw = out.step.switch
        if sw is not None and sw.outcome == "rolledBack":
            rollbacks += 1
        elif sw is not None and sw.from_variant is not None:
            switches += 1
        desired = {**m.desired, **out.step.fleet.replicas}
        memory = OperatorMemory(out.memory, desired, switches, rollbacks)
        return FleetTarget(desired, out.step.fleet.service, "pods", memory)
