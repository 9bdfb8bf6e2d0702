"""In-cluster profiling, the I/O: read the profiling Job and its results, create and delete
what decide/profiling.py decides, and record it in status.profiling.

One reconcile does at most one thing: start a Job (its results ConfigMap, ServiceAccount, Role
and RoleBinding first; actuate/profiling.py renders them), collect a finished one (its
ConfigMap through profile.py's parser, the same as `paretoscale profile`, into
status.profiling.profiles; the ConfigMap stays for GitOps users to copy into the spec), fail
one, or stop one that is no longer wanted. A finished, failed or stopped Job is deleted with
its pod, ServiceAccount, Role and RoleBinding. Nothing is written over an object of the same
name that this ModelDeployment does not own: the variant's profiling fails, saying so.
Reads the API only while profiling is enabled or a Job is recorded as running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client

from paretoscale.actuate.kube import Kube
from paretoscale.actuate.profiling import (
    account_name,
    profile_name,
    render_access,
    render_job,
    render_results,
    results_of,
)
from paretoscale.actuate.render import FIELD_MANAGER, Owner
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.status import (
    ProfiledVariant,
    ProfilePointStatus,
    ProfilingJobStatus,
    ProfilingStatus,
)
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.controller.status import rfc3339
from paretoscale.decide.evaluate import spec_capacity
from paretoscale.decide.profiling import (
    Collect,
    Fail,
    JobSeen,
    Start,
    Stop,
    Wait,
    plan_profiling,
)
from paretoscale.economics.work import AZURE_CONVERSATION_MIX, TokenMix
from paretoscale.errors import ProfileError
from paretoscale.profile import build_profile, measured_mix

log = logging.getLogger("paretoscale")
APPLY = "application/apply-patch+yaml"
EmitEvent = Callable[[str, str, str], None]


class NotOwned(Exception):
    """An object of a name profiling needs exists and is not this ModelDeployment's."""


def job_seen(job: Any, variant: str) -> JobSeen:
    """A V1Job's phase: Succeeded or Failed by its conditions, else Running."""
    for c in (job.status.conditions if job.status else None) or []:
        if c.status == "True" and c.type in ("Complete", "SuccessCriteriaMet"):
            return JobSeen(variant, "Succeeded")
        if c.status == "True" and c.type in ("Failed", "FailureTarget"):
            return JobSeen(variant, "Failed", f"the profiling Job failed: {c.reason}: {c.message}")
    return JobSeen(variant, "Running")


def estimates(spec: ModelDeploymentSpec, mix: TokenMix | None, gpus: GpuTypes) -> dict[str, float]:
    """Each variant's estimated capacity per replica at the SLO, its percentile included (the
    default ladder's base)."""
    return {v.name: spec_capacity(spec, v, mix, gpus)[0] for v in spec.variants}


