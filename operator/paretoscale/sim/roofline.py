"""Roofline coefficients of a transformer on a GPU: the per-GPU constants the step-time model
is built from, and the KV-cache capacity vLLM would allocate.

Each coefficient is "seconds per unit of work" at a measured or calibrated efficiency:
- t_w = weight_bytes / (HBM_B_per_s x eta_w): streaming the weight shard once (a step's
  floor at small batch);
- c = 2 x linear_params / (peak_FLOP_per_s x eta_c) per token: the GEMMs when compute-bound;
- a = n_layers x (10 hidden + 4 intermediate / TP) x 2 B / (HBM_B_per_s x 0.8) per token:
  activation traffic of the non-GEMM kernels (norms, rotary, SiLU, residuals);
- kv = kv_bytes_per_token / (HBM_B_per_s x eta_attn) per context token per decode step;
- prefill attention: 4 x n_layers x n_heads x head_dim FLOPs per (query, key) pair at half
  the BF16 peak (FlashAttention at short lengths);
- all-reduce (TP > 1): 2 per layer + 1 for the logits, each latency + ring traffic
  2 (TP-1)/TP x hidden x 2 B per token over the interconnect.

The efficiency table is the calibration: Hopper dense16/fp8/attention are fitted to stay at
or above the measured H100 floor (data/h100_decode_step_floor.csv); the rest are fitted to
the published vLLM figures (data/variants_published.csv); tests/unit/sim checks both.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretoscale.api.gpus import GpuSpec
from paretoscale.sim.precision import Precision
from paretoscale.sim.shapes import ModelShape

GIB = 2**30


class DoesNotFit(ValueError):
    """The model does not fit the GPU memory with these flags (vLLM fails at startup)."""


@dataclass(frozen=True)
class KernelEfficiency:
    """Fractions of the datasheet peak a GEMM family reaches: `weight_read` of HBM bandwidth
    while streaming weights (small batch), `compute` of the dense peak of its math dtype
    (large batch). For weight-only kernels the lower `compute` is the dequantization cost
    that grows with the batch."""

    weight_read: float
    compute: float


# (architecture, kernel) -> efficiency.
# Floor fit (H100): eta_w(dense16) <= 15.0 GB / (3.35 TB/s x 5.57 ms) = 0.80 so the step stays
# above the floor up to batch 64; eta_c(dense16) <= 0.70 from the 70B TP4 shard at batch 512;
# eta_w(fp8) <= 8.03 GB / (3.35 TB/s x 3.14 ms) = 0.76; eta_c(fp8) <= 0.70 at batch 512.
# Below the floor bound, eta_c is calibrated to the GPUStack vLLM 0.9.2 ShareGPT figures.
EFFICIENCY: dict[tuple[str, str], KernelEfficiency] = {
    ("hopper", "dense16"): KernelEfficiency(0.80, 0.70),  # floor fit
    ("hopper", "fp32"): KernelEfficiency(0.80, 0.70),
    ("hopper", "fp8"): KernelEfficiency(0.71, 0.50),  # fp8-static row
    ("hopper", "fp8-dynamic"): KernelEfficiency(0.71, 0.43),  # fp8-dynamic row
    ("hopper", "int8"): KernelEfficiency(0.71, 0.50),  # no row: as fp8
    ("hopper", "marlin"): KernelEfficiency(0.50, 0.70),  # w4a16 row (Machete)
    ("hopper", "awq"): KernelEfficiency(0.45, 0.41),  # awq row (--quantization awq)
    ("hopper", "gptq"): KernelEfficiency(0.45, 0.41),  # no row: as awq
    ("ampere", "dense16"): KernelEfficiency(0.80, 0.70),  # as Hopper (no A100 floor)
    ("ampere", "fp32"): KernelEfficiency(0.80, 0.70),
    ("ampere", "int8"): KernelEfficiency(0.76, 0.45),  # no row
    ("ampere", "marlin"): KernelEfficiency(0.70, 0.48),  # as gptq_marlin
    ("ampere", "gptq_marlin"): KernelEfficiency(0.70, 0.48),  # A100 gptq-marlin-int4 ratio
    ("ampere", "gptq_marlin_w8"): KernelEfficiency(0.70, 0.40),  # A100 gptq-int8 ratio
    ("ampere", "awq"): KernelEfficiency(0.55, 0.60),  # A100 awq / bf16 ratio (legacy kernel)
    ("ampere", "gptq"): KernelEfficiency(0.55, 0.40),  # no row
}
# Kernels without a row of their own borrow the closest one's.
KERNEL_FALLBACK = {
    "awq_marlin": "marlin", "gptq_marlin": "marlin", "gptq_marlin_w8": "marlin",
    "fp8_marlin": "gptq_marlin_w8", "fp8": "fp8_marlin", "fp8-dynamic": "fp8_marlin",
}  # fmt: skip
# Attention: eta over HBM for KV reads, and a kernel floor per layer (fitted to the floor's
# attn_step rows: 0.2136 ms for 32 layers at batch 1 x 1k tokens; 0.94 ms at 4 x 4k).
ATTN_EFFICIENCY = 0.82
# FP8 KV halves the bytes but the attention kernel dequantizes in its inner loop; fitted to
# GPUStack's bf16+fp8-kv row (+1.6% throughput over bf16, not the +2x attention bytes suggest).
ATTN_EFFICIENCY_FP8_KV = 0.41
ATTN_LAYER_FLOOR_S = 6e-6
PREFILL_ATTN_EFFICIENCY = 0.5
ACTIVATION_EFFICIENCY = 0.8
# Interconnect for tensor parallelism. NOT in api/gpus.py (asked the lead): SXM parts have
# NVLink, the others PCIe 4.0 x16.
LINK_GB_PER_S = {"H100": 450.0, "H200": 450.0, "A100": 300.0, "A100-40GB": 300.0}
PCIE_GB_PER_S = 25.0
ALLREDUCE_LATENCY_S = {True: 8e-6, False: 25e-6}  # NVLink custom all-reduce / PCIe NCCL
# Memory vLLM holds besides weights, activations and KV: CUDA graphs, NCCL, allocator slack.
RUNTIME_RESERVE_BYTES = 1.0 * GIB


def arch_of(gpu: GpuSpec) -> str:
    """The GPU generation whose kernel efficiencies apply: sm90+ hopper, sm89 ada,
    sm80-87 ampere, sm75 turing."""
    if gpu.sm >= 90:
        return "hopper"
    if gpu.sm >= 89:
        return "ada"
    if gpu.sm >= 80:
        return "ampere"
    return "turing"


def kernel_efficiency(gpu: GpuSpec, kernel: str) -> KernelEfficiency:
    """Efficiency of `kernel` on `gpu`. Ada borrows Hopper's rows, Turing Ampere's; a kernel
    without a row borrows its KERNEL_FALLBACK's."""
    arch = arch_of(gpu)
    family = {"ada": "hopper", "turing": "ampere"}.get(arch, arch)
    name: str | None = kernel
    while name is not None:
        if (family, name) in EFFICIENCY:
            return EFFICIENCY[(family, name)]
        name = KERNEL_FALLBACK.get(name)
    raise KeyError(f"no efficiency for kernel {kernel!r} on {gpu.type}")


