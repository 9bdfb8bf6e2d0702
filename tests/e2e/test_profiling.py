"""In-cluster profiling on the local control plane: a ModelDeployment whose variant has no
profile, with spec.profiling enabled and a GPU-hour bound. The operator renders a profiling
Job (the variant's `vllm serve` as a native sidecar, a `vllm bench serve` client); KWOK runs
no containers, so the data-plane bridge runs that client's ladder against a simulator over
real HTTP and writes vLLM-bench-format result files into the Job's ConfigMap; the pod ends,
the Job controller completes the Job; the operator parses the files with profile.py into
status.profiling, decides on that profile (the variant's frontier row turns from the
estimate to the profile, at the capacity the profile gives), deletes the Job and keeps the
ConfigMap. The GPU-hours spent stay within maxGpuHours.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.api.status import ProfilingStatus
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.decide.evaluate import variant_capacity
from paretoscale.decide.profiling import with_profiles
from paretoscale.profile import build_profile
from paretoscale.sim.bridge import Bridge

from .operator_harness import Cluster, OperatorProcess, wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MAX_GPU_HOURS = 0.5
SLO_S = 3.0
DEADLINE_S = 900  # worst case 1 GPU x 900 s = 0.25 GPU-hours, within the bound
RATES = [1.5, 5.0, 9.0, 13.0]
REQUESTS = 30
MANIFEST = f"""
apiVersion: paretoscale.io/v1alpha1
kind: ModelDeployment
metadata: {{name: assistant}}
spec:
  model: meta-llama/Llama-3.1-8B-Instruct
  value: {{perQualityPoint: "3.45", calibrationFactor: 0.30}}
  slo: {{latency: e2e, percentile: 95, seconds: {SLO_S}}}
  traffic: {{minReplicas: 1, maxReplicas: 16, expectedRequestsPerSecond: 4}}
  gpus:
  - {{type: H100, usdPerHour: "6.88", available: 16}}
  variants:
  - name: fp8
    quality: 0.810
    gpu: {{type: H100}}
    vllm: {{model: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8}}
    parameters: 8000000000
    startupSeconds: 5
  profiling:
    enabled: true
    maxGpuHours: {MAX_GPU_HOURS}
    rates: {RATES}
    requestsPerRate: {REQUESTS}
    deadlineSeconds: {DEADLINE_S}
  template:
    env:
    - {{name: PARETOSCALE_SIM_STARTUP_DELAY_S, value: "2"}}
    - {{name: PARETOSCALE_SIM_SPEED, value: "0.5"}}
