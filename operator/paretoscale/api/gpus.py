"""The built-in GPU types: how nodes label them, what each can run, how fast it moves bytes.

One frozen GpuSpec per accelerator: the node label that selects it (key and value), the
extended resource a pod requests (`nvidia.com/gpu`, `amd.com/gpu`), its memory, bandwidth,
compute capability and the precisions it runs, and its dense peaks (the FLOP proxy, the
simulator). `GPUS` is the default table, labelled as NVIDIA GPU Feature Discovery labels
nodes (`nvidia.com/gpu.product`); api/accelerators.py holds the GKE preset and merges a
cluster's own mapping over it (`--gpu-types-file`, chart value `gpuTypes`).

Figures are vendor datasheet peaks, dense (no sparsity), per GPU:
- H100 SXM5, H200 SXM, B200 (HGX B200), A100 SXM4 80/40 GB, L40S, L4, A10, A10G, T4: the
  NVIDIA product datasheets (nvidia.com/en-us/data-center/<product>/); A10G (AWS g5) has no
  NVIDIA datasheet: it is an A10 at lower clocks, and 70 TFLOPS BF16 dense is the figure
  AWS-based benchmarks report, an estimate.
- MI300X: the AMD Instinct MI300X datasheet (amd.com/en/products/accelerators/instinct/mi300/
  mi300x.html); labelled as the AMD GPU operator's node labeller does
  (`amd.com/gpu.product-name`).

Precision rules (vLLM's kernels): BF16 needs sm80+ (Ampere); FP8 W8A8 needs sm89+ (Ada,
Hopper, Blackwell); INT8 W8A8 and AWQ/GPTQ INT4 need sm75+ (Turing); FP16 sm70+. An
accelerator without an NVIDIA compute capability lists its precisions instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WeightPrecision = Literal["bf16", "fp16", "fp8", "int8", "int4"]
PRECISIONS: tuple[WeightPrecision, ...] = ("bf16", "fp16", "fp8", "int8", "int4")
MIN_SM: dict[WeightPrecision, int] = {"bf16": 80, "fp16": 70, "fp8": 89, "int8": 75, "int4": 75}

NFD_LABEL = "nvidia.com/gpu.product"  # NVIDIA GPU Feature Discovery
GKE_LABEL = "cloud.google.com/gke-accelerator"
AMD_LABEL = "amd.com/gpu.product-name"  # AMD GPU operator's node labeller
NVIDIA_RESOURCE = "nvidia.com/gpu"
AMD_RESOURCE = "amd.com/gpu"


def precisions_for_sm(sm: int) -> frozenset[WeightPrecision]:
    """The weight precisions vLLM runs on an NVIDIA GPU of compute capability `sm` (89 = 8.9)."""
    return frozenset(p for p in PRECISIONS if sm >= MIN_SM[p])


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type. Units are in the names."""

    type: str
    label_value: str  # the value of `label_key` on nodes that carry this GPU
    compute_capability: tuple[int, int] | None  # NVIDIA only; None for other vendors
    memory_gb: float
    hbm_tb_per_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float  # 0 where the GPU has no FP8 tensor cores
    int8_dense_tops: float
    label_key: str = NFD_LABEL
    resource: str = NVIDIA_RESOURCE
    # Weight precisions vLLM runs here; empty: derived from the compute capability.
    precisions: frozenset[WeightPrecision] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.precisions and self.compute_capability is not None:
            object.__setattr__(self, "precisions", precisions_for_sm(self.sm))

    @property
    def sm(self) -> int:
        """Compute capability as vLLM spells it: (8, 9) -> 89; 0 without one (not NVIDIA)."""
        if self.compute_capability is None:
            return 0
        return self.compute_capability[0] * 10 + self.compute_capability[1]

    @property
    def node_selector(self) -> dict[str, str]:
        """The nodeSelector that places a pod on this GPU type."""
        return {self.label_key: self.label_value}


GPUS: dict[str, GpuSpec] = {
    g.type: g
    for g in (
        GpuSpec("H100", "NVIDIA-H100-80GB-HBM3", (9, 0), 80, 3.35, 989, 1979, 1979),
        GpuSpec("H200", "NVIDIA-H200", (9, 0), 141, 4.8, 989, 1979, 1979),
        GpuSpec("B200", "NVIDIA-B200", (10, 0), 180, 7.7, 2250, 4500, 4500),
        GpuSpec("A100", "NVIDIA-A100-SXM4-80GB", (8, 0), 80, 2.04, 312, 0, 624),
        GpuSpec("A100-40GB", "NVIDIA-A100-SXM4-40GB", (8, 0), 40, 1.56, 312, 0, 624),
        GpuSpec("L40S", "NVIDIA-L40S", (8, 9), 48, 0.864, 362, 733, 733),
        GpuSpec("L4", "NVIDIA-L4", (8, 9), 24, 0.3, 121, 242, 242),
        GpuSpec("A10", "NVIDIA-A10", (8, 6), 24, 0.6, 125, 0, 250),
        GpuSpec("A10G", "NVIDIA-A10G", (8, 6), 24, 0.6, 70, 0, 140),
        GpuSpec("T4", "Tesla-T4", (7, 5), 16, 0.32, 0, 0, 130),
        GpuSpec(
            "MI300X",
            "AMD_Instinct_MI300X",
            None,
            192,
            5.3,
            1307,
            2615,
            2615,
            label_key=AMD_LABEL,
            resource=AMD_RESOURCE,
            precisions=frozenset(PRECISIONS),
        ),
    )
}


def gpu_spec(gpu_type: str) -> GpuSpec:
    """Look up a built-in GPU type; raises KeyError naming the known types."""
    try:
        return GPUS[gpu_type]
    except KeyError:
        known = ", ".join(sorted(GPUS))
        raise KeyError(f"unknown GPU type {gpu_type!r}; known types: {known}") from None
