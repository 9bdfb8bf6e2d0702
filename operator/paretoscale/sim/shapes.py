"""Transformer shapes the simulator knows, and how a model name maps to one.

A shape is what the performance model needs from a checkpoint: how many weight bytes a decode
step streams, how many FLOPs a token costs, and how many KV-cache bytes a token of context
holds. Known families are matched by name (Llama-3.x 1B/3B/8B/70B, Qwen3 0.6B-32B, and the
small draft models used for speculative decoding); anything else is synthesised from a
parameter count (`--sim-params-b`, or the "<N>b" in the name) with Llama-like proportions.

Figures are from the models' public config.json files (hidden_size, num_hidden_layers,
num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size,
tie_word_embeddings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """A dense decoder-only transformer with grouped-query attention."""

    name: str
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    max_context: int = 131072  # max_position_embeddings: vLLM's default --max-model-len

    @property
    def layer_params(self) -> int:
        """Weights of one decoder layer: q,o (hidden x heads*head_dim), k,v (hidden x
        kv_heads*head_dim) and a gated MLP (3 x hidden x intermediate). Norms are ignored."""
        attn = 2 * self.hidden * self.n_heads * self.head_dim
        attn += 2 * self.hidden * self.n_kv_heads * self.head_dim
        return attn + 3 * self.hidden * self.intermediate

    @property
    def linear_params(self) -> int:
        """Weights a forward pass multiplies by: all layers plus the LM head (the embedding
        table is a lookup, not a GEMM). 2 x this is the FLOPs per token of the linear layers."""
        return self.n_layers * self.layer_params + self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def total_params(self) -> int:
        """All parameters, counting the embedding table once when tied to the LM head."""
        embed = 0 if self.tied_embeddings else self.vocab * self.hidden
        return self.linear_params + embed

    def kv_bytes_per_token(self, kv_dtype_bytes: float) -> float:
        """KV-cache bytes one token of context occupies:
        2 (K and V) x n_layers x n_kv_heads x head_dim x kv_dtype_bytes."""
        return 2.0 * self.n_layers * self.n_kv_heads * self.head_dim * kv_dtype_bytes

    def attention_flops_per_token_pair(self) -> float:
        """FLOPs of one query token attending to one context token over all layers:
        2 (QK^T) + 2 (PV) multiply-adds x n_heads x head_dim x n_layers."""
        return 4.0 * self.n_layers * self.n_heads * self.head_dim


_KNOWN: tuple[tuple[str, ModelShape], ...] = (
    # Order matters: the first pattern that matches the lowercased name wins.
    ("llama-3.2-1b", ModelShape("llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, True)),
    ("llama-3.2-3b", ModelShape("llama-3.2-3b", 28, 3072, 24, 8, 128, 8192, 128256, True)),
    ("qwama-0.5b", ModelShape("qwama-0.5b", 24, 896, 14, 2, 64, 4864, 128256, True, 32768)),
    ("qwen3-0.6b", ModelShape("qwen3-0.6b", 28, 1024, 16, 8, 128, 3072, 151936, True, 40960)),
    ("qwen3-1.7b", ModelShape("qwen3-1.7b", 28, 2048, 16, 8, 128, 6144, 151936, True, 40960)),
    ("qwen3-4b", ModelShape("qwen3-4b", 36, 2560, 32, 8, 128, 9728, 151936, True, 40960)),
    ("qwen3-8b", ModelShape("qwen3-8b", 36, 4096, 32, 8, 128, 12288, 151936, False, 40960)),
    ("qwen3-14b", ModelShape("qwen3-14b", 40, 5120, 40, 8, 128, 17408, 151936, False, 40960)),
    ("qwen3-32b", ModelShape("qwen3-32b", 64, 5120, 64, 8, 128, 25600, 151936, False, 40960)),
    ("llama-3.*-405b", ModelShape("llama-3.1-405b", 126, 16384, 128, 8, 128, 53248, 128256)),
    ("llama-3-70b", ModelShape("llama-3-70b", 80, 8192, 64, 8, 128, 28672, 128256, False, 8192)),
    ("llama-3-8b", ModelShape("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, False, 8192)),
    ("llama-3.*-70b", ModelShape("llama-3.1-70b", 80, 8192, 64, 8, 128, 28672, 128256)),
    ("llama-3.*-8b", ModelShape("llama-3.1-8b", 32, 4096, 32, 8, 128, 14336, 128256)),
)

_PARAMS_B_RE = re.compile(r"(?<![0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])")


def params_b_from_name(model: str) -> float | None:
    """The parameter count in billions written in a model name ("Qwen3-8B" -> 8.0), or None.

    Mixture-of-experts names ("30B-A3B") report the total, which is what the weights occupy.
    """
    found = _PARAMS_B_RE.findall(model.lower().replace("_", "-"))
    return float(found[0]) if found else None


def synthetic_shape(params_b: float, name: str = "synthetic") -> ModelShape:
    """A Llama-3-like shape with about `params_b` billion parameters.

    Power laws through Llama-3.1-8B (32 layers x 4096) and 70B (80 x 8192):
    hidden = 4096 x (P / 8.03)^0.32 (rounded to 128), layers = 32 x (P / 8.03)^0.42, GQA with
    8 KV heads of 128 dims, vocab 128256; the intermediate size is then solved so the total
    parameter count is P (at least 2 x hidden).
    """
    if not params_b > 0:
        raise ValueError(f"--sim-params-b must be positive, got {params_b}")
    ratio = params_b / 8.03
    hidden = max(512, round(4096 * ratio**0.32 / 128) * 128)
    layers = max(4, round(32 * ratio**0.42))
    heads = hidden // 128
    kv_heads = min(8, heads)
    attn = 2 * hidden * heads * 128 + 2 * hidden * kv_heads * 128
    embed = 2 * 128256 * hidden
    mlp_budget = params_b * 1e9 - embed - layers * attn
    intermediate = max(2 * hidden, int(mlp_budget / (layers * 3 * hidden)))
    return ModelShape(name, layers, hidden, heads, kv_heads, 128, intermediate, 128256)


def shape_for_model(model: str, params_b: float | None = None) -> ModelShape:
    """The shape of `model`: a known family by name, else synthetic from `params_b`, else
    synthetic from the "<N>b" in the name. Raises ValueError when none of these applies.

    An explicit `params_b` (the `--sim-params-b` flag) wins over the name.
    """
    if params_b is not None:
        return synthetic_shape(params_b, name=f"synthetic-{params_b:g}b")
    lowered = model.lower().replace("_", "-").replace("meta-llama-3", "llama-3")
    for pattern, shape in _KNOWN:
        if re.search(pattern, lowered):
            return shape
    from_name = params_b_from_name(model)
    if from_name is not None:
        return synthetic_shape(from_name, name=f"synthetic-{from_name:g}b")
    raise ValueError(
        f"cannot infer the size of model {model!r}: the name has no '<N>b' and it is not a "
        "known family; pass --sim-params-b N (billions of parameters)"
    )