def peak_flop_per_s(gpu: GpuSpec, compute: str) -> float:
    """Dense tensor-core peak of a math dtype, FLOP/s. FP16 = BF16; where the table has no
    BF16 (T4), FP16 = INT8 / 2; FP32 runs as TF32 = BF16 / 2."""
    bf16 = gpu.bf16_dense_tflops or gpu.int8_dense_tops / 2
    tflops = {"bf16": bf16, "fp16": bf16, "fp32": bf16 / 2, "fp8": gpu.fp8_dense_tflops,
              "int8": gpu.int8_dense_tops}[compute]  # fmt: skip
    if tflops <= 0:
        raise ValueError(f"{gpu.type} has no {compute} tensor cores")
    return tflops * 1e12


@dataclass(frozen=True)
class Coefficients:
    """Per-GPU constants of the step-time formula (see the module docstring)."""

    weight_bytes: float  # read per step: layers + LM head (the embedding is a lookup)
    memory_bytes: float  # held in memory: also the input embedding when not tied
    weight_read_s: float
    linear_s_per_token: float
    activation_s_per_token: float
    kv_bytes_per_token: float
    kv_read_s_per_token: float
    prefill_attn_s_per_pair: float
    attn_floor_s: float
    allreduce_fixed_s: float
    allreduce_s_per_token: float


