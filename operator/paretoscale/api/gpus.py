"""The GPU types paretoscale knows: what each can run and how fast it moves bytes.

One table, used by admission (which precisions a GPU generation supports), by the simulator's
performance model (bandwidth and dense throughput) and by the demo cluster's fake nodes
(the `nvidia.com/gpu.product` label). Figures are vendor datasheet peaks (dense, no sparsity).

Precision rules (vLLM's kernels): BF16 needs sm80+ (Ampere); FP8 W8A8 needs sm89+ (Ada,
Hopper); INT8 W8A8 and AWQ/GPTQ INT4 need sm75+ (Turing).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type. Units are in the names."""

    type: str
    product_label: str  # the value of nvidia.com/gpu.product on nodes that carry it
    compute_capability: tuple[int, int]
    memory_gb: float
    hbm_tb_per_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float  # 0 where the GPU has no FP8 tensor cores
    int8_dense_tops: float

    @property
    def sm(self) -> int:
        """Compute capability as vLLM spells it: (8, 9) -> 89."""
        return self.compute_capability[0] * 10 + self.compute_capability[1]


GPUS: dict[str, GpuSpec] = {
    g.type: g
    for g in (
        GpuSpec("H100", "NVIDIA-H100-80GB-HBM3", (9, 0), 80, 3.35, 989, 1979, 1979),
        GpuSpec("H200", "NVIDIA-H200", (9, 0), 141, 4.8, 989, 1979, 1979),
        GpuSpec("A100", "NVIDIA-A100-SXM4-80GB", (8, 0), 80, 2.04, 312, 0, 624),
        GpuSpec("A100-40GB", "NVIDIA-A100-SXM4-40GB", (8, 0), 40, 1.56, 312, 0, 624),
        GpuSpec("L40S", "NVIDIA-L40S", (8, 9), 48, 0.864, 362, 733, 733),
        GpuSpec("L4", "NVIDIA-L4", (8, 9), 24, 0.3, 121, 242, 242),
        GpuSpec("A10", "NVIDIA-A10", (8, 6), 24, 0.6, 125, 0, 250),
        GpuSpec("T4", "Tesla-T4", (7, 5), 16, 0.32, 0, 0, 130),
    )
}


def gpu_spec(gpu_type: str) -> GpuSpec:
    """Look up a GPU type; raises KeyError naming the known types."""
    try:
        return GPUS[gpu_type]
    except KeyError:
        known = ", ".join(sorted(GPUS))
        raise KeyError(f"unknown GPU type {gpu_type!r}; known types: {known}") from None
