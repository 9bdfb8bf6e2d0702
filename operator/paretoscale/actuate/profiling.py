"""The objects of one in-cluster profiling run (spec.profiling), rendered. Pure.

    ConfigMap <md>-profile-<variant>    the `vllm bench serve --save-result` files, one key per
                                        rate (rate-<r>.json); created empty, filled by the Job,
                                        kept after the run for GitOps users to copy
    ServiceAccount/Role/RoleBinding     <md>-profile: get/update/patch of that ConfigMap
                                        only (resourceNames), nothing else
    Job <md>-profile-<variant>          one pod: the variant's `vllm serve` as a native sidecar
                                        (an init container with restartPolicy Always: the
                                        pod ends when the client does), its resources,
                                        nodeSelector, tolerations, volumes as its Deployment;
                                        the client container runs `vllm bench serve` from the
                                        same image (with the template's env and mounts: a token
                                        or cache for the tokenizer) at each rate, then writes
                                        the ConfigMap

Everything is owned by the ModelDeployment (garbage-collected with it) and labelled
app.kubernetes.io/*, paretoscale.io/variant and paretoscale.io/profiling=true. The pod carries
no paretoscale.io/modeldeployment or paretoscale.io/variant label: no Service routes to it and
its metrics never count as the variant's. The client reads its ladder from its environment
(api/profiling.py); on the local control plane the data-plane bridge runs the same ladder
against a simulator and writes the same ConfigMap (sim/profiling_client.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from paretoscale.actuate.render import (
    FIELD_MANAGER,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    Owner,
    _metadata,
    object_labels,
    render_deployment,
)
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.profiling import (
    ENV_CONFIGMAP,
    ENV_MODEL,
    ENV_OUTPUT,
    ENV_PERCENTILES,
    ENV_PORT,
    ENV_PROMPT,
    ENV_RATES,
    ENV_REQUESTS,
    ENV_SERVED,
    LABEL_PROFILED,
    LABEL_PROFILING,
)
from paretoscale.api.types import ModelDeploymentSpec, VariantSpec
from paretoscale.api.vllm import VLLM_PORT

COMPONENT = "profiler"
TTL_AFTER_FINISHED_S = 86_400  # a Job the operator never collected is removed after a day
RESULT_DIR = "/results"

# The client container's program (python3 of the vLLM image): wait for the server, run
# `vllm bench serve` at each rate with --save-result, then write every result file into the
# ConfigMap through the API with the pod's ServiceAccount token.
CLIENT_PROGRAM = r"""
import glob, json, os, ssl, subprocess, sys, time, urllib.request
e = os.environ
base = "http://127.0.0.1:%s" % e.get("PARETOSCALE_PROFILE_PORT", "8000")
while True:
    try:
        urllib.request.urlopen(base + "/health", timeout=5)
        break
    except Exception:
        time.sleep(5)
for rate in e["PARETOSCALE_PROFILE_RATES"].split(","):
    subprocess.run(["vllm", "bench", "serve", "--backend", "openai", "--base-url", base,
        "--model", e["PARETOSCALE_PROFILE_MODEL"],
        "--served-model-name", e["PARETOSCALE_PROFILE_SERVED_MODEL"],
        "--dataset-name", "random", "--ignore-eos",
        "--random-input-len", e["PARETOSCALE_PROFILE_PROMPT_TOKENS"],
        "--random-output-len", e["PARETOSCALE_PROFILE_OUTPUT_TOKENS"],
        "--num-prompts", e["PARETOSCALE_PROFILE_REQUESTS"], "--request-rate", rate,
        "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", e["PARETOSCALE_PROFILE_PERCENTILES"],
        "--save-result", "--result-dir", "/results", "--result-filename",
        "rate-%s.json" % rate], check=True)
data = {os.path.basename(p): open(p).read() for p in sorted(glob.glob("/results/*.json"))}
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(sa + "/namespace").read().strip()
name = e["PARETOSCALE_PROFILE_CONFIGMAP"]
url = "https://%s:%s/api/v1/namespaces/%s/configmaps/%s" % (
    e["KUBERNETES_SERVICE_HOST"], e["KUBERNETES_SERVICE_PORT"], ns, name)
body = json.dumps({"data": data}).encode()
req = urllib.request.Request(url, body, method="PATCH", headers={
    "Authorization": "Bearer " + open(sa + "/token").read().strip(),
    "Content-Type": "application/merge-patch+json"})
urllib.request.urlopen(req, context=ssl.create_default_context(cafile=sa + "/ca.crt"))
print("wrote %d result files to configmap %s" % (len(data), name))
"""


def profile_name(md: str, variant: str) -> str:
    """Name of a variant's profiling Job and of its results ConfigMap."""
    return f"{md}-profile-{variant}"


