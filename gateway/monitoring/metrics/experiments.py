"""Experiment gauges, set by the leader from each look of a running experiment.

* ``modelgate_experiment_running{model}``: 1 while an experiment runs for the model, else 0;
* ``modelgate_experiment_assignments{model,experiment,version}``: requests assigned to each
  variant (summed over every worker and node, as the registry counts them);
* ``modelgate_experiment_metric_mean{model,experiment,version,metric}``: each outcome
  metric's mean per variant;
* ``modelgate_experiment_pvalue{model,experiment,metric}``: the always-valid p-value of the
  candidate - control difference.

Created on the ``CollectorRegistry`` of the process's ``MetricsRegistry`` on first use (like
``modelgate_rollout_step``), with multiprocess mode ``livemostrecent``: the leader's write is
the value, and it drops out with the leader (the next leader sets them at its first look).
When an experiment ends its per-experiment series are removed; ``running`` goes to 0.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from gateway.monitoring.metrics.prometheus import MetricsRegistry

NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "running": (
        "modelgate_experiment_running",
        ("model",),
    ),
    "assignments": (
        "modelgate_experiment_assignments",
        ("model", "experiment", "version"),
    ),
    "mean": (
        "modelgate_experiment_metric_mean",
        ("model", "experiment", "version", "metric"),
    ),
    "pvalue": (
        "modelgate_experiment_pvalue",
        ("model", "experiment", "metric"),
    ),
}
HELP = {
    "running": "1 while an A/B experiment runs for the model, else 0",
    "assignments": "Requests assigned to each variant of the running experiment",
    "mean": "Mean of an outcome metric per variant of the running experiment",
    "pvalue": "Always-valid p-value of the candidate - control difference of a metric",
}


@dataclass(frozen=True, slots=True)
class ExperimentGauges:
    running: Gauge
    assignments: Gauge
    mean: Gauge
    pvalue: Gauge


_gauges: weakref.WeakKeyDictionary[CollectorRegistry, ExperimentGauges] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def experiment_gauges(registry: CollectorRegistry) -> ExperimentGauges:
    """The experiment gauges of ``registry``, created on first use."""
    with _lock:
        found = _gauges.get(registry)
        if found is None:
            made = {
                key: Gauge(
                    name,
                    HELP[key],
                    labels,
                    registry=registry,
                    multiprocess_mode="livemostrecent",
                )
                for key, (name, labels) in NAMES.items()
            }
            found = ExperimentGauges(**made)
            _gauges[registry] = found
        return found


class PrometheusExperimentMetrics:
    """Sets the gauges from a look (``gateway.experiments.analysis``) or an ended experiment."""

    def __init__(self, metrics: MetricsRegistry) -> None:
        self.gauges = experiment_gauges(metrics.registry)
        # model -> label sets written for its current experiment (removed when it ends)
        self._written: dict[str, set[tuple[str, tuple[str, ...]]]] = {}

    def _set(self, model: str, key: str, labels: tuple[str, ...], value: float) -> None:
        getattr(self.gauges, key).labels(*labels).set(value)
        self._written.setdefault(model, set()).add((key, labels))

    def look(self, model: str, experiment: str, look: Mapping[str, Any]) -> None:
        self.gauges.running.labels(model).set(1)
        for version, count in look.get("assignments", {}).items():
            self._set(model, "assignments", (model, experiment, version), float(count))
        for metric, view in look.get("metrics", {}).items():
            if view.get("measured_by") == "gateway":
                continue
            for version, numbers in view.get("variants", {}).items():
                mean = numbers.get("mean")
                if mean is not None and math.isfinite(mean):
                    self._set(model, "mean", (model, experiment, version, metric), mean)
            p_value = (view.get("difference") or {}).get("p_value")
            if p_value is not None:
                self._set(model, "pvalue", (model, experiment, metric), p_value)

    def idle(self, model: str) -> None:
        """No experiment runs for ``model``: running 0, the ended one's series removed."""
        self.gauges.running.labels(model).set(0)
        for key, labels in self._written.pop(model, set()):
            try:
                getattr(self.gauges, key).remove(*labels)
            except KeyError:
                pass
