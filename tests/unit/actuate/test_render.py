"""Rendered Deployments, PodDisruptionBudgets and Services, and golden files in tests/golden/.

Refresh after an intended change: PARETOSCALE_UPDATE_GOLDEN=1 pytest tests/unit/actuate
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.actuate.render import (
    PRESTOP_SLEEP_S,
    Owner,
    render_deployment,
    render_pdb,
    render_service,
)
from paretoscale.api.accelerators import gpu_types
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import ModelDeploymentSpec
from paretoscale.api.vllm import vllm_argv

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "golden"
OWNER = Owner("assistant", "llm", "00000000-0000-0000-0000-000000000001")
ASSISTANT = "assistant-llama-8b.yaml"
MODEL_CACHE = "model-cache-pvc.yaml"


def spec_of(name: str):  # type: ignore[no-untyped-def]
    return parse_manifests((ROOT / "examples" / name).read_text(), name)[0].spec


CASES = [
    ("assistant-llama-8b.yaml", "fp8", 2),
    ("assistant-llama-8b.yaml", "bf16-eagle3", 1),
    ("llama-70b-speculative.yaml", "bf16-ngram", 1),
    ("qwen3-8b-quantization.yaml", "awq-h100", 3),
    ("model-cache-pvc.yaml", "bf16", 1),
]


@pytest.mark.parametrize(
    ("example", "variant", "replicas"), CASES, ids=[f"{c[0].split('.')[0]}-{c[1]}" for c in CASES]
)
def test_deployment_golden(example: str, variant: str, replicas: int) -> None:
    spec = spec_of(example)
    v = next(x for x in spec.variants if x.name == variant)
    text = yaml.safe_dump(render_deployment(OWNER, spec, v, replicas), sort_keys=False)
    path = GOLDEN / f"deployment-{example.split('.')[0]}-{variant}.yaml"
    if os.environ.get("PARETOSCALE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), (
        f"{path.name} differs; refresh with PARETOSCALE_UPDATE_GOLDEN=1"
    )


def test_service_golden() -> None:
    text = yaml.safe_dump(
        [render_service(OWNER, ("fp8",)), render_service(OWNER, ("bf16", "fp8"))], sort_keys=False
    )
    path = GOLDEN / "service-assistant.yaml"
    if os.environ.get("PARETOSCALE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_argv_is_a_list_with_every_flag() -> None:
    spec = spec_of("llama-70b-speculative.yaml")
    v = next(x for x in spec.variants if x.name == "bf16-draft")
    argv = vllm_argv(v, spec.model)
    assert argv[0] == "meta-llama/Llama-3.1-70B-Instruct"
    assert argv[argv.index("--served-model-name") + 1] == spec.model
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4"
    assert argv[argv.index("--speculative-config") + 1] == (
        '{"method":"draft_model","model":"meta-llama/Llama-3.2-1B-Instruct","num_speculative_tokens":4}'
    )


def test_gpu_request_and_selector() -> None:
    spec = spec_of("llama-70b-speculative.yaml")
    d = render_deployment(OWNER, spec, spec.variants[0], 1)
    pod = d["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert d["metadata"]["ownerReferences"][0]["controller"] is True


def test_gpu_selector_and_resource_come_from_the_mapping() -> None:
    """GKE labels for a built-in type; a declared type's own label and extended resource."""
    doc = yaml.safe_load((ROOT / "examples" / ASSISTANT).read_text())
    doc["spec"]["gpus"].append({"type": "acme-x1", "usdPerHour": "2", "available": 8})
    doc["spec"]["variants"][2]["gpu"] = {"type": "acme-x1", "count": 2}
    doc["spec"]["template"] = {"nodeSelector": {"pool": "inference"}}
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    acme = {
        "labelKey": "acme.com/accelerator",
        "labelValue": "x1",
        "resource": "acme.com/gpu",
        "memoryGiB": 96,
        "memoryBandwidthTBps": 2.4,
        "bf16Tflops": 400,
        "computeCapability": "9.0",
    }
    gpus = gpu_types({"gpuTypes": {"acme-x1": acme}}, "types.yaml", "gke")
    h100 = pod_of(render_deployment(OWNER, spec, spec.variants[0], 1, gpus))
    assert h100["nodeSelector"] == {
        "pool": "inference",
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb",
    }
    assert h100["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": 1}
    x1 = pod_of(render_deployment(OWNER, spec, spec.variants[2], 1, gpus))
    assert x1["nodeSelector"] == {"pool": "inference", "acme.com/accelerator": "x1"}
    assert x1["containers"][0]["resources"]["limits"] == {"acme.com/gpu": 2}
    with pytest.raises(KeyError, match="--gpu-types-file"):
        render_deployment(OWNER, spec, spec.variants[2], 1)  # the built-in table only


