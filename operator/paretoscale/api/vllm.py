"""What a variant's `vllm` fields mean on the command line: the `vllm serve` argv.

Lives in api, below every layer, because two must agree on it exactly: actuate renders it
into Deployments, and replay builds each replica's performance model from the same argv.
"""

from __future__ import annotations

import json
from typing import Any

from paretoscale.api.types import VariantSpec

VLLM_PORT = 8000


def vllm_argv(variant: VariantSpec, served_model_name: str) -> list[str]:
    """`vllm serve` arguments for a variant (after `vllm serve`), one flag per spec field."""
    v = variant.vllm
    args = [v.model, "--served-model-name", served_model_name, "--port", str(VLLM_PORT)]
    if v.dtype:
        args += ["--dtype", v.dtype]
    if v.quantization:
        args += ["--quantization", v.quantization]
    if v.kv_cache_dtype:
        args += ["--kv-cache-dtype", v.kv_cache_dtype]
    tp = v.tensor_parallel_size or (variant.gpu.count if variant.gpu.count > 1 else None)
    if tp:
        args += ["--tensor-parallel-size", str(tp)]
    if v.max_model_len:
        args += ["--max-model-len", str(v.max_model_len)]
    if v.max_num_seqs:
        args += ["--max-num-seqs", str(v.max_num_seqs)]
    if v.gpu_memory_utilization:
        args += ["--gpu-memory-utilization", f"{v.gpu_memory_utilization:g}"]
    if v.speculative:
        s = v.speculative
        config: dict[str, Any] = {
            "method": s.method,
            "num_speculative_tokens": s.num_speculative_tokens,
        }
        if s.model:
            config["model"] = s.model
        args += ["--speculative-config", json.dumps(config, separators=(",", ":"), sort_keys=True)]
    return args + list(v.extra_args)
