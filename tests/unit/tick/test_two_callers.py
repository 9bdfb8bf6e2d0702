"""The operator and the replay run one tick: the same world, read by each caller's input
builder (controller/observing.py operator_inputs from a metrics snapshot and the status; the
replay's replay_inputs from its Prometheus view and its memory), gives the same inputs and
the same outcome. If either builder or either caller grows logic of its own, this fails."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.status import ModelDeploymentStatus, ScaleDownIntent, SwitchRecord
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.config import OperatorSettings
from paretoscale.controller.memory import with_memory
from paretoscale.controller.observing import operator_inputs, tick_options
from paretoscale.controller.status import rfc3339, rollout_status
from paretoscale.decide.learned import LearnedProfile, Sample, factors
from paretoscale.decide.saturation import SaturationMemory
from paretoscale.decide.types import ScaleDown
from paretoscale.observe.snapshot import Histogram, MetricsSnapshot, VariantKey, VariantMetrics
from paretoscale.replay.observe import PromView, Scrapes
from paretoscale.replay.operator_policy import OperatorMemory, Paretoscale, replay_inputs
from paretoscale.replay.perf import BUCKETS_S
from paretoscale.replay.policies import TickInput
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import RolledBack, TickMemory
from paretoscale.tick.tick import tick

EXAMPLE = Path(__file__).parents[3] / "examples" / "llama-70b-speculative.yaml"
TICK_S = 32.0  # a power of two, so rates over the 128 s window are exact in both readings
WINDOW = 4
NOW_TICK = 10
NOW = 1_000_000 + NOW_TICK * TICK_S  # whole seconds: status times are RFC 3339 seconds


@pytest.fixture(scope="module")
def spec() -> ModelDeploymentSpec:
    return parse_manifests(EXAMPLE.read_text(), str(EXAMPLE))[0].spec


@dataclass(frozen=True)
class Serving:
    """What one variant's replicas show in every tick of the rate window."""

    ready: int
    completions: int  # per tick
    itl_counts: tuple[int, ...]  # per tick, per ITL bucket (the last is +Inf)
    waiting_per_replica: float = 0.0
    running_per_replica: float = 3.0
    kv: float = 0.3
    prompt_tokens: int = 1000  # per request
    output_tokens: int = 200


@dataclass(frozen=True)
class World:
    memory: TickMemory
    desired: dict[str, int]
    serving: dict[str, Serving] = field(default_factory=dict)


def _counts(*pairs: tuple[float, int]) -> tuple[int, ...]:
    """Per-bucket counts of the ITL histogram from (bucket upper edge, count) pairs."""
    edges = BUCKETS_S["itl"]
    out = [0] * (len(edges) + 1)
    for edge, n in pairs:
        out[edges.index(edge) if math.isfinite(edge) else len(edges)] += n
    return tuple(out)


def replay_view(spec: ModelDeploymentSpec, w: World) -> tuple[PromView, tuple[int, ...]]:
    names = [v.name for v in spec.variants]
    scrapes = Scrapes(NOW_TICK + 1, len(names), BUCKETS_S["itl"], True, seed=0)
    scrapes.rate_noise[:] = 1.0
    scrapes.has_prompt_tokens = True
    for name, s in w.serving.items():
        v = names.index(name)
        for k in range(NOW_TICK - 1 - WINDOW, NOW_TICK - 1):
            scrapes.completions[k, v] = scrapes.arrivals[k, v] = s.completions
            scrapes.ready[k, v] = s.ready
            scrapes.tokens[k, v] = s.completions * (s.prompt_tokens + s.output_tokens)
            scrapes.prompt_tokens[k, v] = s.completions * s.prompt_tokens
            scrapes.kv[k, v] = s.kv
            scrapes.waiting[k, v] = s.waiting_per_replica
            scrapes.running[k, v] = s.running_per_replica
            assert scrapes.hist is not None
            scrapes.hist[k, v] = s.itl_counts
    view = PromView(scrapes, NOW_TICK, TICK_S, 1, WINDOW, 0.0)
    ready = tuple(w.serving[n].ready if n in w.serving else 0 for n in names)
    return view, ready


def snapshot(w: World) -> MetricsSnapshot:
    window_s = WINDOW * TICK_S
    variants = {}
    for name, s in w.serving.items():
        cumulative = list(itertools.accumulate(WINDOW * c / window_s for c in s.itl_counts))
        rps = WINDOW * s.completions / window_s
        variants[VariantKey("llm", "llama-70b-chat", name)] = VariantMetrics(
            requests_per_s=rps,
            latency={"itl": Histogram((*BUCKETS_S["itl"], math.inf), tuple(cumulative))},
            prompt_tokens_per_s=rps * s.prompt_tokens,
            generation_tokens_per_s=rps * s.output_tokens,
            waiting=s.waiting_per_replica * s.ready,
            running=s.running_per_replica * s.ready,
            kv_cache_usage=s.kv,
            replicas_reporting=s.ready,
            aborted_per_s=0.0,
            errored_per_s=0.0,
            queue_growth_per_s=0.0,
            finished_total=WINDOW * s.completions,  # it started serving at the window's start
            errors_total=0.0,
            aborts_total=0.0,
        )
    return MetricsSnapshot(NOW, None, variants, {}, queries_run=12)


