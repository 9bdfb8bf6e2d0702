"""The analytic steady state against discrete-event runs of the step model, saturation and
the fluid queue, and its cost per call."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paretoscale.sim.scheduler import simulate
from paretoscale.sim.steady import steady_state

from .helpers import model, poisson_requests

EAGLE3 = json.dumps({"method": "eagle3", "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
                     "num_speculative_tokens": 3})  # fmt: skip
CASES = {
    "8b-bf16-h100-conv": ("serve meta-llama/Llama-3.1-8B-Instruct", "H100", 1155, 211),
    "8b-bf16-h100-chat": ("serve meta-llama/Llama-3.1-8B-Instruct", "H100", 220, 200),
    "qwen3-fp8-h100": ("serve Qwen/Qwen3-8B-FP8", "H100", 500, 100),
    "qwen3-bf16-a100": ("serve Qwen/Qwen3-8B", "A100", 1000, 200),
    "8b-eagle3-h100": (f"serve meta-llama/Llama-3.1-8B-Instruct --speculative-config '{EAGLE3}'",
                       "H100", 1155, 211),
    "70b-tp4-h100": ("serve meta-llama/Llama-3.1-70B-Instruct -tp 4", "H100", 800, 150),
}  # fmt: skip
TOLERANCE = 0.15


@pytest.mark.parametrize("load", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("case", sorted(CASES))
def test_analytic_matches_discrete_event_run(case: str, load: float) -> None:
    """Mean TTFT, ITL and e2e within 15% of a DES of the same scheduler (Poisson arrivals,
    fixed lengths, the first fifth of requests dropped as warm-up)."""
    cmd, gpu, prompt, output = CASES[case]
    m = model(cmd, gpu)
    rate = load * steady_state(m, 0.0, prompt, output).max_requests_per_s
    n = int(min(3000, max(400, rate * 60)))
    recs = simulate(m, poisson_requests(rate, n, prompt, output, seed=7), seed=7)[n // 5 :]
    des = {
        "ttft": float(np.mean([r.ttft_s for r in recs])),
        "itl": float(np.mean([r.mean_itl_s for r in recs])),
        "e2e": float(np.mean([r.e2e_s for r in recs])),
    }
    ss = steady_state(m, rate, prompt, output)
    analytic = {"ttft": ss.ttft_s, "itl": ss.itl_s, "e2e": ss.e2e_s}
    for metric, value in des.items():
        err = analytic[metric] / value - 1.0
        # TTFT is tens of ms: allow 15% or 5 ms
        ok = abs(err) <= TOLERANCE or (metric == "ttft" and abs(analytic[metric] - value) < 5e-3)
        assert ok, f"{case} at {load:.0%}: {metric} analytic {analytic[metric]:.4f} des {value:.4f}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_throughput_limit_matches_discrete_event_run(case: str) -> None:
    """A DES with every request arriving at once finishes at about max_requests_per_s."""
    cmd, gpu, prompt, output = CASES[case]
    m = model(cmd, gpu)
    limit = steady_state(m, 0.0, prompt, output).max_requests_per_s
    n = int(max(300, limit * 30))
    recs = simulate(m, [(0.0, prompt, output)] * n)
    des_rate = n / max(r.e2e_s for r in recs)
    assert des_rate == pytest.approx(limit, rel=0.2)


def test_saturation_grows_a_fluid_queue() -> None:
    m = model("serve meta-llama/Llama-3.1-8B-Instruct")
    limit = steady_state(m, 0.0, 1000, 200).max_requests_per_s
    over = steady_state(m, 1.5 * limit, 1000, 200, window_s=600.0)
    assert over.saturated and over.utilization == pytest.approx(1.5)
    growth = 0.5 * limit
    assert over.queued_requests_end == pytest.approx(growth * 600.0)
    assert over.queue_wait_s == pytest.approx(growth * 300.0 / limit)  # mean over the window
    # the next window starts with that queue and drains it at limit - rate
    after = steady_state(m, 0.5 * limit, 1000, 200, queued_requests=over.queued_requests_end,
                         window_s=600.0)  # fmt: skip
    assert after.saturated and after.queued_requests_end == pytest.approx(
        max(0.0, growth * 600.0 - 0.5 * limit * 600.0)
    )
    calm = steady_state(m, 0.5 * limit, 1000, 200)
    assert not calm.saturated and calm.queued_requests_end == 0.0
    assert over.e2e_s > 10 * calm.e2e_s


def test_percentiles_ordered() -> None:
    m = model("serve meta-llama/Llama-3.1-8B-Instruct")
    ss = steady_state(m, 10.0, 1155, 211)
    for metric in ("ttft", "itl", "tpot", "e2e"):
        values = [ss.latency_at_percentile(metric, p) for p in (10, 50, 90, 95, 99, 99.9)]
        assert values == sorted(values), metric
    assert ss.latency_at_percentile("e2e", 50) == pytest.approx(ss.e2e_s, rel=0.1)
    with pytest.raises(ValueError):
        ss.latency_at_percentile("e2e", 100)
    with pytest.raises(ValueError):
        ss.latency_at_percentile("bogus", 50)  # type: ignore[arg-type]
