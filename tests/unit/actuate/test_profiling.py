"""The profiling Job and its objects (actuate/profiling.py)."""

from __future__ import annotations

from pathlib import Path

from paretoscale.actuate.profiling import (
    CLIENT_PROGRAM,
    client_env,
    render_access,
    render_job,
    render_results,
    results_of,
)
from paretoscale.actuate.render import Owner, render_deployment
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.profiling import ENV_CONFIGMAP, ENV_PERCENTILES, ENV_RATES

ROOT = Path(__file__).parents[3]
OWNER = Owner("assistant", "llm", "00000000-0000-0000-0000-000000000001")
SPEC = parse_manifests((ROOT / "examples" / "assistant-llama-8b.yaml").read_text(), "x")[0].spec
FP8 = next(v for v in SPEC.variants if v.name == "fp8")


def test_job_runs_the_variant_as_its_deployment_would_plus_a_bench_client() -> None:
    job = render_job(OWNER, SPEC, FP8, [1.0, 2.5], 50, 1200, (1155.4, 211.0))
    deployment = render_deployment(OWNER, SPEC, FP8, 1)["spec"]["template"]["spec"]
    assert job["metadata"]["name"] == "assistant-profile-fp8"
    assert job["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    labels = job["metadata"]["labels"]
    assert labels["paretoscale.io/profiling"] == "true"
    assert labels["paretoscale.io/variant"] == "fp8"
    assert labels["app.kubernetes.io/managed-by"] == "paretoscale"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 1200 and spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    server = pod["initContainers"][0]
    assert server == {**deployment["containers"][0], "restartPolicy": "Always"}
    assert pod["nodeSelector"] == deployment["nodeSelector"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "assistant-profile"
    pod_labels = spec["template"]["metadata"]["labels"]
    assert "paretoscale.io/variant" not in pod_labels  # no Service routes to it
    assert "paretoscale.io/modeldeployment" not in pod_labels
    client = pod["containers"][0]
    assert client["command"] == ["python3", "-c", CLIENT_PROGRAM]
    env = {e["name"]: e["value"] for e in client["env"]}
    assert env[ENV_RATES] == "1,2.5"
    assert env[ENV_CONFIGMAP] == "assistant-profile-fp8"
    assert "95" in env[ENV_PERCENTILES].split(",")
    want = client_env(SPEC, FP8, [1.0, 2.5], 50, (1155.4, 211.0), "assistant-profile-fp8")
    assert want.items() <= env.items()
    assert client["env"][: len(server.get("env", []))] == server.get("env", [])
    compile(CLIENT_PROGRAM, "client", "exec")  # the program at least parses


def test_role_is_limited_to_the_results_configmap() -> None:
    sa, role, binding = render_access(OWNER, "fp8")
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "assistant-profile"
    (rule,) = role["rules"]
    assert rule["resources"] == ["configmaps"]
    assert rule["resourceNames"] == ["assistant-profile-fp8"]
    assert set(rule["verbs"]) == {"get", "update", "patch"}
    assert binding["subjects"][0]["name"] == "assistant-profile"
    cm = render_results(OWNER, "fp8")
    assert cm["metadata"]["name"] == "assistant-profile-fp8" and "data" not in cm


def test_results_of_keeps_the_json_files() -> None:
    data = {"data": {"rate-1.json": "{}", "rate-2.json": "{}", "note": "x"}}
    assert list(results_of(data)) == ["rate-1.json", "rate-2.json"]
    assert results_of(None) == {}