# ------------------------------------------------------------------ the vLLM pod --------


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def render_with(template: dict[str, Any], variant: str = "fp8", example: str = ASSISTANT):
    """The Deployment of `variant` from `example` with spec.template replaced by `template`."""
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    doc["spec"]["template"] = template
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    v = next(x for x in spec.variants if x.name == variant)
    return render_deployment(OWNER, spec, v, 1)


def test_model_cache_example_mounts_its_claim() -> None:
    spec = spec_of(MODEL_CACHE)
    for v in spec.variants:
        pod = pod_of(render_deployment(OWNER, spec, v, 1))
        volumes = {vol["name"]: vol for vol in pod["volumes"]}
        assert volumes["model-cache"]["persistentVolumeClaim"] == {
            "claimName": "llama-70b-model-cache"
        }
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"dshm": "/dev/shm", "model-cache": "/models"}
        env = {e["name"]: e for e in container["env"]}
        assert env["HF_HOME"]["value"].startswith("/models/")
        assert pod["serviceAccountName"] == "llama-weights-reader"
        assert pod["automountServiceAccountToken"] is False
        assert pod["terminationGracePeriodSeconds"] == 300
    # The claim the template names is the one the example file declares.
    docs = list(yaml.safe_load_all((ROOT / "examples" / MODEL_CACHE).read_text()))
    claims = [d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert claims == ["llama-70b-model-cache"]


@pytest.mark.parametrize(
    ("example", "variant", "size"),
    [(ASSISTANT, "fp8", "8Gi"), ("llama-70b-speculative.yaml", "bf16", "32Gi")],
)
def test_shm_is_a_memory_emptydir_sized_from_tensor_parallelism(
    example: str, variant: str, size: str
) -> None:
    spec = spec_of(example)
    pod = pod_of(
        render_deployment(OWNER, spec, next(v for v in spec.variants if v.name == variant), 1)
    )
    assert pod["volumes"][0] == {
        "name": "dshm",
        "emptyDir": {"medium": "Memory", "sizeLimit": size},
    }
    assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]


def test_shm_size_override_and_opt_outs() -> None:
    pod = pod_of(render_with({"shmSize": "16Gi"}))
    assert pod["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    ]
    for off in ("0", "0Gi", "0.0"):
        pod = pod_of(render_with({"shmSize": off}))
        assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0], off
    own = {
        "volumes": [{"name": "my-shm", "emptyDir": {"medium": "Memory"}}],
        "volumeMounts": [{"name": "my-shm", "mountPath": "/dev/shm"}],
    }
    pod = pod_of(render_with(own))
    assert pod["volumes"] == own["volumes"]
    assert pod["containers"][0]["volumeMounts"] == own["volumeMounts"]


def test_secure_defaults() -> None:
    pod = pod_of(render_with({}))
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["enableServiceLinks"] is False
    assert "serviceAccountName" not in pod