"""


@pytest.fixture
def profiling(
    cluster: Any, namespace: str, k8s_client: Any, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    if not cluster.owned:
        pytest.skip("needs the session's own KWOK cluster (its stages end profiling pods)")
    subprocess.run(["kubectl", "apply", "--server-side", "-f", str(ROOT / "crds")],
                   env={"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin"}, check=True,
                   capture_output=True)  # fmt: skip
    sd = Path(cluster.file_sd_dir or tmp_path)
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, "--tick-seconds", "2")
    try:
        with Bridge(cluster.kubeconfig, sd, namespace=namespace, state_dir=tmp_path,
                    file_sd_name=f"sims-{namespace}.json"):  # fmt: skip
            op.start()
            yield {"kube": Cluster(k8s_client, namespace), "op": op, "api": k8s_client}
    finally:
        op.stop()


def _row(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((r for r in status.get("frontier") or [] if r["name"] == name), {})


def test_profiles_a_variant_in_cluster_then_decides_on_it(profiling: dict[str, Any]) -> None:
    from kubernetes import client

    kube: Cluster = profiling["kube"]
    op: OperatorProcess = profiling["op"]
    batch = client.BatchV1Api(profiling["api"])
    core = client.CoreV1Api(profiling["api"])
    doc = yaml.safe_load(MANIFEST)
    doc["metadata"]["namespace"] = kube.ns
    kube.apply(doc)
    md_uid = kube.md("assistant")["metadata"]["uid"]

    # Before any profile: the variant is planned on a prior (the performance model's, or the
    # FLOP proxy), and a Job profiles it.
    first = wait(lambda: _row(kube.status("assistant"), "fp8"), 60, "a first decision", op)

    def job() -> Any:
        found = batch.list_namespaced_job(kube.ns).items
        return found[0] if found else None

    j = wait(job, 60, "the profiling Job", op)
    assert j.metadata.name == "assistant-profile-fp8"
    assert [r.uid for r in j.metadata.owner_references] == [md_uid]
    assert j.metadata.labels["paretoscale.io/profiling"] == "true"
    assert j.metadata.labels["paretoscale.io/variant"] == "fp8"
    assert j.metadata.labels["app.kubernetes.io/managed-by"] == "paretoscale"
    assert j.spec.active_deadline_seconds == DEADLINE_S
    pod_spec = j.spec.template.spec
    server = pod_spec.init_containers[0]
    assert server.restart_policy == "Always"
    assert server.command == ["vllm", "serve"]
    assert server.args[0] == "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"
    assert server.resources.limits["nvidia.com/gpu"] == "1"
    assert pod_spec.node_selector  # the GPU type's, as the variant's Deployment
    assert "paretoscale.io/variant" not in (j.spec.template.metadata.labels or {})

    # The results: in the status, parsed from the ConfigMap's vllm bench serve files.
    def profiled() -> Any:
        st = kube.status("assistant")
        prof = st.get("profiling") or {}
        return st if "fp8" in prof.get("profiles", {}) or prof.get("failed") else None

    st = wait(profiled, 420, "status.profiling.profiles.fp8", op)
    prof = ProfilingStatus.model_validate(st["profiling"])
    assert not prof.failed, prof.failed
    measured = prof.profiles["fp8"]
    cm = core.read_namespaced_config_map(measured.config_map, kube.ns)
    assert sorted(cm.data) == sorted(f"rate-{r:g}.json" for r in RATES)
    rows = build_profile(dict(cm.data), "e2e", 95)
    assert [p.requests_per_second for p in measured.profile] == [
        round(r.requests_per_second, 4) for r in rows
    ]
    assert [p.latency_seconds for p in measured.profile] == [
        round(r.latency_seconds, 4) for r in rows
    ]
    # the ladder straddles the SLO: the capacity is read off the measured curve
    assert rows[0].latency_seconds < SLO_S < rows[-1].latency_seconds, rows
    assert all(r.completed == REQUESTS and r.failed == 0 for r in rows), rows
    assert measured.prompt_tokens == 1155.0 and measured.output_tokens == 211.0
    assert cm.metadata.owner_references[0].uid == md_uid  # kept, owned by the MD

    # The bound: what was spent is at most maxGpuHours (and more than nothing).
    assert prof.running is None
    assert 0 < prof.gpu_hours_spent <= MAX_GPU_HOURS
    assert prof.gpu_hours_spent == pytest.approx(measured.gpu_hours)

    # The decision on that profile: the row's capacity is the profile's. The simulator runs
    # at half the speed the prior assumes (PARETOSCALE_SIM_SPEED=0.5), so the measured
    # capacity is well below the prior's and the decision can only have come from it.
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    fp8 = next(v for v in with_profiles(spec, prof).variants if v.name == "fp8")
    expected, basis = variant_capacity(fp8, SLO_S, None, None, "e2e")
    assert basis == "profile"
    assert expected < 0.8 * first["capacityPerReplica"], (expected, first)

    def decided_on_profile() -> Any:
        row = _row(kube.status("assistant"), "fp8")
        cap = row.get("capacityPerReplica")
        return row if cap is not None and abs(cap - expected) <= 0.01 * expected else None

    row = wait(decided_on_profile, 60, "a decision on the measured profile", op)
    assert row["basis"] == "priors"  # a profile, not the live correction nor the FLOP proxy
    decision = kube.status("assistant")["decision"]
    assert decision["variant"] == "fp8"
    assert row["replicas"] == decision["replicas"]

    # Cleaned up: no Job, no profiling pod; the event says where the results stay.
    wait(lambda: job() is None, 60, "the profiling Job deleted", op)
    wait(lambda: not core.list_namespaced_pod(
        kube.ns, label_selector="paretoscale.io/profiling=true").items,
        60, "the profiling pod deleted", op)  # fmt: skip
    reasons = {r for _, r, _ in kube.events()}
    assert {"ProfilingStarted", "Profiled"} <= reasons, reasons
    # Not profiled again.
    assert job() is None and "fp8" not in (kube.status("assistant")["profiling"]["failed"])
    print(
        f"\n  profile {[(p.requests_per_second, p.latency_seconds) for p in measured.profile]}; "
        f"capacity {row['capacityPerReplica']} req/s; {prof.gpu_hours_spent} GPU-hours"
    )
