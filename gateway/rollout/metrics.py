"""Rollout metrics: ``modelgate_rollout_step{model}``, ``modelgate_rollbacks_total{model,reason}``.

``modelgate_rollout_step`` is the 1-based step a running rollout is at (its canary weight is
the spec's step at that index), 0 once no rollout runs for the model (promoted, rolled back,
cancelled, aborted). It is created here, on the ``CollectorRegistry`` of the process's
``MetricsRegistry``, so it is exposed with the other families in both single-process and
multiprocess mode. Multiprocess mode ``livemostrecent``: the worker that made the last
transition (the leader, or the worker that answered the POST / DELETE) holds the current
value, and a dead worker's value drops out.

Rollback reasons (the ``reason`` label) come from a fixed set: ``canary_<check>`` with the
check that failed the last analysis (``canary_error_rate``, ``canary_accuracy``...) or
``canary_insufficient_data``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from gateway.monitoring.metrics.prometheus import MetricsRegistry

_gauges: weakref.WeakKeyDictionary[CollectorRegistry, Gauge] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class RolloutMetrics(Protocol):
    def set_step(self, model: str, step: int) -> None: ...

    def inc_rollback(self, model: str, reason: str) -> None: ...


def rollout_step_gauge(registry: CollectorRegistry) -> Gauge:
    """The ``modelgate_rollout_step`` gauge of ``registry``, created on first use."""
    with _lock:
        gauge = _gauges.get(registry)
        if gauge is None:
            gauge = Gauge(
                "modelgate_rollout_step",
                "Step (1-based) of the running canary rollout of a model; 0 when none runs",
                ("model",),
                registry=registry,
                multiprocess_mode="livemostrecent",
            )
            _gauges[registry] = gauge
        return gauge


class PrometheusRolloutMetrics:
    """``RolloutMetrics`` on the process's ``MetricsRegistry`` (``get_metrics()``)."""

    def __init__(self, metrics: MetricsRegistry) -> None:
        self._metrics = metrics
        self._step = rollout_step_gauge(metrics.registry)

    def set_step(self, model: str, step: int) -> None:
        self._step.labels(model).set(step)

    def inc_rollback(self, model: str, reason: str) -> None:
        self._metrics.inc_rollback(model, reason)


class NoRolloutMetrics:
    """For processes that export nothing (the CLI): the leader sets the gauge on its tick."""

    def set_step(self, model: str, step: int) -> None:
        return None

    def inc_rollback(self, model: str, reason: str) -> None:
        return None
