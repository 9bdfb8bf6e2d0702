"""The `vllm serve` command line, parsed the way vLLM reads it, into a frozen `VllmArgs`.

Only the flags that change performance or addressing are interpreted (model, dtype,
quantization, KV-cache dtype, speculative config, tensor parallelism, the scheduler limits,
memory utilization, host, port, served model names); any other vLLM flag is accepted and
listed in `VllmArgs.ignored_flags` so the caller can warn. Malformed values of known flags
raise `VllmArgsError` with an argparse-style message; the CLI turns it into exit code 2 like
vLLM's argparse does.

Both `--flag value` and `--flag=value` are accepted, as are `-tp N` and `-q METHOD`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# vLLM's --quantization choices that the simulator models (vllm/model_executor/layers/
# quantization/__init__.py QUANTIZATION_METHODS, 0.9-0.11); others are refused like argparse.
QUANTIZATION_METHODS = (
    "aqlm", "awq", "awq_marlin", "bitblas", "bitsandbytes", "compressed-tensors", "deepspeedfp",
    "experts_int8", "fbgemm_fp8", "fp8", "gguf", "gptq", "gptq_bitblas", "gptq_marlin",
    "gptq_marlin_24", "hqq", "marlin", "modelopt", "modelopt_fp4", "moe_wna16", "mxfp4",
    "ptpc_fp8", "qqq", "quark", "torchao", "tpu_int8",
)  # fmt: skip
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
KV_CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc")
SPEC_METHODS = (
    "ngram", "eagle", "eagle3", "medusa", "mlp_speculator", "draft_model", "deepseek_mtp",
    "mtp", "qwen3_next_mtp", "ernie_mtp", "suffix",
)  # fmt: skip
_SPEC_ALIASES = {"draft": "draft_model", "[ngram]": "ngram"}

# vLLM flags without a value (store_true / BooleanOptionalAction) that may precede the model.
_BOOLEAN_FLAGS = frozenset(
    {
        "--trust-remote-code", "--enforce-eager", "--enable-prefix-caching",
        "--no-enable-prefix-caching", "--enable-chunked-prefill", "--no-enable-chunked-prefill",
        "--disable-log-requests", "--disable-log-stats", "--enable-log-requests",
        "--enable-auto-tool-choice", "--disable-custom-all-reduce", "--enable-expert-parallel",
        "--disable-frontend-multiprocessing", "--enable-lora", "--async-scheduling",
        "--no-async-scheduling", "--disable-fastapi-docs", "--enable-prompt-tokens-details",
        "--skip-tokenizer-init", "--disable-sliding-window", "--disable-cascade-attn",
        "--headless", "--enable-sleep-mode", "--enable-server-load-tracking",
        "--enable-force-include-usage", "--enable-request-id-headers", "--return-tokens-as-token-ids",
        "--no-enable-log-requests", "--enable-eplb",
    }
)  # fmt: skip


class VllmArgsError(ValueError):
    """A known flag with a value vLLM would refuse; the message is argparse's wording."""


@dataclass(frozen=True)
class SpeculativeConfig:
    """`--speculative-config` JSON: method, draft model (if any) and tokens per step."""

    method: str
    num_speculative_tokens: int
    model: str | None = None
    draft_tensor_parallel_size: int | None = None


@dataclass(frozen=True)
class VllmArgs:
    """What a `vllm serve` command line asks for. None means "vLLM's default"."""

    model: str
    served_model_names: tuple[str, ...] = ()
    dtype: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    speculative: SpeculativeConfig | None = None
    tensor_parallel_size: int = 1
    max_num_seqs: int | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float = 0.9
    host: str | None = None
    port: int = 8000
    ignored_flags: tuple[str, ...] = field(default=())

    @property
    def served_model_name(self) -> str:
        """The name clients use and metrics carry (first --served-model-name, else model)."""
        return self.served_model_names[0] if self.served_model_names else self.model


def _err(flag: str, message: str) -> VllmArgsError:
    return VllmArgsError(f"argument {flag}: {message}")


def _int(flag: str, raw: str, minimum: int = 1) -> int:
    try:
        value = _human_int(raw)
    except ValueError:
        raise _err(flag, f"invalid int value: {raw!r}") from None
    if value < minimum:
        raise _err(flag, f"must be >= {minimum}, got {value}")
    return value


