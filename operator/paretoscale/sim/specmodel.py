"""Speculative decoding in the step-time model: what a drafting pass costs and how many tokens
a verification step emits, per method (draft model, EAGLE/EAGLE-3/MTP heads, n-gram lookup).

A step with speculation feeds each decoding sequence 1 + k tokens to the target model (so the
GEMMs see (1 + k) x batch tokens: nearly free while memory-bound, a (1 + k)-fold cost once
compute-bound), pays k sequential drafting passes, and emits on average
E = (1 - a^(k+1)) / (1 - a) tokens per sequence (a = per-position acceptance rate; the first
rejected draft is replaced by the target's own token). That is why it wins at small batches
and loses at large ones.

Drafting pass costs, linear in the batch: pass_fixed_s + pass_per_seq_s x batch,
- draft_model: the draft model's weight read + kernel floor, and its GEMM FLOPs per token;
- eagle / eagle3 / mtp / medusa: one decoder layer of the target's width plus the draft LM
  head (EAGLE-3 drafts over a 32k vocabulary, the others over the target's);
- ngram / suffix: no GPU work; a CPU lookup per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretoscale.api.gpus import GpuSpec
from paretoscale.sim.precision import Precision
from paretoscale.sim.roofline import coefficients, kernel_efficiency, peak_flop_per_s
from paretoscale.sim.shapes import ModelShape, shape_for_model
from paretoscale.sim.vllm_args import SpeculativeConfig

# Per-position acceptance rate by method, for chat-like data: EAGLE-3 at k=3 then emits
# E = 2.5 tokens per step, within the 2.5-3 mean acceptance lengths reported for chat.
# Acceptance depends on the data (n-gram lookup shines on summarization, which copies its
# input: 0.75 fits the vLLM blog's CNN/DailyMail speedup), so it is overridable
# (--sim-spec-acceptance).
DEFAULT_ACCEPTANCE = {
    "eagle3": 0.70, "eagle": 0.60, "mtp": 0.70, "deepseek_mtp": 0.70, "qwen3_next_mtp": 0.70,
    "ernie_mtp": 0.70, "draft_model": 0.60, "medusa": 0.55, "mlp_speculator": 0.55,
    "ngram": 0.45, "suffix": 0.50,
}  # fmt: skip
NGRAM_SEQ_S = 6e-6  # CPU n-gram proposal per sequence per step
DRAFT_PASS_FLOOR_S = 30e-6  # launch floor of one drafting pass (CUDA graphs)
EAGLE3_DRAFT_VOCAB = 32000
_BF16 = Precision("bf16", 16, "bf16", "dense16", 2.0)


@dataclass(frozen=True)
class SpecDecode:
    """k draft tokens per step, each accepted with probability `acceptance` until the first
    rejection, drafted by k sequential passes of `pass_fixed_s + pass_per_seq_s x batch`."""

    method: str
    num_speculative_tokens: int
    acceptance: float
    pass_fixed_s: float
    pass_per_seq_s: float

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens emitted per sequence per step: E = (1 - a^(k+1)) / (1 - a)."""
        a, k = self.acceptance, self.num_speculative_tokens
        if a >= 1.0:
            return float(k + 1)
        return (1.0 - a ** (k + 1)) / (1.0 - a)

    def draft_time_s(self, batch_size: float) -> float:
        """Drafting per step, s: k x (pass_fixed_s + pass_per_seq_s x batch)."""
        return self.num_speculative_tokens * (self.pass_fixed_s + self.pass_per_seq_s * batch_size)


def _head_shape(target: ModelShape, method: str) -> ModelShape:
    """The drafting head of EAGLE-style methods: one decoder layer of the target's width."""
    vocab = EAGLE3_DRAFT_VOCAB if method == "eagle3" else target.vocab
    return ModelShape(
        f"{target.name}-{method}-head", 1, target.hidden, target.n_heads, target.n_kv_heads,
        target.head_dim, target.intermediate, vocab, target.tied_embeddings, target.max_context,
    )  # fmt: skip


def spec_decode_for(
    config: SpeculativeConfig,
    target: ModelShape,
    gpu: GpuSpec,
    tp: int,
    acceptance: float | None = None,
) -> SpecDecode:
    """The speculative-decoding cost model for `config` drafting for `target` on `tp` GPUs.

    Draft model: its own BF16 roofline at `draft_tensor_parallel_size` (default: the target's
    TP): pass_fixed = t_w + attention floor + all-reduce latency + launch floor, pass_per_seq =
    c + a (+ ring traffic). EAGLE heads: the same for a one-layer shape (EAGLE-3 adds its
    3 x hidden -> hidden fusion layer as one more hidden^2 x 3 of weights).
    """
    a = DEFAULT_ACCEPTANCE.get(config.method, 0.6) if acceptance is None else acceptance
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"speculative acceptance rate must be in [0, 1], got {a}")
    k = config.num_speculative_tokens
    if config.method in ("ngram", "suffix"):
        return SpecDecode(config.method, k, a, 0.0, NGRAM_SEQ_S / k)
    if config.method == "draft_model":
        draft = shape_for_model(config.model or "")
        draft_tp = config.draft_tensor_parallel_size or tp
        coef = coefficients(draft, gpu, _BF16, draft_tp)
        fixed = coef.weight_read_s + coef.attn_floor_s + coef.allreduce_fixed_s
        per_seq = coef.linear_s_per_token + coef.activation_s_per_token
        per_seq += coef.allreduce_s_per_token
        return SpecDecode(config.method, k, a, fixed + DRAFT_PASS_FLOOR_S, per_seq)
    head = _head_shape(target, config.method)
    coef = coefficients(head, gpu, _BF16, tp)
    fixed = coef.weight_read_s + coef.attn_floor_s + coef.allreduce_fixed_s
    per_seq = coef.linear_s_per_token + coef.activation_s_per_token
    if config.method == "eagle3":  # fusion of three target hidden states
        fusion = 3.0 * target.hidden * target.hidden / tp
        fixed += fusion * 2.0 / (gpu.hbm_tb_per_s * 1e12 * 0.8)
        eff = kernel_efficiency(gpu, "dense16").compute
        per_seq += 2.0 * fusion / (peak_flop_per_s(gpu, "bf16") * eff)
    return SpecDecode(config.method, k, a, fixed + DRAFT_PASS_FLOOR_S, per_seq)
