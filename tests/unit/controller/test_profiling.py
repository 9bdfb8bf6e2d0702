"""controller/profiling.py without an API: a Job's phase from its conditions, the status
record of a variant's result files, and disabled profiling forgetting its failures."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from paretoscale.api.status import ProfilingStatus
from paretoscale.controller.profiling import collected, job_seen, profile_step
from paretoscale.errors import ProfileError

from ..decide.test_profiling import spec


def job(*conditions: tuple[str, str]) -> SimpleNamespace:
    conds = [SimpleNamespace(type=t, status=s, reason="R", message="m") for t, s in conditions]
    return SimpleNamespace(status=SimpleNamespace(conditions=conds))


def test_job_phase_from_its_conditions() -> None:
    assert job_seen(job(), "a").phase == "Running"
    assert job_seen(job(("Complete", "True")), "a").phase == "Succeeded"
    failed = job_seen(job(("Failed", "True")), "a")
    assert failed.phase == "Failed" and "R: m" in failed.message
    assert job_seen(job(("Failed", "False")), "a").phase == "Running"


def result(rate: float, p95_ms: float) -> str:
    return json.dumps({"request_rate": rate, "completed": 10, "failed": 0,
                       "total_input_tokens": 1000, "total_output_tokens": 200,
                       "p95_e2el_ms": p95_ms})  # fmt: skip


def test_collected_parses_the_files_as_paretoscale_profile_does() -> None:
    files = {"rate-4.json": result(4, 5000), "rate-1.json": result(1, 2000)}
    rec = collected(spec(), "a", files, "md-profile-a", "2026-01-01T00:00:00Z", 0.1)
    assert [(p.requests_per_second, p.latency_seconds) for p in rec.profile] == [
        (1.0, 2.0),
        (4.0, 5.0),
    ]
    assert (rec.prompt_tokens, rec.output_tokens) == (100.0, 20.0)
    with pytest.raises(ProfileError, match="need 2"):
        collected(spec(), "a", {"rate-1.json": result(1, 2000)}, "cm", "t", 0.1)


def test_disabled_profiling_forgets_failures_without_calling_the_api() -> None:
    old = ProfilingStatus(gpu_hours_spent=0.3, failed={"a": "boom"})
    body = {"metadata": {"name": "md", "namespace": "ns", "uid": "u"}}
    off = spec({"enabled": False})
    new = asyncio.run(profile_step(None, body, off, old, None, 0.0, lambda *e: None))  # type: ignore[arg-type]
    assert new == ProfilingStatus(gpu_hours_spent=0.3)


def test_a_variant_over_the_bound_waits_and_says_why() -> None:
    kube = SimpleNamespace(api=None, may_write=lambda: True, timeout_s=1.0)
    body = {"metadata": {"name": "md", "namespace": "ns", "uid": "u"}}
    old = ProfilingStatus(gpu_hours_spent=0.9)  # + 1 GPU x 1800 s > maxGpuHours 1
    new = asyncio.run(profile_step(kube, body, spec(), old, None, 0.0, lambda *e: None))  # type: ignore[arg-type]
    assert new is not None and new.running is None and new.gpu_hours_spent == 0.9
    assert new.waiting is not None and "maxGpuHours 1" in new.waiting