def status(m: TickMemory) -> ModelDeploymentStatus:
    """The status an operator that ran until now would hold for memory m."""
    switches = [
        SwitchRecord(to_variant=r.variant, at=rfc3339(r.at), reason=r.reason, outcome="rolledBack")
        for r in m.rolled_back
    ]
    base = ModelDeploymentStatus(
        rollout=rollout_status(m.rollout),
        active_variant=m.rollout.active,
        variant_since=rfc3339(m.variant_since) if m.variant_since is not None else None,
        capacity_corrections=factors(m.learned),
        last_switches=switches,
        scale_down=ScaleDownIntent(since=rfc3339(m.scale_down.since), replicas=2)
        if m.scale_down
        else None,
    )
    return with_memory(base, m)


CALM = Serving(ready=2, completions=64, itl_counts=_counts((0.01, 100), (0.025, 155), (0.05, 1)))
SLOW = Serving(ready=2, completions=64, itl_counts=_counts((0.025, 200), (0.05, 56)))
FULL = Serving(
    ready=2,
    completions=96,
    itl_counts=_counts((0.025, 300), (0.05, 84)),
    waiting_per_replica=4.0,
    kv=0.95,
)
ON_FP8 = RolloutState("Stable", "fp8", message="serving fp8")
WORLDS = {
    "calm": World(TickMemory(ON_FP8, variant_since=NOW - 3600), {"fp8": 2}, {"fp8": CALM}),
    "scale-down held": World(
        TickMemory(
            ON_FP8,
            variant_since=NOW - 3600,
            scale_down=ScaleDown(NOW - 300, 2),
            saturation=SaturationMemory("fp8", 0, 0, 0.0, 0),
        ),
        {"fp8": 4},
        {"fp8": Serving(ready=4, completions=64, itl_counts=_counts((0.01, 52), (0.05, 12)))},
    ),
    "saturated": World(
        TickMemory(
            ON_FP8,
            variant_since=NOW - 3600,
            # a window of one sample: 0.9 x fp8's declared capacity (status keeps 3 digits)
            learned={"fp8": LearnedProfile(15.0, (Sample(NOW - 600, 12.0, 0.03, 0.9),))},
            saturation=SaturationMemory("fp8", 1, 1, 2.0, 0),
        ),
        {"fp8": 2},
        {"fp8": FULL},
    ),
    "verifying": World(
        TickMemory(
            RolloutState("Verifying", "fp8", "bf16-ngram", 2, NOW - 900, NOW - 60, "verifying"),
            variant_since=NOW - 20000,
            rolled_back=(RolledBack("bf16-draft", NOW - 7200, "not Ready in time"),),
        ),
        {"fp8": 2, "bf16-ngram": 2},
        {"fp8": SLOW, "bf16-ngram": CALM},
    ),
}


@pytest.mark.parametrize("case", list(WORLDS))
def test_operator_and_replay_read_the_same_inputs_and_tick_the_same(
    spec: ModelDeploymentSpec, case: str
) -> None:
    w = WORLDS[case]
    settings = OperatorSettings(
        prometheus_url="http://prometheus:9090", rate_window="128s", tick_seconds=TICK_S
    )
    seen, op_memory = operator_inputs(
        snapshot(w), settings, "llm", "llama-70b-chat", spec, NOW, status(w.memory)
    )
    view, ready = replay_view(spec, w)
    names = [v.name for v in spec.variants]
    replay_memory = OperatorMemory(w.memory, dict(w.desired))
    tick_in = TickInput(
        NOW_TICK, NOW, view, tuple(w.desired.get(n, 0) for n in names), ready, {}, replay_memory
    )
    obs, facts = replay_inputs(spec, tick_in, replay_memory)
    # The cluster as the operator's cache shows it: each Deployment's replicas and Ready ones.
    op_facts = {
        n: VariantFacts(d, w.serving[n].ready if n in w.serving else 0)
        for n, d in w.desired.items()
    }

    assert op_memory == w.memory
    assert facts == op_facts
    assert obs.variants == seen.observation.variants
    assert obs == seen.observation

    options = tick_options(settings, "Auto")
    by_operator = tick(spec, op_memory, seen.observation, op_facts, NOW, options)
    policy = Paretoscale(spec)
    assert policy.options(view.tick_s) == options
    by_replay = tick(spec, w.memory, obs, facts, NOW, policy.options(view.tick_s))
    assert by_operator == by_replay
    target = policy.decide(tick_in)
    assert isinstance(target.memory, OperatorMemory)
    assert target.memory.tick == by_operator.memory
    assert by_operator.step is not None
    assert target.serving == by_operator.step.fleet.service


def test_the_worlds_exercise_what_they_say(spec: ModelDeploymentSpec) -> None:
    """The cases above are not alike: calm, a scale-down held by the guard, a saturated
    variant scaled up at once, a verified target switched to."""
    settings = OperatorSettings(prometheus_url="http://prometheus:9090", rate_window="128s")
    got = {}
    for case, w in WORLDS.items():
        seen, m = operator_inputs(
            snapshot(w), settings, "llm", "llama-70b-chat", spec, NOW, status(w.memory)
        )
        facts = {n: VariantFacts(d, w.serving[n].ready) for n, d in w.desired.items()}
        out = tick(spec, m, seen.observation, facts, NOW)
        assert out.saturation is not None and out.step is not None
        sat = out.saturation
        got[case] = (sat.saturated, sat.calm, out.step.state.phase, out.step.fleet.replicas)
    assert got["calm"] == (False, True, "Stable", {"fp8": 2})
    assert got["scale-down held"] == (False, False, "Stable", {"fp8": 4})
    assert got["saturated"] == (True, False, "Stable", {"fp8": 4})  # 2 -> 4 at once
    assert got["verifying"] == (False, False, "Switching", {"fp8": 2, "bf16-ngram": 2})
