"""What a GPU generation can run: precision detection and the admission rules.

vLLM's kernels set the floor (DESIGN.md): BF16 needs sm80+ (Ampere), FP8 W8A8 sm89+ (Ada,
Hopper), INT8 W8A8 and AWQ/GPTQ INT4 sm75+ (Turing). The precision of a variant comes from its
flags first and from the checkpoint's name second, as vLLM detects it from the checkpoint
config (RedHatAI's `-FP8`, `quantized.w8a8`, `quantized.w4a16`, `-AWQ`, `-GPTQ`).

The explicit-flag part of these rules is also emitted as CEL (`cel_rules`) so the API server
refuses such objects at `kubectl apply`; the name-detected part is enforced by the operator
and `paretoscale plan`, which report it on the object.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from paretoscale.api.gpus import GPUS, gpu_spec

WeightPrecision = Literal["bf16", "fp16", "fp8", "int8", "int4"]

MIN_SM: dict[WeightPrecision, int] = {"bf16": 80, "fp16": 70, "fp8": 89, "int8": 75, "int4": 75}
_NAME_HINTS: tuple[tuple[str, WeightPrecision], ...] = (
    (r"fp8|w8a8-?fp8", "fp8"),
    (r"w8a8|int8", "int8"),
    (r"w4a16|awq|gptq|int4|4bit", "int4"),
)


def weight_precision(model: str, dtype: str | None, quantization: str | None) -> WeightPrecision:
    """Precision of the weights as vLLM will run them: flags first, then the checkpoint name."""
    if quantization == "fp8":
        return "fp8"
    if quantization in ("awq", "awq_marlin", "gptq", "gptq_marlin", "bitsandbytes"):
        return "int4"
    name = model.lower()
    for pattern, precision in _NAME_HINTS:
        if re.search(pattern, name):
            return precision
    if quantization == "experts_int8":
        return "int8"
    if dtype in ("float16", "half"):
        return "fp16"
    return "bf16"


def gpu_problem(
    variant_name: str, gpu_type: str, model: str, dtype: str | None, quantization: str | None
) -> str | None:
    """Why this GPU cannot run this variant, in words that say what to change; None if it can."""
    spec = gpu_spec(gpu_type)
    precision = weight_precision(model, dtype, quantization)
    need = MIN_SM[precision]
    if spec.sm >= need:
        return None
    able = ", ".join(sorted(t for t, g in GPUS.items() if g.sm >= need))
    fix = {
        "bf16": "use dtype: float16",
        "fp8": "use an INT8 W8A8 or INT4 checkpoint",
        "int8": "use an FP16 checkpoint",
        "int4": "use an FP16 checkpoint",
        "fp16": "use another GPU",
    }[precision]
    return (
        f"variant {variant_name!r}: {precision.upper()} weights need compute capability "
        f"{need // 10}.{need % 10}+, but {gpu_type} is {spec.sm // 10}.{spec.sm % 10}; "
        f"run it on {able}, or {fix}"
    )


def cel_rules() -> list[dict[str, Any]]:
    """CEL for the rules that explicit flags decide (the checkpoint name is not checked here)."""

    def able(need: int) -> str:
        return "[" + ", ".join(f"'{t}'" for t in sorted(GPUS) if GPUS[t].sm >= need) + "]"

    return [
        {
            "rule": "!has(self.vllm.quantization) || self.vllm.quantization != 'fp8' || "
            f"self.gpu.type in {able(MIN_SM['fp8'])}",
            "message": "quantization fp8 (FP8 W8A8) needs compute capability 8.9+ "
            "(Ada or Hopper: L4, L40S, H100, H200); use an INT8 W8A8 or INT4 checkpoint",
        },
        {
            "rule": "!has(self.vllm.dtype) || self.vllm.dtype != 'bfloat16' || "
            f"self.gpu.type in {able(MIN_SM['bf16'])}",
            "message": "dtype bfloat16 needs compute capability 8.0+ (Ampere or newer); "
            "use dtype: float16",
        },
    ]
