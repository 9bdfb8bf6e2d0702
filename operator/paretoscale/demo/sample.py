"""What the demo saw at one refresh of the live view: the load it offered, what the operator
read and did, the pods and their cost, and the simulators' latency histogram so far.

The runner fills one Sample every few seconds from the Kubernetes API, Prometheus and the
price exporter; the view, the summary and the plot are pure functions of the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    wall_s: float  # wall seconds since the day started
    day_s: float  # seconds into the (compressed) day
    offered_rps: float  # the load generator's rate now [req/s]
    observed_rps: float | None  # what the operator last read from Prometheus [req/s]
    phase: str  # rollout phase (Stable, Preparing, Verifying, ...)
    active: str | None  # variant the Service routes to
    target: str | None  # variant being rolled to (None when Stable)
    replicas: Mapping[str, int]  # pods that exist (and cost), per variant
    ready: Mapping[str, int]  # of them Ready, per variant
    gpus: int  # GPUs those pods hold
    usd_per_hour: float  # what those GPUs cost at the published prices [USD/h]
    prices: Mapping[str, float]  # published USD per GPU-hour by GPU type
    decision: str = ""  # "fp8 x 2 (scale)"
    reason: str = ""  # its reasons, "; "-joined
    # Cumulative e2e latency histogram of every simulator so far: upper edge [s] -> requests
    # at or below it (inf: all); empty when Prometheus had no answer.
    e2e_buckets: Mapping[float, float] = field(default_factory=dict)
