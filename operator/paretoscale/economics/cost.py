"""What serving costs: GPU-hours turned into dollars per hour and per request.

Every feasible variant serves the same request rate, so ordering variants by hourly cost is
ordering them by cost per request; cost per request is reported where the rate is above zero.
The FLOP cost proxy is the economics seed's, for variants that have no measured profile.
"""

from __future__ import annotations

import math

SECONDS_PER_HOUR = 3600.0

# The seed's reference accelerator for the FLOP proxy: an A100 at 312 TFLOP/s FP16.
A100_PEAK_FLOPS = 312e12
A100_USD_PER_HOUR = 3.06


def hourly_cost_usd(replicas: int, gpus_per_replica: int, usd_per_gpu_hour: float) -> float:
    """hourly cost [USD/h] = replicas x GPUs per replica x price [USD per GPU-hour]."""
    return replicas * gpus_per_replica * usd_per_gpu_hour


def cost_per_1k_requests_usd(hourly_cost: float, requests_per_s: float) -> float | None:
    """cost per 1,000 requests [USD] = hourly cost / (rate [req/s] x 3600) x 1000; None at 0 load."""
    if requests_per_s <= 0:
        return None
    return hourly_cost / (requests_per_s * SECONDS_PER_HOUR) * 1000.0


def flop_proxy_cost_per_request_usd(
    flops_per_inference: float,
    peak_flops: float = A100_PEAK_FLOPS,
    utilization: float = 0.80,
    usd_per_hour: float = A100_USD_PER_HOUR,
    overhead: float = 1.30,
) -> float:
    """The seed's FLOP cost proxy [USD per request].

    seconds = FLOPs / (peak FLOP/s x utilization); cost = seconds x USD/h / 3600 x overhead,
    where overhead (1.30) covers batching inefficiency and infrastructure.
    """
    seconds = flops_per_inference / (peak_flops * utilization)
    return seconds * usd_per_hour / SECONDS_PER_HOUR * overhead


def transformer_flops_per_request(parameters: int, tokens_per_request: float) -> float:
    """FLOPs to process one request [FLOP] ~= 2 x parameters x tokens (one multiply-add each)."""
    return 2.0 * parameters * tokens_per_request


def flop_proxy_capacity_rps(
    parameters: int,
    tokens_per_request: float,
    peak_flops: float,
    gpus: int,
    utilization: float = 0.70,
) -> float:
    """Requests/s one replica can process by the FLOP proxy [req/s] (an estimate, not a measurement).

    capacity = GPUs x peak FLOP/s x utilization / (2 x parameters x tokens per request), with the
    seed's 70% utilization for transformer inference.
    """
    flops = transformer_flops_per_request(parameters, tokens_per_request)
    if flops <= 0 or not math.isfinite(flops):
        return 0.0
    return gpus * peak_flops * utilization / flops
