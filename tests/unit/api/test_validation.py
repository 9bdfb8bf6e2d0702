"""Bad specs are refused with the path of the field and what to change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.api.accelerators import BUILTIN, GpuTypes, gpu_types
from paretoscale.api.admission import gpu_type_problems, weight_precision
from paretoscale.api.manifest import parse_manifests
from paretoscale.errors import SpecError

ROOT = Path(__file__).parents[3]
BASE = yaml.safe_load((ROOT / "examples" / "assistant-llama-8b.yaml").read_text())


def mutate(fn: Any) -> str:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    fn(doc["spec"])
    return yaml.safe_dump(doc)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_manifests(text, "md.yaml")
    return e.value.problems


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda s: s["traffic"].update(minReplicas=5, maxReplicas=2),
            "spec.traffic",
            "minReplicas (5) must be <= maxReplicas",
        ),
        (
            lambda s: s["variants"][1].update(name="bf16"),
            "spec",
            "variant names must be unique; repeated: bf16",
        ),
        (
            lambda s: s["variants"][2]["gpu"].update(type="no such/gpu"),
            "spec.variants[2].gpu.type",
            "String should match pattern",
        ),
        (
            lambda s: s["variants"][2]["gpu"].update(type="A100"),
            "spec",
            "gpu.type A100 is not listed under spec.gpus",
        ),
        (lambda s: s["gpus"][0].update(usdPerHour="cheap"), "spec.gpus[0].usdPerHour", "cheap"),
        (lambda s: s["slo"].update(latency="p95"), "spec.slo.latency", "'e2e', 'ttft' or 'itl'"),
        (
            lambda s: s["variants"][0]["profile"].reverse(),
            "spec.variants[0].profile",
            "ascend strictly",
        ),
        (lambda s: s["variants"][0].update(qualty=0.8), "spec.variants[0].qualty", "Extra inputs"),
    ],
    ids=[
        "min>max",
        "duplicate-name",
        "unknown-gpu",
        "gpu-not-listed",
        "bad-price",
        "bad-slo",
        "profile-order",
        "typo",
    ],
)
def test_bad_spec_names_the_field(change: Any, path: str, words: str) -> None:
    lines = problems(mutate(change))
    assert any(line.startswith(path) and words in line for line in lines), lines


def gpu_problems(text: str, gpus: GpuTypes = BUILTIN) -> list[str]:
    """What the operator and `plan` report about a spec that parses: its GPU checks."""
    (md,) = parse_manifests(text, "md.yaml")
    return gpu_type_problems(md.spec, gpus)


def test_fp8_on_ampere_is_refused_with_the_fix() -> None:
    def change(s: dict[str, Any]) -> None:
        s["gpus"].append({"type": "A100", "usdPerHour": "1.85", "available": 8})
        s["variants"][1]["gpu"]["type"] = "A100"

    (line,) = gpu_problems(mutate(change))
    assert line.startswith("spec.variants[1]")
    assert "FP8 weights need compute capability 8.9+, but A100 is 8.0" in line
    assert "run it on" in line and "H100" in line


def test_bf16_on_turing_is_refused() -> None:
    def change(s: dict[str, Any]) -> None:
        s["gpus"].append({"type": "T4", "usdPerHour": "0.35", "available": 8})
        s["variants"][0]["gpu"]["type"] = "T4"

    (line,) = gpu_problems(mutate(change))
    assert "BF16 weights need compute capability 8.0+" in line and "dtype: float16" in line


def test_the_examples_pass_the_gpu_checks() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for md in parse_manifests(path.read_text(), str(path)):
            assert gpu_type_problems(md.spec, BUILTIN) == [], path


def test_an_unknown_gpu_type_parses_and_is_reported_naming_the_mapping() -> None:
    def change(s: dict[str, Any]) -> None:
        s["gpus"].append({"type": "acme-x1", "usdPerHour": "2", "available": 8})
        s["variants"][2]["gpu"]["type"] = "acme-x1"

    (line,) = gpu_problems(mutate(change))
    assert line.startswith("spec.gpus[2].type: unknown GPU type 'acme-x1'")
    assert "--gpu-types-file" in line and "chart value gpuTypes" in line


def test_a_gpu_type_the_mapping_declares_runs_what_it_lists() -> None:
    acme = {
        "labelKey": "acme.com/accelerator",
        "labelValue": "x1",
        "resource": "acme.com/gpu",
        "memoryGiB": 96,
        "memoryBandwidthTBps": 2.4,
        "bf16Tflops": 400,
        "precisions": ["fp16", "int4"],
    }
    gpus = gpu_types({"gpuTypes": {"acme-x1": acme}}, "types.yaml")

    def change(s: dict[str, Any]) -> None:
        s["gpus"].append({"type": "acme-x1", "usdPerHour": "2", "available": 8})
        s["variants"][2]["gpu"]["type"] = "acme-x1"  # an INT4 checkpoint: listed

    assert gpu_problems(mutate(change), gpus) == []

    def bf16(s: dict[str, Any]) -> None:
        change(s)
        s["variants"][0]["gpu"]["type"] = "acme-x1"

    (line,) = gpu_problems(mutate(bf16), gpus)
    assert "BF16 weights" in line and "acme-x1 runs fp16, int4" in line


@pytest.mark.parametrize(
    ("model", "dtype", "quant", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "bfloat16", None, "bf16"),
        ("meta-llama/Llama-3.1-8B-Instruct", "float16", None, "fp16"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", None, None, "fp8"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", None, None, "int8"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", None, "compressed-tensors", "int4"),
        ("Qwen/Qwen3-8B-AWQ", None, None, "int4"),
        ("Qwen/Qwen3-8B", None, "fp8", "fp8"),
    ],
)
def test_weight_precision(model: str, dtype: str | None, quant: str | None, expected: str) -> None:
    assert weight_precision(model, dtype, quant) == expected


def test_yaml_error_and_empty_file() -> None:
    assert "not valid YAML" in problems("spec: [")[0]
    assert "no ModelDeployment" in problems("kind: ConfigMap\n")[0]


def test_all_examples_parse() -> None:
    for f in sorted((ROOT / "examples").glob("*.yaml")):
        assert parse_manifests(f.read_text(), str(f))


def test_every_built_in_gpu_type_is_a_valid_spec_name() -> None:
    from paretoscale.api.gpus import GPUS

    for name in GPUS:
        doc = yaml.safe_load(yaml.safe_dump(BASE))
        doc["spec"]["gpus"][0]["type"] = doc["spec"]["variants"][0]["gpu"]["type"] = name
        doc["spec"]["variants"] = doc["spec"]["variants"][:1]
        doc["spec"]["gpus"] = doc["spec"]["gpus"][:1]
        parse_manifests(yaml.safe_dump(doc), "md.yaml")
