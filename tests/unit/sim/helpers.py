"""Shared builders for the simulator tests: models from command lines, workloads."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.vllm_args import parse_vllm_args

REPO_DATA = Path(__file__).resolve().parents[3] / "data"


def data_dir() -> Path:
    """The repository's data/ (traces, prices, published figures; see data/SOURCES.md)."""
    return REPO_DATA


def model(cmd: str, gpu: str = "H100", **kwargs: float) -> ReplicaModel:
    """A ReplicaModel from a `vllm serve` command line written as one string."""
    return ReplicaModel.from_vllm_args(parse_vllm_args(shlex.split(cmd)), gpu, **kwargs)  # type: ignore[arg-type]


def poisson_requests(
    rate_rps: float, n: int, prompt_tokens: int, output_tokens: int, seed: int = 1
) -> list[tuple[float, int, int]]:
    """n requests with Poisson arrivals at rate_rps and fixed lengths."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    return [(float(t), prompt_tokens, output_tokens) for t in times]


def all_at_once(n: int, prompt_tokens: int, output_tokens: int) -> list[tuple[float, int, int]]:
    """n requests arriving together (a QPS=inf benchmark)."""
    return [(0.0, prompt_tokens, output_tokens)] * n