def _human_int(raw: str) -> int:
    """vLLM's human-readable ints for lengths: 1k = 1000, 1K = 1024, 1m, 1M ..."""
    suffixes = {"k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}
    if raw and raw[-1] in suffixes:
        return int(float(raw[:-1]) * suffixes[raw[-1]])
    return int(raw)


def _float(flag: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise _err(flag, f"invalid float value: {raw!r}") from None


def _choice(flag: str, raw: str, choices: Sequence[str]) -> str:
    if raw not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise _err(flag, f"invalid choice: {raw!r} (choose from {listed})")
    return raw


def parse_speculative_config(raw: str, flag: str = "--speculative-config") -> SpeculativeConfig:
    """The JSON object of `--speculative-config`, with vLLM's method inference: a missing
    method is "ngram" when model is "ngram"/"[ngram]", "eagle3"/"eagle" when the draft model's
    name says so, else "draft_model"."""
    try:
        obj: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise _err(flag, f"invalid loads value: {raw!r}") from None
    if not isinstance(obj, dict):
        raise _err(flag, f"expected a JSON object, got {raw!r}")
    model = obj.get("model")
    if model is not None and not isinstance(model, str):
        raise _err(flag, f"'model' must be a string, got {model!r}")
    method = obj.get("method")
    if method is None:
        lowered = (model or "").lower()
        if lowered in ("ngram", "[ngram]"):
            method = "ngram"
        elif "eagle3" in lowered:
            method = "eagle3"
        elif "eagle" in lowered:
            method = "eagle"
        elif model is not None:
            method = "draft_model"
        else:
            raise _err(flag, "one of 'method' or 'model' is required")
    if not isinstance(method, str):
        raise _err(flag, f"'method' must be a string, got {method!r}")
    method = _SPEC_ALIASES.get(method, method)
    if method not in SPEC_METHODS:
        raise _err(flag, f"unknown speculative method {method!r} (choose from {SPEC_METHODS})")
    if method in ("draft_model", "eagle", "eagle3", "medusa", "mlp_speculator") and not model:
        raise _err(flag, f"method {method!r} needs a draft 'model'")
    k = obj.get("num_speculative_tokens")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise _err(flag, f"'num_speculative_tokens' must be a positive integer, got {k!r}")
    draft_tp = obj.get("draft_tensor_parallel_size")
    if draft_tp is not None and (not isinstance(draft_tp, int) or draft_tp < 1):
        raise _err(flag, f"'draft_tensor_parallel_size' must be a positive integer: {draft_tp!r}")
    return SpeculativeConfig(method, k, model, draft_tp)


_Setter = Callable[[dict[str, Any], str, str], None]


def _set(key: str, convert: Callable[[str, str], Any]) -> _Setter:
    def setter(values: dict[str, Any], flag: str, raw: str) -> None:
        values[key] = convert(flag, raw)

    return setter


def _gpu_util(flag: str, raw: str) -> float:
    value = _float(flag, raw)
    if not 0.0 < value <= 1.0:
        raise _err(flag, f"must be in (0, 1], got {value}")
    return value


_VALUED: dict[str, _Setter] = {
    "--model": _set("model", lambda f, r: r),
    "--dtype": _set("dtype", lambda f, r: _choice(f, r, DTYPES)),
    "--quantization": _set("quantization", lambda f, r: _choice(f, r, QUANTIZATION_METHODS)),
    "-q": _set("quantization", lambda f, r: _choice(f, r, QUANTIZATION_METHODS)),
    "--kv-cache-dtype": _set("kv_cache_dtype", lambda f, r: _choice(f, r, KV_CACHE_DTYPES)),
    "--speculative-config": _set("speculative", lambda f, r: parse_speculative_config(r, f)),
    "--tensor-parallel-size": _set("tensor_parallel_size", _int),
    "-tp": _set("tensor_parallel_size", _int),
    "--max-num-seqs": _set("max_num_seqs", _int),
    "--max-model-len": _set("max_model_len", _int),
    "--max-num-batched-tokens": _set("max_num_batched_tokens", _int),
    "--gpu-memory-utilization": _set("gpu_memory_utilization", _gpu_util),
    "--host": _set("host", lambda f, r: r),
    "--port": _set("port", lambda f, r: _int(f, r, minimum=0)),
}


def parse_vllm_args(argv: Sequence[str]) -> VllmArgs:
    """Parse `[vllm] serve MODEL [flags]` (the leading "vllm" and "serve" are optional).

    `--served-model-name` takes one or more names (nargs="+"), like vLLM. Unknown flags are
    skipped with their value (the next token, unless it starts with "-" or the flag is a known
    boolean) and reported in `ignored_flags`.
    """
    tokens = list(argv)
    if tokens and tokens[0] == "vllm":
        tokens = tokens[1:]
    if tokens and tokens[0] == "serve":
        tokens = tokens[1:]
    values: dict[str, Any] = {}
    ignored: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or token == "-":
            positional.append(token)
            i += 1
            continue
        flag, has_eq, inline = token.partition("=")
        flag = flag.replace("_", "-") if flag.startswith("--") else flag
        if flag == "--served-model-name":
            names = [inline] if has_eq else []
            i += 1
            while not has_eq and i < len(tokens) and not tokens[i].startswith("-"):
                names.append(tokens[i])
                i += 1
            if not names:
                raise _err(flag, "expected at least one argument")
            values["served_model_names"] = tuple(names)
            continue
        if flag in _VALUED:
            if has_eq:
                raw = inline
                i += 1
            elif i + 1 < len(tokens):
                raw = tokens[i + 1]
                i += 2
            else:
                raise _err(flag, "expected one argument")
            _VALUED[flag](values, flag, raw)
            continue
        ignored.append(token)
        i += 1
        takes_value = (
            not has_eq
            and flag not in _BOOLEAN_FLAGS
            and not flag.startswith("--no-")
            and i < len(tokens)
            and not tokens[i].startswith("-")
            and (positional or "model" in values)  # before the model, a bare word is the model
        )
        if takes_value:
            ignored[-1] = f"{token} {tokens[i]}"
            i += 1
    if positional:
        if "model" in values and values["model"] != positional[0]:
            raise VllmArgsError(
                f"model given twice: positional {positional[0]!r} and --model {values['model']!r}"
            )
        values["model"] = positional[0]
        if len(positional) > 1:
            raise VllmArgsError(f"unrecognized arguments: {' '.join(positional[1:])}")
    if "model" not in values:
        raise VllmArgsError("the following arguments are required: model_tag")
    return VllmArgs(ignored_flags=tuple(ignored), **values)
