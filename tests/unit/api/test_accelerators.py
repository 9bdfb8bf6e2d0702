"""The GPU type mapping: presets, a cluster's own entries, and the errors that say what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paretoscale.api.accelerators import BUILTIN, GKE_VALUES, gpu_types, preset
from paretoscale.api.gpus import GPUS
from paretoscale.config import read_gpu_types
from paretoscale.errors import SpecError

ROOT = Path(__file__).parents[3]
ACME: dict[str, Any] = {
    "labelKey": "acme.com/accelerator",
    "labelValue": "x1",
    "resource": "acme.com/gpu",
    "memoryGiB": 96,
    "memoryBandwidthTBps": 2.4,
    "bf16Tflops": 400,
    "fp8Tflops": 800,
    "precisions": ["bf16", "fp16", "fp8"],
}


def test_nfd_is_the_default_and_labels_as_gpu_feature_discovery() -> None:
    assert BUILTIN.types == preset("nfd").types == GPUS
    h100 = BUILTIN.get("H100")
    assert h100.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert h100.resource == "nvidia.com/gpu"
    assert {"H200", "B200", "A10G", "L4", "MI300X"} <= set(BUILTIN.types)


def test_mi300x_is_an_amd_gpu_with_its_own_label_and_resource() -> None:
    mi = BUILTIN.get("MI300X")
    assert mi.resource == "amd.com/gpu"
    assert mi.label_key == "amd.com/gpu.product-name"
    assert mi.compute_capability is None and "fp8" in mi.precisions


def test_precisions_follow_the_compute_capability() -> None:
    assert "fp8" not in BUILTIN.get("A100").precisions
    assert "fp8" in BUILTIN.get("L40S").precisions
    assert "bf16" not in BUILTIN.get("T4").precisions
    assert BUILTIN.get("T4").precisions == {"fp16", "int8", "int4"}


def test_gke_preset_uses_gke_accelerator_values() -> None:
    gke = preset("gke")
    assert gke.get("H200").node_selector == {
        "cloud.google.com/gke-accelerator": "nvidia-h200-141gb"
    }
    assert gke.get("A100-40GB").label_value == "nvidia-tesla-a100"
    for name, value in GKE_VALUES.items():
        assert gke.types[name].label_value == value
    # A type GKE does not offer keeps its built-in label; figures never change.
    assert gke.get("L40S").label_key == "nvidia.com/gpu.product"
    assert gke.get("H100").bf16_dense_tflops == GPUS["H100"].bf16_dense_tflops
    assert gke.type_of({"cloud.google.com/gke-accelerator": "nvidia-l4"}) == "L4"
    assert gke.type_of({"nvidia.com/gpu.product": "NVIDIA-L4"}) is None
    assert "cloud.google.com/gke-accelerator" in gke.label_keys


def test_a_file_adds_a_type_and_overrides_fields_of_a_built_in_one() -> None:
    doc = {"gpuTypes": {"acme-x1": ACME, "H100": {"labelValue": "NVIDIA-H100-PCIe"}}}
    gpus = gpu_types(doc, "types.yaml")
    x1 = gpus.get("acme-x1")
    assert x1.node_selector == {"acme.com/accelerator": "x1"}
    assert (x1.resource, x1.memory_gb, x1.hbm_tb_per_s) == ("acme.com/gpu", 96, 2.4)
    assert (x1.bf16_dense_tflops, x1.fp8_dense_tflops, x1.int8_dense_tops) == (400, 800, 0)
    assert x1.precisions == {"bf16", "fp16", "fp8"}
    h100 = gpus.get("H100")
    assert h100.label_value == "NVIDIA-H100-PCIe" and h100.memory_gb == 80
    assert "types.yaml" in gpus.source and "acme-x1" in gpus.source
    assert BUILTIN.types["H100"].label_value == "NVIDIA-H100-80GB-HBM3"  # untouched


def test_a_compute_capability_override_rederives_the_precisions() -> None:
    gpus = gpu_types({"gpuTypes": {"A10": {"computeCapability": "8.9"}}}, "t.yaml")
    assert gpus.get("A10").sm == 89 and "fp8" in gpus.get("A10").precisions


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"gpuTypes": {"x2": {"labelKey": "a.io/b"}}}, "a new GPU type needs labelValue"),
        ({"gpuTypes": {"x2": {**ACME, "precisions": None}}}, "computeCapability or precisions"),
        ({"gpuTypes": {"x2": {**ACME, "memoryGiB": -1}}}, "gpuTypes.x2.memoryGiB"),
        ({"gpuTypes": {"x2": {**ACME, "resource": "not a name"}}}, "resource name"),
        ({"gpuTypes": {"x2": {**ACME, "colour": "red"}}}, "gpuTypes.x2.colour"),
        ({"gpuTypes": {"x2": {**ACME, "precisions": ["fp4"]}}}, "gpuTypes.x2.precisions"),
        ({"gpuTypes": {"has space": ACME}}, "is not a GPU type name"),
        ({"gpus": {}}, "one key, gpuTypes"),
        ({"gpuTypes": ["H100"]}, "must map GPU type names"),
    ],
)
def test_bad_entries_are_refused_naming_the_file_and_the_field(doc: Any, words: str) -> None:
    with pytest.raises(SpecError) as e:
        gpu_types(doc, "types.yaml")
    assert e.value.source == "types.yaml"
    assert any(words in p for p in e.value.problems), e.value.problems


def test_unknown_type_names_the_mapping_to_extend() -> None:
    problem = BUILTIN.problem("acme-x1")
    assert problem is not None
    assert "unknown GPU type 'acme-x1'" in problem and "preset nfd" in problem
    assert "--gpu-types-file" in problem and "gpuTypes" in problem
    with pytest.raises(KeyError, match="--gpu-types-file"):
        BUILTIN.get("acme-x1")
    assert BUILTIN.problem("H100") is None


def test_the_example_file_reads(tmp_path: Path) -> None:
    gpus = read_gpu_types(str(ROOT / "examples" / "operator" / "gpu-types.yaml"), "gke")
    doc = yaml.safe_load((ROOT / "examples" / "operator" / "gpu-types.yaml").read_text())
    assert set(doc["gpuTypes"]) <= set(gpus.types)
    with pytest.raises(SpecError, match="cannot read"):
        read_gpu_types(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpuTypes: [")
    with pytest.raises(SpecError, match="not valid YAML"):
        read_gpu_types(str(bad))
