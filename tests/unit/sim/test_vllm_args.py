"""`vllm serve` command lines: parsing, refusal of malformed values, precision inference."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from paretoscale.sim.cli import main as sim_main
from paretoscale.sim.cli import split_sim_flags
from paretoscale.sim.precision import resolve_precision
from paretoscale.sim.vllm_args import SpeculativeConfig, VllmArgsError, parse_vllm_args

PARSE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "minimal": ("serve meta-llama/Llama-3.1-8B-Instruct",
                {"model": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "auto", "port": 8000}),
    "with-vllm-prefix": ("vllm serve m --dtype bfloat16", {"model": "m", "dtype": "bfloat16"}),
    "no-serve-word": ("m --dtype half", {"model": "m", "dtype": "half"}),
    "equals-forms": ("serve m --dtype=float16 --quantization=fp8 --tensor-parallel-size=2 "
                     "--max-num-seqs=64 --gpu-memory-utilization=0.85 --port=9000",
                     {"dtype": "float16", "quantization": "fp8", "tensor_parallel_size": 2,
                      "max_num_seqs": 64, "gpu_memory_utilization": 0.85, "port": 9000}),
    "short-flags": ("serve m -tp 4 -q awq_marlin",
                    {"tensor_parallel_size": 4, "quantization": "awq_marlin"}),
    "underscore-flags": ("serve m --max_model_len 4096 --kv_cache_dtype fp8",
                         {"max_model_len": 4096, "kv_cache_dtype": "fp8"}),
    "human-readable-len": ("serve m --max-model-len 32k", {"max_model_len": 32000}),
    "limits": ("serve m --max-model-len 8192 --max-num-batched-tokens 4096 --host 0.0.0.0",
               {"max_model_len": 8192, "max_num_batched_tokens": 4096, "host": "0.0.0.0"}),
    "served-names": ("serve m --served-model-name a b --port 1",
                     {"served_model_names": ("a", "b"), "port": 1}),
    "model-flag": ("serve --model m", {"model": "m"}),
    "unknown-flags-ignored": (
        "serve --trust-remote-code m --enable-prefix-caching --swap-space 8 --foo=bar "
        "--disable-log-requests --dtype bfloat16",
        {"model": "m", "dtype": "bfloat16",
         "ignored_flags": ("--trust-remote-code", "--enable-prefix-caching", "--swap-space 8",
                           "--foo=bar", "--disable-log-requests")}),
    "eagle3": ('serve m --speculative-config \'{"method": "eagle3", "model": "x/EAGLE3", '
               '"num_speculative_tokens": 3}\'',
               {"speculative": SpeculativeConfig("eagle3", 3, "x/EAGLE3")}),
    "draft-inferred": ('serve m --speculative-config=\'{"model": "meta-llama/Llama-3.2-1B", '
                       '"num_speculative_tokens": 5, "draft_tensor_parallel_size": 1}\'',
                       {"speculative": SpeculativeConfig("draft_model", 5,
                                                         "meta-llama/Llama-3.2-1B", 1)}),
    "draft-alias": ('serve m --speculative-config \'{"method": "draft", "model": "d", '
                    '"num_speculative_tokens": 2}\'',
                    {"speculative": SpeculativeConfig("draft_model", 2, "d")}),
    "ngram": ('serve m --speculative-config \'{"method": "ngram", "num_speculative_tokens": 4, '
              '"prompt_lookup_max": 4}\'', {"speculative": SpeculativeConfig("ngram", 4)}),
    "ngram-legacy-model": ('serve m --speculative-config \'{"model": "[ngram]", '
                           '"num_speculative_tokens": 4}\'',
                           {"speculative": SpeculativeConfig("ngram", 4, "[ngram]")}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PARSE_CASES))
def test_parse(case: str) -> None:
    cmd, expected = PARSE_CASES[case]
    args = parse_vllm_args(shlex.split(cmd))
    for field, value in expected.items():
        assert getattr(args, field) == value, field


ERROR_CASES = {
    "bad-json": ("serve m --speculative-config {nope", "invalid loads value"),
    "json-not-object": ("serve m --speculative-config [1]", "expected a JSON object"),
    "spec-no-tokens": ("serve m --speculative-config '{\"method\": \"ngram\"}'",
                       "num_speculative_tokens"),
    "spec-unknown-method": ("serve m --speculative-config "
                            "'{\"method\": \"magic\", \"num_speculative_tokens\": 2}'",
                            "unknown speculative method"),
    "eagle-without-model": ("serve m --speculative-config "
                            "'{\"method\": \"eagle3\", \"num_speculative_tokens\": 2}'",
                            "needs a draft 'model'"),
    "bad-dtype": ("serve m --dtype int3", "invalid choice: 'int3'"),
    "bad-quant": ("serve m --quantization magic", "invalid choice: 'magic'"),
    "bad-kv": ("serve m --kv-cache-dtype int4", "invalid choice"),
    "bad-tp": ("serve m -tp two", "invalid int value: 'two'"),
    "zero-tp": ("serve m --tensor-parallel-size 0", "must be >= 1"),
    "bad-util": ("serve m --gpu-memory-utilization 1.5", "must be in (0, 1]"),
    "bad-util-float": ("serve m --gpu-memory-utilization lots", "invalid float value"),
    "missing-value": ("serve m --max-num-seqs", "expected one argument"),
    "no-model": ("serve --dtype auto", "required: model_tag"),
    "two-models": ("serve a b", "unrecognized arguments: b"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_refused_like_argparse(case: str) -> None:
    cmd, message = ERROR_CASES[case]
    with pytest.raises(VllmArgsError, match=None) as info:
        parse_vllm_args(shlex.split(cmd))
    assert message in str(info.value)


def test_cli_exit_code_2_on_malformed_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = sim_main(["serve", "m", "--speculative-config", "{nope"])
    assert code == 2
    err = capsys.readouterr().err
    assert "usage: vllm serve" in err and "argument --speculative-config" in err


def test_cli_exit_code_1_when_the_model_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["serve", "meta-llama/Llama-3.1-70B-Instruct", "--sim-gpu", "L4"]) == 1
    assert "No available memory" in capsys.readouterr().err


def test_split_sim_flags() -> None:
    sim, rest = split_sim_flags(
        ["serve", "m", "--sim-gpu", "A100", "--port", "1", "--sim-speed=0.8", "--dtype", "half"]
    )
    assert sim == ["--sim-gpu", "A100", "--sim-speed=0.8"]
    assert rest == ["serve", "m", "--port", "1", "--dtype", "half"]


PRECISION_CASES = {
    # (command, sm) -> (precision name, weight bits, compute dtype, kernel, kv bytes)
    "bf16-auto": (("serve meta-llama/Llama-3.1-8B-Instruct", 90),
                  ("bf16", 16, "bf16", "dense16", 2.0)),
    "half": (("serve m-8b --dtype half", 90), ("fp16", 16, "fp16", "dense16", 2.0)),
    "t4-auto-is-fp16": (("serve m-8b", 75), ("fp16", 16, "fp16", "dense16", 2.0)),
    "fp8-by-name": (("serve RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", 90),
                    ("fp8", 8, "fp8", "fp8", 2.0)),
    "fp8-dynamic-by-name": (("serve RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", 89),
                            ("fp8-dynamic", 8, "fp8", "fp8-dynamic", 2.0)),
    "fp8-online-flag": (("serve meta-llama/Llama-3.1-8B-Instruct --quantization fp8", 90),
                        ("fp8-dynamic", 8, "fp8", "fp8-dynamic", 2.0)),
    "fp8-on-ampere-is-marlin": (("serve Qwen/Qwen3-8B-FP8", 80),
                                ("fp8-marlin", 8, "bf16", "fp8_marlin", 2.0)),
    "int8-w8a8": (("serve RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", 90),
                  ("int8-w8a8", 8, "int8", "int8", 2.0)),
    "w4a16": (("serve RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", 90),
              ("w4a16", 4, "bf16", "marlin", 2.0)),
    "awq-auto-marlin": (("serve Qwen/Qwen3-8B-AWQ", 80),
                        ("awq_marlin", 4, "bf16", "awq_marlin", 2.0)),
    "awq-forced-legacy": (("serve Qwen/Qwen3-8B-AWQ --quantization awq", 90),
                          ("awq", 4, "bf16", "awq", 2.0)),
    "awq-on-turing-legacy": (("serve TheBloke/Llama-2-7B-AWQ", 75),
                             ("awq", 4, "fp16", "awq", 2.0)),
    "gptq-int4": (("serve Qwen/Qwen3-8B-GPTQ-Int4", 80),
                  ("gptq_marlin", 4, "bf16", "gptq_marlin", 2.0)),
    "gptq-int8": (("serve Qwen/Qwen3-8B-GPTQ-Int8", 80),
                  ("w8a16", 8, "bf16", "gptq_marlin_w8", 2.0)),
    "flag-wins-over-name": (("serve Qwen/Qwen3-8B-AWQ --quantization gptq_marlin", 90),
                            ("gptq_marlin", 4, "bf16", "gptq_marlin", 2.0)),
    "fp8-kv": (("serve m-8b --kv-cache-dtype fp8_e4m3", 90), ("bf16", 16, "bf16", "dense16", 1.0)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PRECISION_CASES))
def test_precision_inference(case: str) -> None:
    (cmd, sm), expected = PRECISION_CASES[case]
    p = resolve_precision(parse_vllm_args(shlex.split(cmd)), sm)
    assert (p.name, p.weight_bits, p.compute, p.kernel, p.kv_cache_bytes) == expected