class Profiler:
    """Profiling I/O for one ModelDeployment in one reconcile."""

    def __init__(
        self, api: Any, owner: Owner, may_write: Callable[[], bool], timeout_s: float = 10.0
    ) -> None:
        self.owner, self.may_write, self.timeout = owner, may_write, timeout_s
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    def read_job(self, variant: str) -> JobSeen | None:
        try:
            job = self.batch.read_namespaced_job(
                profile_name(self.owner.name, variant), self.owner.namespace,
                _request_timeout=self.timeout,
            )  # fmt: skip
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        if not self._owned(job.metadata):
            return None
        return job_seen(job, variant)

    def read_results(self, variant: str) -> dict[str, str]:
        cm = self.core.read_namespaced_config_map(
            profile_name(self.owner.name, variant), self.owner.namespace,
            _request_timeout=self.timeout,
        )  # fmt: skip
        return results_of({"data": cm.data})

    def _may_write(self) -> None:
        if not self.may_write():
            raise RuntimeError("writes refused: this process is not sure it still leads")

    def _owned(self, meta: Any) -> bool:
        return any(r.uid == self.owner.uid for r in meta.owner_references or [])

    def _apply(self, patch: Any, read: Any, body: Mapping[str, Any]) -> None:
        """Server-side apply `body` (field manager paretoscale), unless an object of its name
        exists that this ModelDeployment does not own (NotOwned)."""
        name, ns = body["metadata"]["name"], self.owner.namespace
        self._may_write()
        try:
            existing = read(name, ns, _request_timeout=self.timeout)
        except client.ApiException as e:
            if e.status != 404:
                raise
        else:
            if not self._owned(existing.metadata):
                kind = body["kind"]
                raise NotOwned(f"{kind} {ns}/{name} exists and is not this ModelDeployment's")
        patch(name, ns, dict(body), field_manager=FIELD_MANAGER, force=True,
              _content_type=APPLY, _request_timeout=self.timeout)  # fmt: skip

    def start(self, body: Mapping[str, Any], spec: ModelDeploymentSpec, a: Start,
              mix: TokenMix, gpus: GpuTypes) -> None:  # fmt: skip
        variant = next(v for v in spec.variants if v.name == a.variant)
        c, r = self.core, self.rbac
        sa, role, binding = render_access(self.owner, a.variant)
        cm = render_results(self.owner, a.variant)
        self._apply(c.patch_namespaced_config_map, c.read_namespaced_config_map, cm)
        # results of an earlier run go: this run's files replace them
        c.patch_namespaced_config_map(cm["metadata"]["name"], self.owner.namespace,
                                      {"data": None}, _request_timeout=self.timeout)  # fmt: skip
        self._apply(c.patch_namespaced_service_account, c.read_namespaced_service_account, sa)
        self._apply(r.patch_namespaced_role, r.read_namespaced_role, role)
        self._apply(r.patch_namespaced_role_binding, r.read_namespaced_role_binding, binding)
        job = render_job(self.owner, spec, variant, a.rates, a.requests_per_rate, a.deadline_s,
                         (mix.prompt_tokens, mix.output_tokens), gpus)  # fmt: skip
        self._apply(self.batch.patch_namespaced_job, self.batch.read_namespaced_job, job)

    def clean_up(self, variant: str) -> None:
        """Delete the Job (with its pod), ServiceAccount, Role and RoleBinding; keep the
        ConfigMap. Any of them gone already is fine."""
        ns, md = self.owner.namespace, self.owner.name
        self._may_write()
        deletes = [
            (self.batch.delete_namespaced_job, profile_name(md, variant)),
            (self.rbac.delete_namespaced_role_binding, account_name(md)),
            (self.rbac.delete_namespaced_role, account_name(md)),
            (self.core.delete_namespaced_service_account, account_name(md)),
        ]
        for delete, name in deletes:
            try:
                delete(name, ns, propagation_policy="Background", _request_timeout=self.timeout)
            except client.ApiException as e:
                if e.status != 404:
                    raise


def collected(
    spec: ModelDeploymentSpec, variant: str, files: Mapping[str, str], configmap: str, at: str,
    gpu_hours: float,
) -> ProfiledVariant:  # fmt: skip
    """The status record of a variant's results (ProfileError when they cannot be used)."""
    if len(files) < 2:
        raise ProfileError(f"ConfigMap {configmap} holds {len(files)} result files, need 2+")
    rows = build_profile(files, spec.slo.latency, spec.slo.percentile)
    mix = measured_mix(rows)
    return ProfiledVariant(
        profile=[
            ProfilePointStatus(
                requests_per_second=round(r.requests_per_second, 4),
                latency_seconds=round(r.latency_seconds, 4),
            )
            for r in rows
            if r.requests_per_second > 0 and r.latency_seconds > 0
        ],
        prompt_tokens=round(mix.prompt_tokens, 1) if mix else None,
        output_tokens=round(mix.output_tokens, 1) if mix else None,
        config_map=configmap,
        measured_at=at,
        gpu_hours=round(gpu_hours, 4),
    )


async def profile_step(
    kube: Kube,
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    old: ProfilingStatus | None,
    mix: TokenMix | None,
    now: float,
    emit: EmitEvent,
    gpus: GpuTypes = BUILTIN,
) -> ProfilingStatus | None:
    """One profiling step of one reconcile; the profiling status to write. A failure to
    read or write the API is logged and leaves the status as it was: the decision goes on,
    the next reconcile tries again."""
    try:
        return await _step(kube, body, spec, old, mix, now, emit, gpus)
    except Exception as e:
        meta = body["metadata"]
        log.warning("%s/%s: profiling: %s: %s", meta["namespace"], meta["name"],
                    type(e).__name__, e)  # fmt: skip
        return old


