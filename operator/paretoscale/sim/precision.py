"""Which weight format and GEMM kernel vLLM would run, from the flags, the name and the GPU.

vLLM reads the quantization from the checkpoint's config; the simulator has only the name, so
it reads the conventions checkpoint publishers use (RedHatAI "-FP8-dynamic", "quantized.w8a8",
"quantized.w4a16"; Qwen "-FP8", "-AWQ", "-GPTQ-Int4/Int8"; TheBloke "-AWQ"/"-GPTQ"). An explicit
`--quantization` wins over the name, as in vLLM. Kernel choice follows vLLM 0.9-0.11:
- AWQ/GPTQ checkpoints run the Marlin kernels (awq_marlin, gptq_marlin; Machete on Hopper)
  on sm80+, unless `--quantization awq`/`gptq` forces the legacy kernels;
- FP8 W8A8 needs sm89+; on sm80 vLLM runs FP8 weights with the weight-only FP8 Marlin kernel;
- `--quantization fp8` on an unquantized checkpoint quantizes online: per-tensor weight
  scales and dynamic per-token activation scales ("fp8-dynamic").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paretoscale.sim.vllm_args import VllmArgs


class UnsupportedOnGpu(ValueError):
    """The GPU cannot run what the flags ask for (vLLM fails at startup the same way)."""


@dataclass(frozen=True)
class Precision:
    """How weights are stored and multiplied.

    `kernel` names the GEMM family whose efficiency the performance model uses: "dense16"
    (BF16/FP16 cuBLAS), "fp32", "fp8" (W8A8, static activation scales), "fp8-dynamic", "int8"
    (W8A8 cutlass), weight-only "marlin" (compressed-tensors WNA16; Machete on Hopper),
    "awq_marlin", "gptq_marlin", "gptq_marlin_w8", "fp8_marlin", and the legacy "awq" and
    "gptq" (exllama) kernels.
    """

    name: str  # what a person calls it: bf16, fp16, fp8, fp8-dynamic, int8-w8a8, w4a16, ...
    weight_bits: int
    compute: str  # dtype of the tensor-core math: bf16 | fp16 | fp32 | fp8 | int8
    kernel: str
    kv_cache_bytes: float

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes per weight including group scales (one 16-bit scale per 128 weights for the
        weight-only formats)."""
        weight_only = self.weight_bits < 16 and self.compute in ("bf16", "fp16")
        group_scales = 2.0 / 128 if weight_only else 0.0
        return self.weight_bits / 8.0 + group_scales


_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"fp8[-_.]?dynamic", "fp8-dynamic"),
    (r"fp8|w8a8[-_.]?fp8|nvfp8", "fp8"),
    (r"w8a8|int8[-_.]?w8a8|smoothquant", "int8-w8a8"),
    (r"gptq[-_.]?int8|w8a16|int8", "w8a16"),
    (r"awq", "awq"),
    (r"gptq|w4a16|int4|4bit|marlin", "w4a16"),
)


def name_quantization(model: str) -> str | None:
    """The quantized format a checkpoint name announces, or None for a 16-bit checkpoint."""
    lowered = model.lower()
    for pattern, fmt in _NAME_RULES:
        if re.search(pattern, lowered):
            return fmt
    return None


def _kv_bytes(args: VllmArgs, sixteen_bit_bytes: float) -> float:
    return 1.0 if args.kv_cache_dtype.startswith("fp8") else sixteen_bit_bytes


def resolve_precision(args: VllmArgs, sm: int) -> Precision:
    """The weight format and kernel vLLM would use for `args` on a GPU of compute capability
    `sm` (e.g. 90). Raises UnsupportedOnGpu where vLLM refuses to start."""
    if args.dtype in ("float", "float32"):
        compute16 = "fp32"
    elif args.dtype in ("half", "float16") or sm < 80:
        compute16 = "fp16"
    else:
        compute16 = "bf16"
    if args.dtype == "bfloat16" and sm < 80:
        raise UnsupportedOnGpu(
            f"Bfloat16 is only supported on GPUs with compute capability of at least 8.0; this "
            f"GPU has {sm // 10}.{sm % 10}. Use --dtype half."
        )
    kv16 = 4.0 if compute16 == "fp32" else 2.0
    fmt = _format_from_flags(args)
    if fmt is None:
        if compute16 == "fp32":
            return Precision("fp32", 32, "fp32", "fp32", _kv_bytes(args, kv16))
        return Precision(compute16, 16, compute16, "dense16", _kv_bytes(args, kv16))
    kv = _kv_bytes(args, 2.0)
    if fmt in ("fp8", "fp8-dynamic"):
        if sm >= 89:
            return Precision(fmt, 8, "fp8", fmt, kv)
        if sm >= 80:  # vLLM: "Your GPU does not have native support for FP8 ... Marlin"
            return Precision("fp8-marlin", 8, compute16, "fp8_marlin", kv)
        raise UnsupportedOnGpu(f"FP8 weights need compute capability 8.0+ (8.9+ for W8A8); {sm}")
    if sm < 75:
        raise UnsupportedOnGpu(f"quantized formats need compute capability 7.5+; this GPU: {sm}")
    if fmt == "int8-w8a8":
        return Precision(fmt, 8, "int8", "int8", kv)
    legacy = args.quantization in ("awq", "gptq") or sm < 80
    if fmt == "w8a16":
        kernel = "gptq" if legacy else "gptq_marlin_w8"
        return Precision(fmt, 8, compute16, kernel, kv)
    if fmt == "awq":
        kernel = "awq" if legacy else "awq_marlin"
        return Precision(kernel, 4, compute16, kernel, kv)
    if legacy:
        return Precision("gptq", 4, compute16, "gptq", kv)
    if args.quantization in ("gptq", "gptq_marlin", "gptq_marlin_24", "marlin"):
        return Precision("gptq_marlin", 4, compute16, "gptq_marlin", kv)
    if "gptq" in args.model.lower() and args.quantization is None:
        return Precision("gptq_marlin", 4, compute16, "gptq_marlin", kv)
    # compressed-tensors W4A16 (RedHatAI "quantized.w4a16"): Machete on Hopper, Marlin before
    return Precision("w4a16", 4, compute16, "marlin", kv)


def _format_from_flags(args: VllmArgs) -> str | None:
    """The quantized format from --quantization (which wins) and the model name."""
    from_name = name_quantization(args.model)
    q = args.quantization
    if q is None:
        return from_name
    if q in ("fp8", "modelopt", "ptpc_fp8"):
        # On an FP8 checkpoint, its own (static) scheme; on a 16-bit one, online dynamic.
        return from_name if from_name in ("fp8", "fp8-dynamic") else "fp8-dynamic"
    if q == "fbgemm_fp8":
        return "fp8-dynamic"
    if q in ("awq", "awq_marlin"):
        return "awq"
    if q in ("gptq", "gptq_marlin", "gptq_bitblas", "marlin", "gptq_marlin_24", "bitblas"):
        return "w8a16" if from_name == "w8a16" else "w4a16"
    if q in ("experts_int8", "tpu_int8"):
        return "w8a16"
    if q in ("compressed-tensors", "quark", "torchao", "moe_wna16", "qqq"):
        return from_name or "int8-w8a8"
    return "w4a16"  # bitsandbytes, gguf, hqq, aqlm, deepspeedfp, mxfp4, ...: 4-bit weights