def test_secure_defaults_are_overridable_key_by_key() -> None:
    pod = pod_of(
        render_with(
            {
                "automountServiceAccountToken": True,
                "podSecurityContext": {"runAsUser": 1000, "fsGroup": 1000},
                "containerSecurityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
            }
        )
    )
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 1000,
        "fsGroup": 1000,
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["IPC_LOCK"]},
    }
    pod = pod_of(render_with({"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}))
    assert pod["securityContext"] == {"seccompProfile": {"type": "Unconfined"}}


def test_pod_fields_pass_through() -> None:
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "preference": {
                        "matchExpressions": [
                            {"key": "zone", "operator": "In", "values": ["us-east-1a"]}
                        ]
                    },
                }
            ]
        }
    }
    d = render_with(
        {
            "serviceAccountName": "weights-reader",
            "priorityClassName": "llm-serving",
            "affinity": affinity,
            "terminationGracePeriodSeconds": 600,
            "podLabels": {"team": "llm"},
            "podAnnotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        }
    )
    pod = pod_of(d)
    assert pod["serviceAccountName"] == "weights-reader"
    assert pod["priorityClassName"] == "llm-serving"
    assert pod["affinity"] == affinity
    assert pod["terminationGracePeriodSeconds"] == 600
    meta = d["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "llm"
    assert meta["annotations"] == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
    # Pod labels stay on the pods: the Deployment's own labels and selector do not change.
    assert "team" not in d["metadata"]["labels"]
    assert d["spec"]["selector"] == {
        "matchLabels": {
            "paretoscale.io/modeldeployment": "assistant",
            "paretoscale.io/variant": "fp8",
        }
    }


def test_termination_grace_default_leaves_time_to_drain() -> None:
    assert pod_of(render_with({}))["terminationGracePeriodSeconds"] == 120


def test_a_stopping_pod_sleeps_before_sigterm_when_its_grace_allows() -> None:
    vllm = pod_of(render_with({}))["containers"][0]
    assert vllm["lifecycle"] == {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}}
    short = pod_of(render_with({"terminationGracePeriodSeconds": 2 * PRESTOP_SLEEP_S - 1}))
    assert "lifecycle" not in short["containers"][0]  # the sleep would eat the drain


def test_topology_spread_gets_the_variant_selector_when_it_has_none() -> None:
    own = {"matchLabels": {"app": "x"}}
    pod = pod_of(
        render_with(
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                    {
                        "maxSkew": 2,
                        "topologyKey": "host",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": own,
                    },
                ]
            }
        )
    )
    first, second = pod["topologySpreadConstraints"]
    assert first["labelSelector"] == {
        "matchLabels": {
            "paretoscale.io/modeldeployment": "assistant",
            "paretoscale.io/variant": "fp8",
        }
    }
    assert second["labelSelector"] == own


@pytest.mark.parametrize("startup_s", [0, 1, 9, 10, 300, 600, 601, 7200])
def test_startup_probe_covers_startup_seconds(startup_s: int) -> None:
    doc = yaml.safe_load((ROOT / "examples" / ASSISTANT).read_text())
    doc["spec"]["variants"][1]["startupSeconds"] = startup_s
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    container = render_deployment(OWNER, spec, spec.variants[1], 1)["spec"]["template"]["spec"][
        "containers"
    ][0]
    probe = container["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= 2 * startup_s + 60
    assert budget < 2 * startup_s + 60 + probe["periodSeconds"]
    assert probe["httpGet"] == {"path": "/health", "port": "http"}
    # Readiness is its own probe, independent of startupSeconds: it takes a replica out of the
    # Service within 15 s of /health failing; it never restarts it.
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    assert "livenessProbe" not in container


APP_LABELS = {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": "assistant",
    "app.kubernetes.io/component": "inference-server",
    "app.kubernetes.io/managed-by": "paretoscale",
}


def test_every_object_carries_the_app_labels() -> None:
    spec = spec_of(ASSISTANT)
    d = render_deployment(OWNER, spec, spec.variants[1], 1)
    objects = [
        d["metadata"],
        d["spec"]["template"]["metadata"],
        render_pdb(OWNER, "fp8")["metadata"],
        render_service(OWNER, ("fp8",))["metadata"],
    ]
    for meta in objects:
        assert APP_LABELS.items() <= meta["labels"].items(), meta
        assert meta["labels"]["paretoscale.io/modeldeployment"] == "assistant"
    for meta in objects[:3]:
        assert meta["labels"]["paretoscale.io/variant"] == "fp8"


def test_selectors_are_the_paretoscale_labels_only() -> None:
    """A Deployment's selector is immutable: new labels must never enter it."""
    spec = spec_of(ASSISTANT)
    d = render_deployment(OWNER, spec, spec.variants[1], 1)
    selector = {"paretoscale.io/modeldeployment": "assistant", "paretoscale.io/variant": "fp8"}
    assert d["spec"]["selector"] == {"matchLabels": selector}
    assert render_pdb(OWNER, "fp8")["spec"]["selector"] == {"matchLabels": selector}
    assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_pdb_of_a_variant() -> None:
    spec = spec_of(ASSISTANT)
    d = render_deployment(OWNER, spec, spec.variants[1], 2)
    pdb = render_pdb(OWNER, "fp8")
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["metadata"]["name"] == d["metadata"]["name"] == "assistant-fp8"
    assert pdb["metadata"]["namespace"] == "llm"
    assert pdb["metadata"]["ownerReferences"] == d["metadata"]["ownerReferences"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == d["spec"]["selector"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pdb_golden() -> None:
    text = yaml.safe_dump(render_pdb(OWNER, "fp8"), sort_keys=False)
    path = GOLDEN / "pdb-assistant-fp8.yaml"
    if os.environ.get("PARETOSCALE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
