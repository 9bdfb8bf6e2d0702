"""The work model's constants (economics/work.py) agree with the simulator's performance model.

economics may not import the simulator (a sibling layer), so work.py ships fitted constants;
this test refits them from sim.steady on the example variants, the way the module docstring
says, and fails when the perf model and the constants drift apart.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.economics.work import (
    WORK_WEIGHTS,
    DecodeKind,
    LatencyMetric,
    TokenMix,
    capacity_at_mix_rps,
    decode_kind,
    latency_length,
    work_per_request,
)
from paretoscale.replay.perf import replica_model
from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.steady import steady_state

EXAMPLES = Path(__file__).parents[3] / "examples"
# The examples the constants were fitted on (their variants span 8B-70B, 1-4 GPUs, H100, L40S
# and A100, BF16 to INT4, three speculative methods); a new example does not move the fit.
FITTED_ON = ("assistant-llama-8b.yaml", "llama-70b-speculative.yaml", "qwen3-8b-quantization.yaml")
PROMPTS = (150.0, 300.0, 600.0, 1155.0, 2300.0, 4600.0)
OUTPUTS = (28.0, 100.0, 211.0, 420.0, 800.0)
Rows = npt.NDArray[np.float64]  # columns: P, O, 1/mu [s], p95 e2e [s], p95 ttft [s]


@cache
def perf_rows() -> dict[DecodeKind, list[Rows]]:
    """Per decoding method, per example variant: the perf model over the mix grid (light
    load for the latencies: 30% of the limit)."""
    out: dict[DecodeKind, list[Rows]] = defaultdict(list)
    for path in (EXAMPLES / name for name in FITTED_ON):
        spec = parse_manifests(path.read_text(), str(path))[0].spec
        for v in spec.variants:
            model = replica_model(spec, v, 1.0)
            rows = []
            for p in PROMPTS:
                for o in OUTPUTS:
                    if p + o > model.max_model_len:
                        continue
                    mu = steady_state(model, 0.0, p, o).max_requests_per_s
                    st = steady_state(model, 0.3 * mu, p, o)
                    e2e = st.latency_at_percentile("e2e", 95)
                    rows.append((p, o, 1.0 / mu, e2e, st.latency_at_percentile("ttft", 95)))
            method = v.vllm.speculative.method if v.vllm.speculative else None
            out[decode_kind(method)].append(np.array(rows))
    return dict(out)


def fit_work(variants: list[Rows]) -> tuple[float, float, float]:
    """(beta, kappa, worst relative error): 1/mu = s_v x (P + beta O + kappa O (P + O/2)),
    one scale s_v per variant (closed form), beta and kappa on a log grid."""
    betas = np.geomspace(0.3, 6.0, 81)[:, None, None]
    kappas = np.concatenate([[0.0], np.geomspace(1e-5, 1e-2, 80)])[None, :, None]
    total = np.zeros((betas.shape[0], kappas.shape[1]))
    worst = np.zeros_like(total)
    for r in variants:
        p, o, y = r[:, 0], r[:, 1], r[:, 2]
        x = (p + betas * o + kappas * o * (p + o / 2.0)) / y
        scale = x.sum(axis=2, keepdims=True) / (x * x).sum(axis=2, keepdims=True)
        err = scale * x - 1.0
        total += (err * err).sum(axis=2)
        worst = np.maximum(worst, np.abs(err).max(axis=2))
    i, j = np.unravel_index(int(total.argmin()), total.shape)
    return float(betas[i, 0, 0]), float(kappas[0, j, 0]), float(worst[i, j])


def fit_lengths(variants: list[Rows]) -> tuple[float, float]:
    """Medians over the variants of rho (e2e ~ s (O + rho P)) and P_base (ttft ~ s (P + P_base)),
    least squares on the relative error."""
    rhos, bases = [], []
    for r in variants:
        p, o, e2e, ttft = r[:, 0], r[:, 1], r[:, 3], r[:, 4]
        c, *_ = np.linalg.lstsq(np.c_[o, p] / e2e[:, None], np.ones_like(e2e), rcond=None)
        rhos.append(c[1] / c[0])
        d, *_ = np.linalg.lstsq(np.c_[np.ones_like(p), p] / ttft[:, None], np.ones_like(ttft))
        bases.append(d[0] / d[1])
    return statistics.median(rhos), statistics.median(bases)


@pytest.mark.parametrize("kind", ["plain", "eagle", "draft_model", "ngram"])
def test_weights_agree_with_the_perf_model(kind: DecodeKind) -> None:
    rows = perf_rows()[kind]
    beta, kappa, worst = fit_work(rows)
    rho, base = fit_lengths(rows)
    shipped = WORK_WEIGHTS[kind]
    assert shipped.decode == pytest.approx(beta, rel=0.05)
    assert shipped.context == pytest.approx(kappa, rel=0.10)
    assert shipped.e2e_prompt == pytest.approx(rho, rel=0.05)
    assert shipped.ttft_base_tokens == pytest.approx(base, rel=0.05)
    # the model is first-order: the shipped weights' worst error over the grid stays bounded
    assert worst < 0.30


def test_shipped_weights_predict_throughput_ratios() -> None:
    """Over every example variant: mu(P0, O0) / mu(P, O) vs W(P, O) / W(P0, O0) from the
    Azure conversation mix to each grid mix, within 30% (most within 10%)."""
    errors = []
    for kind, variants in perf_rows().items():
        w = WORK_WEIGHTS[kind]
        for r in variants:
            ref = r[(r[:, 0] == 1155.0) & (r[:, 1] == 211.0)][0]
            w0 = work_per_request(TokenMix(1155.0, 211.0), w)
            for p, o, inv_mu, *_ in r:
                predicted = work_per_request(TokenMix(p, o), w) / w0
                errors.append(abs(predicted / (inv_mu / ref[2]) - 1.0))
    assert max(errors) < 0.30
    assert statistics.median(errors) < 0.10


def test_e2e_length_tracks_light_load_latency() -> None:
    """e2e at light load grows with L = O + rho P: a 4x longer output takes ~4x longer, a 4x
    longer prompt much less (the perf model, not a constant, says by how much)."""
    for variants in perf_rows().values():
        for r in variants:
            e2e = {(p, o): lat for p, o, _, lat, _ in r}
            w = WORK_WEIGHTS["plain"]
            predicted = latency_length(TokenMix(1155, 800), "e2e", w) / latency_length(
                TokenMix(1155, 211), "e2e", w
            )
            assert e2e[(1155.0, 800.0)] / e2e[(1155.0, 211.0)] == pytest.approx(predicted, rel=0.3)


def _capacity(
    model: ReplicaModel, mix: tuple[float, float], metric: LatencyMetric, slo_s: float
) -> float:
    """The perf model's own capacity at the SLO [req/s]: bisection on the rate."""
    p, o = mix
    limit = steady_state(model, 0.0, p, o).max_requests_per_s

    def latency(rate: float) -> float:
        return steady_state(model, rate, p, o).latency_at_percentile(metric, 95)

    lo, hi = limit * 1e-4, limit * 0.9999
    if latency(lo) > slo_s:
        return 0.0
    if latency(hi) <= slo_s:
        return hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if latency(mid) <= slo_s else (lo, mid)
    return lo


