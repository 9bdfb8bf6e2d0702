"""A vLLM-compatible simulator: the performance model of a vLLM replica and the data plane
(HTTP server, pod bridge, load generator) built on it.

Pure core: vllm_args (the `vllm serve` command line), precision (weight format and kernel),
shapes (transformer shapes), roofline (per-GPU coefficients, KV capacity), specmodel
(speculative decoding), perfmodel (`ReplicaModel`: step times and limits), scheduler (vLLM
V1's continuous batching, step by step; `simulate` for discrete-event runs), steady
(`steady_state`: the analytic operating point), mixture (percentiles over request lengths),
prior (a variant's predicted profile, the operator's `basis: model`), traces (public traces
as arrays).
Shell: engine (the real-time engine loop), server (OpenAI API, /metrics), metrics (vLLM's
Prometheus names), kube and bridge (one simulator per KWOK pod), loadgen, cli.
"""

from paretoscale.sim.perfmodel import ReplicaModel
from paretoscale.sim.scheduler import RequestRecord, simulate
from paretoscale.sim.steady import SteadyState, steady_state
from paretoscale.sim.vllm_args import VllmArgs, VllmArgsError, parse_vllm_args

__all__ = [
    "ReplicaModel", "RequestRecord", "SteadyState", "VllmArgs", "VllmArgsError",
    "parse_vllm_args", "simulate", "steady_state",
]  # fmt: skip
