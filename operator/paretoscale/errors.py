"""The exception tree. Each error says what failed, on which object or field, and what to do.

ParetoscaleError
├── SpecError          bad user input (a manifest, a flag): permanent until the input changes
├── ProfileError       a `vllm bench serve` result file lacks what the profile needs
└── MetricsUnavailable Prometheus could not answer: temporary, never read as zero load
"""

from __future__ import annotations


class ParetoscaleError(Exception):
    """Base of every error paretoscale raises on purpose."""


class SpecError(ParetoscaleError):
    """A manifest or an option is invalid. `problems` are "path: what to change" lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class ProfileError(ParetoscaleError):
    """A benchmark result file cannot become a profile point."""


class MetricsUnavailable(ParetoscaleError):
    """Prometheus failed or returned unusable data; the caller keeps what runs."""
