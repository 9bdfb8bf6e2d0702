"""How long one decision and one whole tick take: 8 variants, and 1,000 ModelDeployments.

Prints medians, and ratios against a baseline measured in the same process (validating the
same spec with pydantic, which the operator does once per object anyway). `tick()` is what
the operator runs per ModelDeployment and tick (decide + saturation guard + forecast + rollout
step + correction), on a serving fleet with live signals. Target: under 1 ms per tick. Nothing is asserted.

    python bench/decide.py            # medians of 200 repeats, 1,000 objects x 5
    python bench/decide.py --quick    # a few repeats (CI: checks the benchmark runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.policy import decide
from paretoscale.decide.types import CurrentState, LatencyReading, Observation, VariantSignals
from paretoscale.rollout.machine import RolloutState, VariantFacts
from paretoscale.tick.memory import TickMemory
from paretoscale.tick.tick import tick

ROOT = Path(__file__).parents[1]


def eight_variant_spec() -> dict[str, object]:
    doc = yaml.safe_load((ROOT / "examples" / "assistant-llama-8b.yaml").read_text())
    spec = doc["spec"]
    extra = []
    for v in spec["variants"]:
        w = yaml.safe_load(yaml.safe_dump(v))
        w["name"] = v["name"] + "-b"
        w["quality"] = round(v["quality"] - 0.005, 3)
        extra.append(w)
    spec["variants"] += extra
    assert len(spec["variants"]) == 8
    return dict(spec)


def median_s(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    p.add_argument("--quick", action="store_true", help="few repeats, seconds (CI)")
    args = p.parse_args()
    repeat, fleet_repeat = (5, 1) if args.quick else (200, 5)
    raw = eight_variant_spec()
    spec = ModelDeploymentSpec.model_validate(raw)
    state = CurrentState(active="fp8", replicas=2, variant_since=0.0)
    rates = [0.0, 3.0, 12.0, 30.0, 80.0]

    def one() -> None:
        for r in rates:
            decide(spec, Observation(at=7200.0, requests_per_s=r), state)

    def baseline() -> None:
        for _ in rates:
            ModelDeploymentSpec.model_validate(raw)

    specs = [spec] * 1000

    def thousand() -> None:
        for i, s in enumerate(specs):
            decide(s, Observation(at=7200.0, requests_per_s=float(i % 90)), state)

    memory = TickMemory(rollout=RolloutState("Stable", "fp8"), variant_since=0.0, replicas=2)
    facts = {"fp8": VariantFacts(2, 2)}
    signals = {"fp8": VariantSignals(requests_per_s=12.0, requests_per_replica_s=6.0,
                                     requests_in_window=720.0, waiting=0.0,
                                     running=8.0, kv_cache_usage=0.4,
                                     latency=LatencyReading(3.1, 2.5, 5.0))}  # fmt: skip

    def ticks() -> None:
        m = memory
        for i, r in enumerate(rates):
            now = 7200.0 + 30.0 * i
            obs = Observation(at=now, requests_per_s=r, variants=signals)
            m = tick(spec, m, obs, facts, now).memory

    one()
    ticks()
    per_tick = median_s(ticks, repeat) / len(rates)
    per_decision = median_s(one, repeat) / len(rates)
    per_validate = median_s(baseline, repeat) / len(rates)
    fleet = median_s(thousand, fleet_repeat)
    print(f"python {sys.version.split()[0]}")
    print(f"one decision, 8 variants:        median {per_decision * 1e3:.3f} ms  (target < 1 ms)")
    print(f"one tick, 8 variants:            median {per_tick * 1e3:.3f} ms  (target < 1 ms)")
    print(f"baseline, validate the spec:     median {per_validate * 1e3:.3f} ms")
    print(f"ratio decision / validation:     {per_decision / per_validate:.2f}x")
    print(f"1,000 ModelDeployments decided:  median {fleet * 1e3:.1f} ms "
          f"({fleet / 1000 * 1e3:.3f} ms each, {fleet / (per_decision * 1000):.2f}x of 1,000 single decisions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