def account_name(md: str) -> str:
    """Name of the profiling ServiceAccount, Role and RoleBinding of a ModelDeployment."""
    return f"{md}-profile"


def _labels(owner: Owner, variant: str) -> dict[str, str]:
    return {**object_labels(owner.name, variant), LABEL_PROFILING: "true"}


def pod_labels(owner: Owner, variant: str) -> dict[str, str]:
    """Labels of the profiling pod (see the module docstring: no md/variant selector label)."""
    return {
        LABEL_NAME: "vllm",
        LABEL_INSTANCE: owner.name,
        "app.kubernetes.io/component": COMPONENT,
        LABEL_MANAGED: FIELD_MANAGER,
        LABEL_PROFILING: "true",
        LABEL_PROFILED: variant,
    }


def percentiles(slo_percentile: float) -> str:
    """--metric-percentiles: the usual ones and the SLO's."""
    ps = sorted({50.0, 90.0, 95.0, 99.0, float(slo_percentile)})
    return ",".join(f"{p:g}" for p in ps)


def render_results(owner: Owner, variant: str) -> dict[str, Any]:
    """The empty results ConfigMap (the Job fills it; the operator never overwrites data)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, profile_name(owner.name, variant), _labels(owner, variant)),
    }


def render_access(owner: Owner, variant: str) -> list[dict[str, Any]]:
    """The ServiceAccount of the profiling pod and its Role, limited to one ConfigMap."""
    name = account_name(owner.name)
    labels = {**object_labels(owner.name), LABEL_PROFILING: "true"}
    meta = _metadata(owner, name, labels)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [profile_name(owner.name, variant)],
                    "verbs": ["get", "update", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
        },
    ]


def client_env(
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    rates: Sequence[float],
    requests_per_rate: int,
    mix: tuple[float, float],
    configmap: str,
) -> dict[str, str]:
    """The client container's environment (the ladder; see module docstring)."""
    return {
        ENV_RATES: ",".join(f"{r:g}" for r in rates),
        ENV_REQUESTS: str(requests_per_rate),
        ENV_PROMPT: str(max(1, round(mix[0]))),
        ENV_OUTPUT: str(max(1, round(mix[1]))),
        ENV_PERCENTILES: percentiles(spec.slo.percentile),
        ENV_MODEL: variant.vllm.model,
        ENV_SERVED: spec.model,
        ENV_CONFIGMAP: configmap,
        ENV_PORT: str(VLLM_PORT),
    }


def render_job(
    owner: Owner,
    spec: ModelDeploymentSpec,
    variant: VariantSpec,
    rates: Sequence[float],
    requests_per_rate: int,
    deadline_s: int,
    mix: tuple[float, float],
    gpus: GpuTypes = BUILTIN,
) -> dict[str, Any]:
    """The profiling Job of one variant (see the module docstring)."""
    name = profile_name(owner.name, variant.name)
    pod = render_deployment(owner, spec, variant, 1, gpus)["spec"]["template"]
    pod_spec: dict[str, Any] = dict(pod["spec"])
    server = {**pod_spec.pop("containers")[0], "restartPolicy": "Always"}
    pod_spec.pop("topologySpreadConstraints", None)  # they select the variant's serving pods
    env = client_env(spec, variant, rates, requests_per_rate, mix, name)
    client = {
        "name": "bench",
        "image": spec.template.image,
        "command": ["python3", "-c", CLIENT_PROGRAM],
        # the template's env and mounts too: a token or a cache to fetch the tokenizer
        "env": [*server.get("env", []), *({"name": k, "value": v} for k, v in env.items())],
        "volumeMounts": [
            *server.get("volumeMounts", []),
            {"name": "results", "mountPath": RESULT_DIR},
        ],
        "securityContext": server.get("securityContext", {}),
    }
    pod_spec.update(
        initContainers=[server],
        containers=[client],
        restartPolicy="Never",
        serviceAccountName=account_name(owner.name),
        automountServiceAccountToken=True,
        volumes=[*pod_spec.get("volumes", []), {"name": "results", "emptyDir": {}}],
    )
    meta: dict[str, Any] = {"labels": pod_labels(owner, variant.name)}
    if pod["metadata"].get("annotations"):
        meta["annotations"] = pod["metadata"]["annotations"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(owner, name, _labels(owner, variant.name)),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "template": {"metadata": meta, "spec": pod_spec},
        },
    }


def results_of(configmap: Mapping[str, Any] | None) -> dict[str, str]:
    """The result files of a results ConfigMap (key -> text); empty when none."""
    data = (configmap or {}).get("data") or {}
    return {k: str(v) for k, v in sorted(data.items()) if k.endswith(".json")}
