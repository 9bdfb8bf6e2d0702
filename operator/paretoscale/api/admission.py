"""What a GPU type can run: precision detection and the checks that need the GPU type mapping.

vLLM's kernels set the floor (api/gpus.py): BF16 needs sm80+ (Ampere), FP8 W8A8 sm89+ (Ada,
Hopper), INT8 W8A8 and AWQ/GPTQ INT4 sm75+ (Turing). The precision of a variant comes from its
flags first and from the checkpoint's name second, as vLLM detects it from the checkpoint
config (RedHatAI's `-FP8`, `quantized.w8a8`, `quantized.w4a16`, `-AWQ`, `-GPTQ`).

These checks depend on the cluster's GPU type mapping (api/accelerators.py), which the API
server cannot see, so they are not CEL: the operator runs `gpu_type_problems` on every spec
(condition SpecValid False) and `paretoscale plan` exits 2 on them.
"""

from __future__ import annotations

import re

from paretoscale.api.accelerators import GpuTypes
from paretoscale.api.gpus import MIN_SM, WeightPrecision
from paretoscale.api.types import ModelDeploymentSpec

_NAME_HINTS: tuple[tuple[str, WeightPrecision], ...] = (
    (r"fp8|w8a8-?fp8", "fp8"),
    (r"w8a8|int8", "int8"),
    (r"w4a16|awq|gptq|int4|4bit", "int4"),
)
_FIX: dict[WeightPrecision, str] = {
    "bf16": "use dtype: float16",
    "fp8": "use an INT8 W8A8 or INT4 checkpoint",
    "int8": "use an FP16 checkpoint",
    "int4": "use an FP16 checkpoint",
    "fp16": "use another GPU",
}


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
    variant_name: str,
    gpu_type: str,
    model: str,
    dtype: str | None,
    quantization: str | None,
    gpus: GpuTypes,
) -> str | None:
    """Why this GPU type cannot run this variant, in words that say what to change; None if
    it can. An unknown GPU type is a problem naming the mapping to extend."""
    unknown = gpus.problem(gpu_type)
    if unknown is not None:
        return f"variant {variant_name!r}: {unknown}"
    spec = gpus.types[gpu_type]
    precision = weight_precision(model, dtype, quantization)
    if precision in spec.precisions:
        return None
    able = ", ".join(sorted(t for t, g in gpus.types.items() if precision in g.precisions))
    need = MIN_SM[precision]
    has = (
        f"{gpu_type} is {spec.sm // 10}.{spec.sm % 10}"
        if spec.compute_capability is not None
        else f"{gpu_type} runs {', '.join(sorted(spec.precisions)) or 'none'}"
    )
    return (
        f"variant {variant_name!r}: {precision.upper()} weights need compute capability "
        f"{need // 10}.{need % 10}+, but {has}; run it on {able or 'another GPU type'}, "
        f"or {_FIX[precision]}"
    )


def gpu_type_problems(spec: ModelDeploymentSpec, gpus: GpuTypes) -> list[str]:
    """Every GPU type of `spec` not in the mapping, and every variant its GPU cannot run, as
    "spec.path: what to change" lines (empty: the spec can run on this cluster's types)."""
    out = []
    for i, pool in enumerate(spec.gpus):
        problem = gpus.problem(pool.type)
        if problem is not None:
            out.append(f"spec.gpus[{i}].type: {problem}")
    for i, v in enumerate(spec.variants):
        if gpus.problem(v.gpu.type) is not None:
            continue  # reported once, under spec.gpus (every variant's type is listed there)
        problem = gpu_problem(
            v.name, v.gpu.type, v.vllm.model, v.vllm.dtype, v.vllm.quantization, gpus
        )
        if problem is not None:
            out.append(f"spec.variants[{i}]: {problem}")
    return out
