"""What every worker needs to know about a model's running experiment.

The control plane stores the full experiment (spec, plan, looks, verdict); the data plane
only needs which versions take part, the outcome metrics it may accept and when the
experiment started. ``RunningExperiment`` is that subset, handed to the feedback path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["binary", "continuous", "guardrail"]
METRIC_KINDS: tuple[MetricKind, ...] = ("binary", "continuous", "guardrail")

# guardrails the gateway measures itself, per variant; never accepted as client outcomes
GATEWAY_GUARDRAILS = ("p95_latency_ms", "error_rate", "low_confidence_rate")


@dataclass(frozen=True, slots=True)
class ExperimentMetric:
    name: str
    kind: MetricKind

    @property
    def measured_by_gateway(self) -> bool:
        return self.name in GATEWAY_GUARDRAILS

    def accepts(self, value: float) -> bool:
        """Whether ``value`` is a valid outcome of this metric (binary: 0 or 1)."""
        if self.kind == "binary":
            return value == 0.0 or value == 1.0
        return value == value and value not in (float("inf"), float("-inf"))


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    id: str
    model: str
    variants: Mapping[str, float]  # version -> traffic weight in percent
    metrics: tuple[ExperimentMetric, ...]
    started_at: float  # unix seconds

    def metric(self, name: str) -> ExperimentMetric | None:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        return None

    def outcome_metrics(self) -> tuple[ExperimentMetric, ...]:
        """The metrics clients report through the feedback endpoint."""
        return tuple(m for m in self.metrics if not m.measured_by_gateway)
