"""Rendered Deployments and Services against golden files in tests/golden/.

Refresh after an intended change: PARETOSCALE_UPDATE_GOLDEN=1 pytest tests/unit/actuate
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from paretoscale.actuate.plan import plan_changes
from paretoscale.actuate.render import Owner, render_deployment, render_service
from paretoscale.api.manifest import parse_manifests
from paretoscale.api.vllm import vllm_argv
from paretoscale.rollout.machine import Fleet

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "golden"
OWNER = Owner("assistant", "llm", "00000000-0000-0000-0000-000000000001")


def spec_of(name: str):  # type: ignore[no-untyped-def]
    return parse_manifests((ROOT / "examples" / name).read_text(), name)[0].spec


CASES = [
    ("assistant-llama-8b.yaml", "fp8", 2),
    ("assistant-llama-8b.yaml", "bf16-eagle3", 1),
    ("llama-70b-speculative.yaml", "bf16-ngram", 1),
    ("qwen3-8b-quantization.yaml", "awq-h100", 3),
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


def test_plan_skips_unchanged_and_deletes_removed() -> None:
    spec = spec_of("assistant-llama-8b.yaml")
    fleet = Fleet({"fp8": 1, "bf16": 0}, ("fp8",))
    first = plan_changes(OWNER, spec, fleet, {"bf16", "old"}, {})
    assert [f"{m['kind']}/{m['metadata']['name']}" for m in first.apply] == [
        "Deployment/assistant-bf16",
        "Deployment/assistant-fp8",
        "Service/assistant",
    ]
    assert first.delete_deployments == ("assistant-old",)
    again = plan_changes(OWNER, spec, fleet, {"bf16", "fp8"}, first.hashes)
    assert again.apply == () and again.delete_deployments == ()
    scaled = plan_changes(
        OWNER, spec, Fleet({"fp8": 2, "bf16": 0}, ("fp8",)), {"bf16", "fp8"}, first.hashes
    )
    assert [m["metadata"]["name"] for m in scaled.apply] == ["assistant-fp8"]
