"""Step-time model of one vLLM replica (one engine, possibly tensor-parallel) under continuous
batching: how long one scheduler step takes for a given mix of decode sequences and prefill
tokens, and how many sequences and KV-cache tokens fit.

Grounded in the roofline first, then calibrated (see tests/unit/sim/test_calibration.py):
- the linear layers of a step over N tokens take
  t_lin = sqrt(t_w^2 + t_c^2), t_w = weight_bytes / (HBM_B_per_s x eta_w) (streaming the
  weights once: memory-bound at small N), t_c = 2 x linear_params x N / (peak_FLOP_per_s x
  eta_c) (compute-bound at large N); the quadratic mean is a smooth roofline that stays at
  or above the measured H100 floor (data/h100_decode_step_floor.csv) at every batch size;
- decode attention streams each sequence's KV cache once per step: context_tokens x
  kv_bytes_per_token / (HBM_B_per_s x eta_attn) plus a per-layer kernel floor;
- vLLM's own costs: a fixed per-step overhead, a per-sequence cost (scheduling, sampling,
  detokenization), and per-token activation traffic (norms, rotary, activations) at HBM speed;
- tensor parallelism divides weights, FLOPs and KV heads by TP and adds two all-reduces per
  layer (latency + ring traffic over NVLink/PCIe);
- speculative decoding verifies k+1 tokens per sequence per step, pays k sequential draft
  passes, and emits E = (1 - a^(k+1)) / (1 - a) tokens per step for acceptance rate a.

Everything here is pure; `from_vllm_args` builds a model from the same command line the
operator renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paretoscale.api.gpus import GpuSpec, gpu_spec
from paretoscale.sim.precision import Precision, resolve_precision
from paretoscale.sim.roofline import DoesNotFit, coefficients, kv_capacity_tokens
from paretoscale.sim.shapes import ModelShape, shape_for_model
from paretoscale.sim.specmodel import SpecDecode, spec_decode_for
from paretoscale.sim.vllm_args import VllmArgs

__all__ = ["DoesNotFit", "ReplicaModel", "SpecDecode"]

# vLLM V1 engine costs outside the GPU kernels: a fixed cost per step (scheduling, launch,
# sampling) and one per sequence per step (input preparation, sampling, detokenization);
# the per-sequence cost is fitted to the GPUStack H100 bf16 QPS=inf throughput (13,305 tok/s).
STEP_OVERHEAD_S = 0.7e-3
SEQ_OVERHEAD_S = 4e-6


@dataclass(frozen=True)
class ReplicaModel:
    """One vLLM engine on `tensor_parallel_size` GPUs of one type, with its step-time
    coefficients precomputed. Times are seconds of real GPU time divided by `speed_factor`."""

    model: str
    gpu: GpuSpec
    precision: Precision
    shape: ModelShape
    tensor_parallel_size: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    kv_cache_tokens: int
    weight_read_s: float  # t_w: streaming this GPU's weight shard once
    linear_s_per_token: float  # t_c / N
    activation_s_per_token: float
    kv_read_s_per_token: float  # decode attention, per context token
    prefill_attn_s_per_pair: float  # prefill attention, per (query, key) token pair
    attn_floor_s: float
    allreduce_fixed_s: float
    allreduce_s_per_token: float
    step_overhead_s: float = STEP_OVERHEAD_S
    seq_overhead_s: float = SEQ_OVERHEAD_S
    spec: SpecDecode | None = None
    speed_factor: float = 1.0

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def from_vllm_args(
        cls,
        args: VllmArgs,
        gpu_type: str,
        speed_factor: float = 1.0,
        *,
        params_b: float | None = None,
        spec_acceptance: float | None = None,
        gpu: GpuSpec | None = None,
    ) -> ReplicaModel:
        """The replica `vllm serve <args>` would run on `gpu_type` GPUs.

        Defaults follow vLLM V1's OpenAI server: max_num_seqs 1024 and max_num_batched_tokens
        8192 on GPUs with >= 70 GiB that are not A100, else 256 and 2048; max_model_len from
        the model's config. `gpu`: the GPU's figures (default: the built-in table's for
        `gpu_type`). Raises DoesNotFit / UnsupportedOnGpu where vLLM fails to start.
        """
        if not speed_factor > 0:
            raise ValueError(f"speed factor must be positive, got {speed_factor}")
        gpu = gpu or gpu_spec(gpu_type)
        shape = shape_for_model(args.model, params_b)
        precision = resolve_precision(args, gpu.sm)
        big = gpu.memory_gb >= 70 and not gpu.type.startswith("A100")
        max_num_seqs = args.max_num_seqs or (1024 if big else 256)
        budget = args.max_num_batched_tokens or (8192 if big else 2048)
        max_model_len = args.max_model_len or shape.max_context
        budget = max(budget, max_num_seqs) if args.max_num_batched_tokens is None else budget
        tp = args.tensor_parallel_size
        coef = coefficients(shape, gpu, precision, tp)
        kv_tokens = kv_capacity_tokens(
            shape, gpu, coef, tp=tp, gpu_memory_utilization=args.gpu_memory_utilization,
            budget_tokens=budget, max_num_seqs=max_num_seqs,
            label=f"{args.model} ({precision.name}, TP={tp})",
        )  # fmt: skip
        if kv_tokens < max_model_len:
            raise DoesNotFit(
                f"The model's max seq len ({max_model_len}) is larger than the maximum number "
                f"of tokens that can be stored in KV cache ({kv_tokens}). Try increasing "
                "`gpu_memory_utilization` or decreasing `max_model_len` when initializing "
                "the engine."
            )
        spec = None
        if args.speculative is not None:
            spec = spec_decode_for(args.speculative, shape, gpu, tp, spec_acceptance)
        return cls(
            model=args.model, gpu=gpu, precision=precision, shape=shape,
            tensor_parallel_size=tp, max_num_seqs=max_num_seqs, max_num_batched_tokens=budget,
            max_model_len=max_model_len, kv_cache_tokens=kv_tokens,
            weight_read_s=coef.weight_read_s, linear_s_per_token=coef.linear_s_per_token,
            activation_s_per_token=coef.activation_s_per_token,
            kv_read_s_per_token=coef.kv_read_s_per_token,
            prefill_attn_s_per_pair=coef.prefill_attn_s_per_pair, attn_floor_s=coef.attn_floor_s,
            allreduce_fixed_s=coef.allreduce_fixed_s,
            allreduce_s_per_token=coef.allreduce_s_per_token, spec=spec,
            speed_factor=speed_factor,
        )  # fmt: skip

    # ----- step-level API -----------------------------------------------------------------
    @property
    def tokens_per_decode_step(self) -> float:
        """Tokens a decoding sequence emits per step: 1, or E with speculative decoding."""
        return self.spec.tokens_per_step if self.spec else 1.0

    @property
    def query_tokens_per_decode_seq(self) -> int:
        """Tokens a decoding sequence feeds the target model per step: 1 + k drafts."""
        return 1 + (self.spec.num_speculative_tokens if self.spec else 0)

    def linear_time_s(self, tokens: float) -> float:
        """GEMMs of one forward pass over `tokens` tokens, s (without vLLM overheads):
        sqrt(t_w^2 + (linear_s_per_token x tokens)^2) / speed."""
        compute = self.linear_s_per_token * tokens
        return math.sqrt(self.weight_read_s**2 + compute**2) / self.speed_factor

    def decode_attention_time_s(self, context_tokens: float) -> float:
        """Decode attention over `context_tokens` KV tokens in total, s:
        (n_layers x 6 us + context_tokens x kv_read_s_per_token) / speed."""
        return (self.attn_floor_s + context_tokens * self.kv_read_s_per_token) / self.speed_factor

    def step_time_s(
        self,
        decode_seqs: float,
        decode_context_tokens: float,
        prefill_tokens: float = 0.0,
        prefill_token_pairs: float = 0.0,
        prefill_seqs: float = 0.0,
    ) -> float:
        """One scheduler step, s: `decode_seqs` sequences each decoding (1 + k) query tokens
        over `decode_context_tokens` KV tokens in total, plus `prefill_tokens` prompt tokens of
        `prefill_seqs` sequences whose attention covers `prefill_token_pairs` (query, key)
        pairs.

        T = overhead + seq_overhead x seqs + sqrt(t_w^2 + (c x N)^2) + a x N + attention
            + all-reduce(N) + drafting(decode_seqs),  N = decode_seqs x (1 + k) + prefill_tokens
        all divided by the speed factor.
        """
        if decode_seqs <= 0 and prefill_tokens <= 0:
            return 0.0
        n = decode_seqs * self.query_tokens_per_decode_seq + prefill_tokens
        seqs = decode_seqs + prefill_seqs
        t = self.step_overhead_s + self.seq_overhead_s * seqs
        t += math.sqrt(self.weight_read_s**2 + (self.linear_s_per_token * n) ** 2)
        t += (self.activation_s_per_token + self.allreduce_s_per_token) * n
        t += self.allreduce_fixed_s + self.attn_floor_s
        t += decode_context_tokens * self.kv_read_s_per_token
        t += prefill_token_pairs * self.prefill_attn_s_per_pair
        if self.spec is not None and decode_seqs > 0:
            t += self.spec.draft_time_s(decode_seqs)
        return t / self.speed_factor

    def decode_step_time_s(self, batch_size: float, total_context_tokens: float) -> float:
        """A decode-only step of `batch_size` sequences holding `total_context_tokens` KV
        tokens in total, s (see step_time_s)."""
        return self.step_time_s(batch_size, total_context_tokens)

    def prefill_time_s(self, prompt_tokens: int) -> float:
        """Prefilling one prompt alone, s: chunks of max_num_batched_tokens, each chunk a step
        whose attention covers its tokens x (tokens before it + half the chunk)."""
        remaining, done, total = prompt_tokens, 0, 0.0
        while remaining > 0:
            chunk = min(remaining, self.max_num_batched_tokens)
            pairs = chunk * (done + chunk / 2.0)
            total += self.step_time_s(0, 0, chunk, pairs, 1)
            done += chunk
            remaining -= chunk
        return total

    def fits(self, prompt_tokens: int, output_tokens: int) -> bool:
        """Whether a request fits max_model_len (vLLM refuses it with HTTP 400 otherwise)."""
        return prompt_tokens + output_tokens <= self.max_model_len