def coefficients(shape: ModelShape, gpu: GpuSpec, precision: Precision, tp: int) -> Coefficients:
    """The per-GPU roofline constants of `shape` at `precision` on `tp` GPUs of type `gpu`.

    The LM head stays 16-bit in quantized checkpoints (it is in every RedHatAI/Qwen one), so
    its bytes and FLOPs are counted at BF16.
    """
    if tp < 1:
        raise ValueError(f"tensor parallel size must be >= 1, got {tp}")
    hbm = gpu.hbm_tb_per_s * 1e12
    eff = kernel_efficiency(gpu, precision.kernel)
    eff16 = kernel_efficiency(gpu, "fp32" if precision.compute == "fp32" else "dense16")
    head_bytes = 4.0 if precision.compute == "fp32" else 2.0
    layer_params = shape.n_layers * shape.layer_params
    weight_bytes = (
        layer_params * precision.weight_bytes_per_param + shape.lm_head_params * head_bytes
    ) / tp
    peak = peak_flop_per_s(gpu, precision.compute)
    peak16 = peak_flop_per_s(gpu, "fp32" if precision.compute == "fp32" else "bf16")
    linear_s_per_token = (
        2.0 * layer_params / (peak * eff.compute)
        + 2.0 * shape.lm_head_params / (peak16 * eff16.compute)
    ) / tp
    act_bytes = shape.n_layers * (10 * shape.hidden + 4 * shape.intermediate / tp) * 2.0
    kv_heads_per_gpu = max(1.0, shape.n_kv_heads / tp)
    kv_per_token = shape.kv_bytes_per_token(precision.kv_cache_bytes) * (
        kv_heads_per_gpu / shape.n_kv_heads
    )
    attn_eff = ATTN_EFFICIENCY_FP8_KV if precision.kv_cache_bytes < 2 else ATTN_EFFICIENCY
    if tp > 1:
        nvlink = gpu.type in LINK_GB_PER_S
        link = LINK_GB_PER_S.get(gpu.type, PCIE_GB_PER_S) * 1e9
        n_allreduce = 2 * shape.n_layers + 1
        allreduce_fixed_s = n_allreduce * ALLREDUCE_LATENCY_S[nvlink]
        allreduce_s_per_token = n_allreduce * 2.0 * (tp - 1) / tp * shape.hidden * 2.0 / link
    else:
        allreduce_fixed_s = allreduce_s_per_token = 0.0
    embedding = 0.0 if shape.tied_embeddings else shape.lm_head_params * head_bytes / tp
    return Coefficients(
        weight_bytes=weight_bytes,
        memory_bytes=weight_bytes + embedding,
        weight_read_s=weight_bytes / (hbm * eff.weight_read),
        linear_s_per_token=linear_s_per_token,
        activation_s_per_token=act_bytes / (hbm * ACTIVATION_EFFICIENCY),
        kv_bytes_per_token=kv_per_token,
        kv_read_s_per_token=kv_per_token / (hbm * attn_eff),
        prefill_attn_s_per_pair=shape.attention_flops_per_token_pair()
        / tp
        / (peak16 * PREFILL_ATTN_EFFICIENCY),
        attn_floor_s=shape.n_layers * ATTN_LAYER_FLOOR_S,
        allreduce_fixed_s=allreduce_fixed_s,
        allreduce_s_per_token=allreduce_s_per_token,
    )


def kv_capacity_tokens(
    shape: ModelShape,
    gpu: GpuSpec,
    coef: Coefficients,
    *,
    tp: int,
    gpu_memory_utilization: float,
    budget_tokens: int,
    max_num_seqs: int,
    label: str,
) -> int:
    """KV-cache tokens vLLM allocates. Per GPU: memory_GiB x gpu_memory_utilization - weight
    shard (with the embedding) - peak activations of a full step (budget x (4 hidden + 2 intermediate / TP) x 2 B
    + fp32 logits of max_num_seqs rows / TP) - 1 GiB runtime reserve; divided by the KV bytes
    one token takes on one GPU; rounded down to vLLM's 16-token blocks.

    Raises DoesNotFit with vLLM's message when nothing is left for the cache.
    """
    usable = gpu.memory_gb * GIB * gpu_memory_utilization
    activations = budget_tokens * (4 * shape.hidden + 2 * shape.intermediate / tp) * 2.0
    activations += max_num_seqs * shape.vocab * 4.0 / tp
    free = usable - coef.memory_bytes - activations - RUNTIME_RESERVE_BYTES
    if free <= 0:
        need = (coef.memory_bytes + activations + RUNTIME_RESERVE_BYTES) / GIB
        raise DoesNotFit(
            f"No available memory for the cache blocks: {label} needs about {need:.1f} GiB per "
            f"GPU before any KV cache and {gpu.type} offers {usable / GIB:.1f} GiB at "
            f"gpu_memory_utilization={gpu_memory_utilization}. Use more GPUs "
            "(--tensor-parallel-size), a smaller precision, or a larger GPU."
        )
    return int(free / coef.kv_bytes_per_token) // 16 * 16
