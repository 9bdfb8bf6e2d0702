"""The profiling planner (decide/profiling.py): one Job at a time, within the GPU-hour bound,
collected, failed or stopped by the rules of its module docstring; and with_profiles."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from paretoscale.api.status import (
    ProfiledVariant,
    ProfilePointStatus,
    ProfilingJobStatus,
    ProfilingStatus,
)
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.decide.profiling import (
    Collect,
    Fail,
    JobSeen,
    Start,
    Stop,
    Wait,
    default_rates,
    plan_profiling,
    to_profile,
    with_profiles,
)

NOW = 1_000_000.0


def spec(profiling: dict[str, Any] | None = None, gpus: int = 1) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": "m",
            "value": {"perQualityPoint": "1"},
            "slo": {"seconds": 8},
            "gpus": [{"type": "H100", "usdPerHour": "6.88", "available": 8}],
            "variants": [
                {"name": "a", "quality": 0.8, "gpu": {"type": "H100", "count": gpus},
                 "vllm": {"model": "x"}, "parameters": 8_000_000_000},
                {"name": "b", "quality": 0.7, "gpu": {"type": "H100"}, "vllm": {"model": "y"},
                 "profile": [{"requestsPerSecond": 1, "latencySeconds": 2},
                             {"requestsPerSecond": 10, "latencySeconds": 9}]},
            ],
            "profiling": profiling
            or {"enabled": True, "maxGpuHours": 1, "deadlineSeconds": 1800},
        }
    )  # fmt: skip


def running(variant: str = "a", started: float = NOW - 600, reserved: float = 0.5) -> Any:
    return ProfilingStatus(
        running=ProfilingJobStatus(
            variant=variant, job=f"md-profile-{variant}", started_at=started,
            reserved_gpu_hours=reserved,
        )
    )  # fmt: skip


def measured() -> ProfiledVariant:
    points = [ProfilePointStatus(requests_per_second=r, latency_seconds=lat)
              for r, lat in ((2.0, 3.0), (10.0, 6.0), (20.0, 12.0))]  # fmt: skip
    return ProfiledVariant(profile=points, prompt_tokens=1155, output_tokens=211,
                           config_map="md-profile-a", measured_at="t", gpu_hours=0.1)  # fmt: skip


def test_off_by_default_and_bound_required() -> None:
    s = spec({"enabled": False})
    assert to_profile(s, None) == []
    assert plan_profiling(s, None, None, NOW, {}) is None
    with pytest.raises(ValidationError, match="maxGpuHours is required"):
        spec({"enabled": True})


def test_starts_the_variant_without_a_profile_within_the_bound() -> None:
    a = plan_profiling(spec(), None, None, NOW, {"a": 20.0})
    assert a == Start("a", (2.0, 5.0, 10.0, 15.0, 20.0), 100, 1800, 0.5)


def test_waits_when_the_worst_case_does_not_fit() -> None:
    # 2 GPUs x 1800 s = 1 GPU-hour; 0.2 spent already: 1.2 > 1
    a = plan_profiling(spec(gpus=2), ProfilingStatus(gpu_hours_spent=0.2), None, NOW, {})
    assert isinstance(a, Wait) and "maxGpuHours 1" in a.reason


def test_never_two_jobs_and_collects_a_finished_one() -> None:
    st = running()
    assert plan_profiling(spec(), st, JobSeen("a", "Running"), NOW, {}) is None
    done = plan_profiling(spec(), st, JobSeen("a", "Succeeded"), NOW, {})
    assert done == Collect("a", pytest.approx(600 / 3600))


def test_charges_at_most_the_worst_case() -> None:
    st = running(started=NOW - 100_000)
    done = plan_profiling(spec(), st, JobSeen("a", "Succeeded"), NOW, {})
    assert isinstance(done, Collect) and done.gpu_hours == pytest.approx(0.5)


def test_fails_a_failed_or_vanished_job() -> None:
    st = running()
    failed = plan_profiling(spec(), st, JobSeen("a", "Failed", "DeadlineExceeded"), NOW, {})
    assert failed == Fail("a", "DeadlineExceeded", pytest.approx(600 / 3600))
    gone = plan_profiling(spec(), st, None, NOW, {})
    assert gone == Fail("a", "the profiling Job is gone", 0.5)


def test_stops_when_disabled_or_no_longer_wanted() -> None:
    st = running()
    off = spec({"enabled": False})
    stopped = plan_profiling(off, st, JobSeen("a", "Running"), NOW, {})
    assert isinstance(stopped, Stop) and stopped.variant == "a"
    only_b = spec({"enabled": True, "maxGpuHours": 1, "variants": ["b"]})
    assert isinstance(plan_profiling(only_b, st, JobSeen("a", "Running"), NOW, {}), Stop)


def test_done_and_failed_variants_are_not_profiled_again() -> None:
    st = ProfilingStatus(profiles={"a": measured()})
    assert plan_profiling(spec(), st, None, NOW, {}) is None
    assert plan_profiling(spec(), ProfilingStatus(failed={"a": "x"}), None, NOW, {}) is None
    listed = spec({"enabled": True, "maxGpuHours": 1, "variants": ["b"], "rates": [1, 3]})
    assert plan_profiling(listed, st, None, NOW, {}) == Start("b", (1.0, 3.0), 100, 3600, 1.0)


def test_profiling_variants_must_exist_and_rates_be_distinct() -> None:
    with pytest.raises(ValidationError, match="names no variant: zz"):
        spec({"enabled": True, "maxGpuHours": 1, "variants": ["zz"]})
    with pytest.raises(ValidationError, match="distinct"):
        spec({"enabled": True, "maxGpuHours": 1, "rates": [1, 1]})


def test_default_ladder() -> None:
    assert default_rates(40.0) == (4.0, 10.0, 20.0, 30.0, 40.0)
    assert default_rates(0.0)[0] == pytest.approx(0.05)


def test_with_profiles_fills_only_variants_without_one() -> None:
    s = spec()
    st = ProfilingStatus(profiles={"a": measured(), "b": measured()})
    seen = {v.name: v for v in with_profiles(s, st).variants}
    assert [p.requests_per_second for p in seen["a"].profile or []] == [2.0, 10.0, 20.0]
    assert seen["a"].profile_tokens is not None
    assert seen["b"] == s.variants[1]  # the spec's own profile wins
    cap, basis = variant_capacity(seen["a"], 8.0, None, None, "e2e")
    assert basis == "profile" and 10.0 < cap < 20.0
    assert with_profiles(s, None) is s
