"""Calibration of the simulator against the published figures in data/variants_published.csv.

Every row of the file is listed: a row the model reproduces is asserted within 10% and
printed with the published value, the model value and the error; a row it does not
reproduce is printed with the reason (and, where the reason is arithmetic, the arithmetic is
asserted). Run with `-s` to see the table.

Workloads (assumptions, not in the publications):
- GPUStack "ShareGPT 1000 prompts, QPS=inf": 1000 requests at t=0 with 220 prompt and 200
  output tokens each, vLLM V1 defaults (H100: max_num_seqs 1024, max_num_batched_tokens 8192;
  A100: 256 and 2048), GPU memory utilization 0.9;
- vLLM spec-decode blog (Llama-3-70B, 4xH100): "QPS=1" is Poisson at 1 req/s for 300
  requests; "high QPS" is its limit, all requests at once (600); ShareGPT 220/200 tokens with
  the Qwama-0.5B draft (k=3, draft TP=1, acceptance 0.45, fitted); CNN/DailyMail as
  1000-token articles and 75-token summaries with n-gram lookup (k=5, acceptance 0.75,
  fitted: summaries copy their article).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest

from paretoscale.sim.scheduler import RequestRecord, simulate

from .helpers import all_at_once, data_dir, model, poisson_requests

TOLERANCE = 0.10
SHAREGPT = (220, 200)
CNN_DM = (1000, 75)

QWEN = {
    "bf16": "serve Qwen/Qwen3-8B",
    "fp8-static": "serve Qwen/Qwen3-8B-FP8",
    "fp8-dynamic": "serve RedHatAI/Qwen3-8B-FP8-dynamic",
    "w4a16": "serve RedHatAI/Qwen3-8B-quantized.w4a16",
    "awq": "serve Qwen/Qwen3-8B-AWQ --quantization awq",
    "bf16+fp8-kv": "serve Qwen/Qwen3-8B --kv-cache-dtype fp8",
    "gptq-marlin-int4": "serve Qwen/Qwen3-8B-GPTQ-Int4",
    "gptq-int8": "serve Qwen/Qwen3-8B-GPTQ-Int8",
}
GPU = {"H100": "H100", "A100-80GB": "A100"}
LLAMA70 = "serve meta-llama/Meta-Llama-3-70B-Instruct -tp 4"
DRAFT = {"model": "turboderp/Qwama-0.5B-Instruct", "num_speculative_tokens": 3,
         "draft_tensor_parallel_size": 1}  # fmt: skip
NGRAM = {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4}
SPEC = {"spec-draft-model": (DRAFT, 0.45, SHAREGPT), "spec-ngram": (NGRAM, 0.75, CNN_DM)}


@dataclass(frozen=True)
class Bench:
    """A QPS=inf run: output tokens per second, request-mean TPOT and TTFT (vLLM bench's
    definitions), duration."""

    output_throughput: float
    mean_tpot_ms: float
    mean_ttft_ms: float
    duration_s: float


_cache: dict[tuple[str, str], Bench] = {}


def qps_inf(config: str, gpu: str) -> Bench:
    key = (config, gpu)
    if key not in _cache:
        recs = simulate(model(QWEN[config], GPU[gpu]), all_at_once(1000, *SHAREGPT))
        duration = max(r.e2e_s for r in recs)
        _cache[key] = Bench(
            sum(r.output_tokens for r in recs) / duration,
            1e3 * float(np.mean([r.tpot_s for r in recs])),
            1e3 * float(np.mean([r.ttft_s for r in recs])),
            duration,
        )
    return _cache[key]


def mean_e2e(records: list[RequestRecord]) -> float:
    return float(np.mean([r.e2e_s for r in records]))


def spec_speedup(config: str, high_qps: bool) -> float:
    draft, acceptance, (prompt, output) = SPEC[config]
    base = model(LLAMA70)
    spec = model(f"{LLAMA70} --speculative-config '{json.dumps(draft)}'",
                 spec_acceptance=acceptance)  # fmt: skip
    if high_qps:
        reqs = all_at_once(600, prompt, output)
    else:
        reqs = poisson_requests(1.0, 300, prompt, output)
    return mean_e2e(simulate(base, reqs, seed=3)) / mean_e2e(simulate(spec, reqs, seed=3))


NOT_REPRODUCED_TTFT = (
    "not reproduced: with 1,024 seats (vLLM V1's H100 default) all 1,000 requests are admitted "
    "in the first steps, so TTFT is the prefill backlog (model {model:.0f} ms); the published "
    "figure implies requests waited for seats or for the API server, which is not modelled"
)
NOT_REPRODUCED_TPOT = (
    "not reproduced: with fixed 200-token outputs the request-mean TPOT is at most "
    "duration / 199 = {bound:.1f} ms at the published throughput; {published} ms needs "
    "output-length spread (short requests living through the prefill-heavy start) that the "
    "publication does not give (model {model:.1f} ms)"
)


def a100_bound_reason(value: float) -> str:
    """An A100 absolute row exceeds the A100's peak FLOPs for the H100 rows' workload."""
    from paretoscale.api.gpus import gpu_spec
    from paretoscale.sim.shapes import shape_for_model

    flop_per_output = 2.0 * shape_for_model("Qwen3-8B").linear_params * sum(SHAREGPT) / SHAREGPT[1]
    needed_tflops = value * flop_per_output / 1e12
    peak = gpu_spec("A100").bf16_dense_tflops
    assert needed_tflops > peak, "the bound argument no longer holds; calibrate this row"
    return (
        f"not reproduced as an absolute figure: {value:.0f} tok/s needs {needed_tflops:.0f} "
        f"TFLOP/s of linear layers alone for 220/200-token requests, above the A100's "
        f"{peak:.0f} TFLOP/s BF16 peak, so this run's workload differs; the ratio to the A100 "
        "bf16 row is reproduced instead"
    )


def evaluate(row: dict[str, str]) -> tuple[float | None, str]:
    """(model value, note) for a published row; None when the row does not apply."""
    model_name, gpu, config, metric = row["model"], row["gpu"], row["config"], row["metric"]
    value = float(row["value"]) if row["value"].replace(".", "").isdigit() else None
    if metric.startswith("quality") or metric.endswith("perplexity"):
        return None, "quality figure: an input of the economics, not of the performance model"
    if model_name == "Qwen3-8B" and gpu == "H100":
        bench = qps_inf(config, gpu)
        if metric == "output_throughput":
            return bench.output_throughput, "QPS=inf, 1000 x (220 in, 200 out)"
        if metric == "mean_tpot":
            assert value is not None
            bound = 1e3 * 1000 * SHAREGPT[1] / value_of(config, "output_throughput") / 199
            assert bound < value
            return None, NOT_REPRODUCED_TPOT.format(bound=bound, published=value,
                                                    model=bench.mean_tpot_ms)  # fmt: skip
        if metric == "mean_ttft":
            return None, NOT_REPRODUCED_TTFT.format(model=bench.mean_ttft_ms)
    if model_name == "Qwen3-8B" and gpu == "A100-80GB" and metric == "output_throughput":
        assert value is not None
        if config == "bf16":
            return None, a100_bound_reason(value)
        ratio = qps_inf(config, gpu).output_throughput / qps_inf("bf16", gpu).output_throughput
        published_ratio = value / value_of("bf16", "output_throughput", "A100-80GB")
        # compare ratios, reported on the published scale
        return value * ratio / published_ratio, "ratio to A100 bf16 (see the bf16 row)"
    if model_name == "Llama-3-70B" and config in SPEC:
        high = metric == "latency_speedup_high_qps"
        if config == "spec-ngram" and high:
            speedup = spec_speedup(config, True)
            return None, (
                f"not reproduced: the model gives {speedup:.2f}x. vLLM V0 (the blog's version) "
                "turned chunked prefill off under speculation and scored drafts by batch "
                "expansion; in V1 n-gram drafting costs no GPU work and, on this prefill-heavy "
                "workload, verifying 5 drafts adds little compute, so it stays faster"
            )
        return spec_speedup(config, high), "mean e2e ratio, " + ("all at once" if high else "QPS=1")
    return None, "no setup in the model for this row"


def value_of(config: str, metric: str, gpu: str = "H100") -> float:
    for row in ROWS:
        if row["config"] == config and row["metric"] == metric and row["gpu"] == gpu:
            return float(row["value"])
    raise KeyError((config, metric, gpu))


with open(data_dir() / "variants_published.csv", newline="") as f:
    ROWS = list(csv.DictReader(f))


def _id(row: dict[str, str]) -> str:
    return f"{row['model']}|{row['gpu']}|{row['config']}|{row['metric']}"


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_published_row(row: dict[str, str]) -> None:
    model_value, note = evaluate(row)
    if model_value is None:
        print(f"\n  {_id(row)}: published {row['value']} {row['unit']}; {note}")
        return
    published = float(row["value"])
    err = model_value / published - 1.0
    print(f"\n  {_id(row)}: published {published:g} {row['unit']}, model {model_value:.4g}, "
          f"error {err:+.1%} ({note})")  # fmt: skip
    assert abs(err) <= TOLERANCE, f"{_id(row)}: model {model_value:.4g} vs {published} ({err:+.1%})"


def test_every_performance_row_is_accounted_for() -> None:
    """At least the rows the brief names are reproduced (not merely listed)."""
    reproduced = {_id(r) for r in ROWS if evaluate(r)[0] is not None}
    for config in ("bf16", "fp8-static", "w4a16", "awq"):
        assert f"Qwen3-8B|H100|{config}|output_throughput" in reproduced
    for config in ("awq", "gptq-marlin-int4", "gptq-int8"):
        assert f"Qwen3-8B|A100-80GB|{config}|output_throughput" in reproduced
    assert "Llama-3-70B|4xH100|spec-draft-model|latency_speedup" in reproduced
    assert "Llama-3-70B|4xH100|spec-ngram|latency_speedup" in reproduced
    assert "Llama-3-70B|4xH100|spec-draft-model|latency_speedup_high_qps" in reproduced
