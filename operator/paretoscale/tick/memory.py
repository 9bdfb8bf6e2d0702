"""What one ModelDeployment's tick remembers, reads and returns, as frozen data.

`TickMemory` is everything the tick needs from earlier ticks; the operator keeps it in the
ModelDeployment's status (controller/memory.py converts both ways), the replay in its own
memory. `TickOutcome` is everything a tick decided, for the shell to apply and to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from paretoscale.decide.forecast import ForecastMemory, RateForecast
from paretoscale.decide.learned import LearnedProfile
from paretoscale.decide.saturation import Saturation, SaturationMemory
from paretoscale.decide.types import Decision, ScaleDown
from paretoscale.rollout.analysis import Verdict
from paretoscale.rollout.machine import RolloutState, Step

Mode = Literal["Auto", "Recommend"]
MAX_ROLLED_BACK = 10  # as many as status.lastSwitches holds


@dataclass(frozen=True)
class RolledBack:
    """A rollout that was rolled back: to which variant, when [s], why."""

    variant: str
    at: float
    reason: str


@dataclass(frozen=True)
class TickMemory:
    """What the tick remembers between ticks."""

    rollout: RolloutState = field(default_factory=RolloutState)
    variant_since: float | None = None
    scale_down: ScaleDown | None = None
    learned: Mapping[str, LearnedProfile] = field(default_factory=dict)  # decide/learned.py
    rolled_back: tuple[RolledBack, ...] = ()  # newest first
    recommended: tuple[str, int] | None = None  # Recommend mode: the last (variant, replicas)
    replicas: int | None = None  # Auto mode: the active variant's replicas last decided
    saturation: SaturationMemory = field(default_factory=SaturationMemory)
    forecast: ForecastMemory = field(default_factory=ForecastMemory)


@dataclass(frozen=True)
class TickOptions:
    """How the tick runs. The operator runs the defaults (and its mode); the replay's
    ablations switch single pieces off."""

    mode: Mode = "Auto"
    correction: bool = True  # learn the profiles from live readings (decide/learned.py)
    learn_min_load: float = 0.0  # learn only at >= this share of declared capacity (ablation)
    saturation_guard: bool = True
    forecast: bool = True
    # The metrics poll interval [s]: counters and the forecast move once per poll, however
    # often the shell calls tick() in between (a watch event reconciles at once).
    tick_seconds: float = 30.0


@dataclass(frozen=True)
class TickOutcome:
    """One tick's result: what to run (decision, rollout step), what was learned, and the
    memory for the next tick."""

    decision: Decision
    step: Step | None  # None in Recommend mode: nothing is applied
    verdict: Verdict | None  # the rollout analysis fed to the step (Auto mode)
    corrections: Mapping[str, float]  # per variant: the learned factor the decision uses next
    memory: TickMemory
    saturation: Saturation | None = None
    forecast: RateForecast | None = None  # the rate expected once a new replica is Ready