async def _step(
    kube: Kube,
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    old: ProfilingStatus | None,
    mix: TokenMix | None,
    now: float,
    emit: EmitEvent,
    gpus: GpuTypes,
) -> ProfilingStatus | None:
    if not spec.profiling.enabled and (old is None or old.running is None):
        # disabled: failures are forgotten, so enabling it again retries those variants
        return old.model_copy(update={"failed": {}}) if old is not None and old.failed else old
    if not kube.may_write():  # with leader election: not sure it still leads
        return old
    meta = body["metadata"]
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    prof = Profiler(kube.api, owner, kube.may_write, kube.timeout_s)
    running = old.running if old else None
    job = await asyncio.to_thread(prof.read_job, running.variant) if running else None
    action = plan_profiling(spec, old, job, now, estimates(spec, mix, gpus))
    if isinstance(action, Wait):
        return (old or ProfilingStatus()).model_copy(update={"waiting": action.reason})
    if action is None:
        return old.model_copy(update={"waiting": None}) if old is not None and old.waiting else old
    return await _act(prof, body, spec, old or ProfilingStatus(), action, mix, now, emit, gpus)


async def _act(prof: Profiler, body: Mapping[str, Any], spec: ModelDeploymentSpec,
               st: ProfilingStatus, action: Start | Collect | Fail | Stop,
               mix: TokenMix | None, now: float,
               emit: EmitEvent, gpus: GpuTypes) -> ProfilingStatus:  # fmt: skip
    md = prof.owner.name
    if isinstance(action, Start):
        try:
            await asyncio.to_thread(prof.start, body, spec, action,
                                    mix or AZURE_CONVERSATION_MIX, gpus)  # fmt: skip
        except NotOwned as e:
            emit("Warning", "ProfilingFailed", f"{action.variant}: {e}")
            return st.model_copy(update={"failed": {**st.failed, action.variant: str(e)}})
        job = profile_name(md, action.variant)
        emit("Normal", "ProfilingStarted",
             f"Job {job} profiles {action.variant} at {', '.join(f'{r:g}' for r in action.rates)}"
             f" req/s (up to {action.reserved_gpu_hours:.3g} GPU-hours)")  # fmt: skip
        return st.model_copy(update={"waiting": None, "running": ProfilingJobStatus(
            variant=action.variant, job=job, started_at=now,
            reserved_gpu_hours=action.reserved_gpu_hours)})  # fmt: skip
    spent = round(st.gpu_hours_spent + action.gpu_hours, 4)
    out = st.model_copy(update={"running": None, "gpu_hours_spent": spent})
    if isinstance(action, Collect):
        cm = profile_name(md, action.variant)
        try:
            files = await asyncio.to_thread(prof.read_results, action.variant)
            record = collected(spec, action.variant, files, cm, rfc3339(now), action.gpu_hours)
        except (ProfileError, client.ApiException) as e:
            action = Fail(action.variant, f"its results cannot be used: {e}", action.gpu_hours)
        else:
            emit("Normal", "Profiled",
                 f"{action.variant}: {len(record.profile)} points in status.profiling.profiles; "
                 f"the vllm bench serve results stay in ConfigMap {cm}: copy them into "
                 f"spec.variants[].profile with `paretoscale profile` to keep them")  # fmt: skip
            out = out.model_copy(update={"profiles": {**st.profiles, action.variant: record}})
    if isinstance(action, Fail):
        emit("Warning", "ProfilingFailed", f"{action.variant}: {action.reason}"[:1024])
        out = out.model_copy(update={"failed": {**st.failed, action.variant: action.reason}})
    if isinstance(action, Stop):
        emit("Normal", "ProfilingStopped", f"{action.variant}: {action.reason}")
    try:
        await asyncio.to_thread(prof.clean_up, action.variant)
    except client.ApiException as e:  # ttlSecondsAfterFinished removes the Job in the end
        log.warning("%s: deleting the profiling Job of %s failed: %s", md, action.variant, e)
    return out
