"""In-cluster profiling (spec.profiling), decided: which profiling Job to start, collect, fail
or stop, from the spec, what the status recorded and the Job the cluster shows. Pure.

Rules:
- at most one profiling Job per ModelDeployment at a time;
- a variant is profiled when profiling is enabled, it is listed in spec.profiling.variants
  (default: it has no profile in the spec), and it has neither a profile in the status nor a
  recorded failure (a failure is not retried: fix the cause, then disable profiling, which
  forgets the failures (controller/profiling.py), and enable it again);
- a Job starts only when the GPU-hours spent plus its worst case (GPUs x deadline) fit under
  maxGpuHours; a finished Job is charged its GPUs x the time from its creation to when it
  was seen finished, never more than its worst case (activeDeadlineSeconds ends it there);
- a Job whose variant is no longer to be profiled (profiling disabled, the variant removed
  or given a profile in the spec) is stopped and charged the same way; a Job recorded as
  running but gone from the cluster counts as failed at its worst case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from paretoscale.api.status import ProfilingStatus
from paretoscale.api.types import ModelDeploymentSpec, ProfilePoint, TokenMixSpec, VariantSpec

LADDER = (0.1, 0.25, 0.5, 0.75, 1.0)  # default rates, as shares of the estimated capacity
MIN_RATE = 0.05  # req/s: the least rate a default ladder offers


@dataclass(frozen=True)
class JobSeen:
    """The profiling Job as the cluster shows it."""

    variant: str
    phase: Literal["Running", "Succeeded", "Failed"]
    message: str = ""


@dataclass(frozen=True)
class Start:
    variant: str
    rates: tuple[float, ...]
    requests_per_rate: int
    deadline_s: int
    reserved_gpu_hours: float


@dataclass(frozen=True)
class Collect:
    variant: str
    gpu_hours: float


@dataclass(frozen=True)
class Fail:
    variant: str
    reason: str
    gpu_hours: float


@dataclass(frozen=True)
class Stop:
    variant: str
    reason: str
    gpu_hours: float


@dataclass(frozen=True)
class Wait:
    reason: str


Action = Start | Collect | Fail | Stop | Wait


def to_profile(spec: ModelDeploymentSpec, status: ProfilingStatus | None) -> list[str]:
    """Variants still to profile, in spec order."""
    p = spec.profiling
    if not p.enabled:
        return []
    done = set(status.profiles) | set(status.failed) if status else set()
    chosen = set(p.variants) if p.variants is not None else None
    return [
        v.name
        for v in spec.variants
        if (v.name in chosen if chosen is not None else not v.profile) and v.name not in done
    ]


def worst_case_gpu_hours(variant: VariantSpec, deadline_s: int) -> float:
    return variant.gpu.count * deadline_s / 3600.0


def default_rates(estimate_rps: float) -> tuple[float, ...]:
    """The ladder at shares of an estimated capacity, 3 significant digits, distinct."""
    base = max(estimate_rps, MIN_RATE / LADDER[0])
    return tuple(sorted({float(f"{f * base:.3g}") for f in LADDER}))


def plan_profiling(
    spec: ModelDeploymentSpec,
    status: ProfilingStatus | None,
    job: JobSeen | None,
    now: float,
    estimates: Mapping[str, float],
) -> Action | None:
    """What to do about profiling this tick (None: nothing to do). `estimates`: each
    variant's estimated capacity per replica at the SLO (req/s), for the default ladder."""
    running = status.running if status else None
    variants = {v.name: v for v in spec.variants}
    if job is not None:
        return _about_job(spec, status, job, now)
    if running is not None:
        return Fail(running.variant, "the profiling Job is gone", running.reserved_gpu_hours)
    todo = to_profile(spec, status)
    if not todo:
        return None
    p = spec.profiling
    variant = variants[todo[0]]
    reserve = worst_case_gpu_hours(variant, p.deadline_seconds)
    spent = status.gpu_hours_spent if status else 0.0
    assert p.max_gpu_hours is not None  # required when enabled
    if spent + reserve > p.max_gpu_hours + 1e-9:
        return Wait(
            f"profiling {variant.name} needs up to {reserve:.3g} GPU-hours; "
            f"{spent:.3g} of maxGpuHours {p.max_gpu_hours:g} are spent"
        )
    rates = tuple(p.rates) if p.rates else default_rates(estimates.get(variant.name, 1.0))
    return Start(variant.name, tuple(sorted(rates)), p.requests_per_rate,
                 p.deadline_seconds, reserve)  # fmt: skip


def _about_job(
    spec: ModelDeploymentSpec, status: ProfilingStatus | None, job: JobSeen, now: float
) -> Action | None:
    running = status.running if status else None
    variant = next((v for v in spec.variants if v.name == job.variant), None)
    if running is None or running.variant != job.variant:
        used = worst_case_gpu_hours(variant, spec.profiling.deadline_seconds) if variant else 0.0
        return Stop(job.variant, "a profiling Job this operator did not record", used)
    used = _used(running.started_at, now, running.reserved_gpu_hours, variant, spec)
    if variant is None or job.variant not in to_profile(spec, _without(status, job.variant)):
        return Stop(job.variant, "its variant is no longer to be profiled", used)
    if job.phase == "Succeeded":
        return Collect(job.variant, used)
    if job.phase == "Failed":
        return Fail(job.variant, job.message or "the profiling Job failed", used)
    return None


def _used(
    started_at: float,
    now: float,
    reserved: float,
    variant: VariantSpec | None,
    spec: ModelDeploymentSpec,
) -> float:
    if variant is None:
        return reserved
    elapsed = min(max(0.0, now - started_at), float(spec.profiling.deadline_seconds))
    return min(reserved, variant.gpu.count * elapsed / 3600.0)


def _without(status: ProfilingStatus | None, variant: str) -> ProfilingStatus | None:
    """The status as if `variant` had no result yet (it is the one being profiled)."""
    if status is None:
        return None
    return status.model_copy(
        update={
            "profiles": {k: v for k, v in status.profiles.items() if k != variant},
            "failed": {k: v for k, v in status.failed.items() if k != variant},
        }
    )


def with_profiles(spec: ModelDeploymentSpec, status: ProfilingStatus | None) -> ModelDeploymentSpec:
    """The spec as decide() sees it: a variant without a profile in the spec takes the one
    measured in the cluster (status.profiling.profiles), with its token mix. The spec's own
    profile always wins; the stored spec is never changed."""
    if status is None or not status.profiles:
        return spec
    variants = []
    for v in spec.variants:
        measured = status.profiles.get(v.name)
        if v.profile or measured is None or not measured.profile:
            variants.append(v)
            continue
        points = [
            ProfilePoint(
                requests_per_second=p.requests_per_second, latency_seconds=p.latency_seconds
            )
            for p in measured.profile
        ]
        tokens = v.profile_tokens
        if measured.prompt_tokens and measured.output_tokens and measured.output_tokens >= 1:
            tokens = TokenMixSpec(
                prompt_tokens=measured.prompt_tokens, output_tokens=measured.output_tokens
            )
        variants.append(v.model_copy(update={"profile": points, "profile_tokens": tokens}))
    return spec.model_copy(update={"variants": variants})