@pytest.mark.parametrize(
    ("metric", "median", "p10", "p90"),
    [
        ("e2e", (0.9, 1.1), 0.8, 1.25),
        ("ttft", (0.9, 1.1), 0.45, 1.3),
        ("itl", (0.95, 1.2), 0.7, 2.0),
    ],
)
def test_capacity_at_the_slo_tracks_the_perf_model(
    metric: LatencyMetric, median: tuple[float, float], p10: float, p90: float
) -> None:
    """The figures of work.py's docstring: a profile measured at 1155/211 tokens (SLO: the
    latency at 70% of the limit) moved to other mixes, against the perf model's capacity."""
    base = TokenMix(1155.0, 211.0)
    mixes = [(300, 211), (2300, 211), (6900, 211), (1155, 50), (1155, 420), (2048, 28)]
    mixes.append((6900, 400))
    ratios = []
    for path in (EXAMPLES / name for name in FITTED_ON):
        spec = parse_manifests(path.read_text(), str(path))[0].spec
        for v in spec.variants:
            model = replica_model(spec, v, 1.0)
            method = v.vllm.speculative.method if v.vllm.speculative else None
            w = WORK_WEIGHTS[decode_kind(method)]
            limit = steady_state(model, 0.0, 1155.0, 211.0).max_requests_per_s
            rates = [limit * x for x in (0.1, 0.3, 0.5, 0.7, 0.85, 0.95)]
            lats = [
                steady_state(model, r, 1155.0, 211.0).latency_at_percentile(metric, 95)
                for r in rates
            ]
            for p, o in mixes:
                if p + o > model.max_model_len:
                    continue
                true = _capacity(model, (p, o), metric, lats[3])
                got = capacity_at_mix_rps(rates, lats, lats[3], metric, base, TokenMix(p, o), w)
                if true > 0 and got > 0:
                    ratios.append(got / true)
    ratios.sort()
    assert median[0] <= statistics.median(ratios) <= median[1]
    assert ratios[len(ratios) // 10] >= p10
    assert ratios[9 * len(ratios) // 10] <= p90
