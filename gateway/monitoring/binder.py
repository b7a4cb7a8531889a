"""``Monitoring``: binds metrics, drift windows and feedback to every loaded version.

``attach(publisher)`` registers three hooks, so monitoring follows the publisher without
the publisher knowing about it:

* ``on_load`` -> ``bind``: metric slots (``bind_variant``: ``model_loaded`` = 1), a
  ``PredictionWindow`` over the version's reference distributions (``ring_capacity`` rows),
  the model's feedback tables, a ``VariantRecorder`` on ``variant.recorder``, and a batcher
  whose runner call is captured (batch size, inference duration and the rows of every
  ORT call, see ``monitoring.recorder``);
* ``on_unload`` -> ``unbind``: last flush, ``unbind_variant`` (the series go away);
* a ``SnapshotHolder`` listener -> ``published``: ``modelgate_traffic_weight`` of every
  loaded version on each publish.

The binding happens before the version takes traffic (the publisher loads, then
publishes), so no request ever reaches a version without its recorder. ``MetricsRoute`` is
``GET /metrics``: it flushes this process's recorders, then renders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.dataplane.batcher import Batcher
from gateway.dataplane.feedback.store import FeedbackStore
from gateway.dataplane.shadow import ShadowMirror
from gateway.dataplane.snapshot import Snapshot, SnapshotHolder, Variant
from gateway.monitoring.health import HealthThresholds
from gateway.monitoring.metrics.multiproc import multiprocess_dir
from gateway.monitoring.metrics.prometheus import MetricsEndpoint, MetricsRegistry, get_metrics
from gateway.monitoring.performance_estimate import Calibration
from gateway.monitoring.reconstruction import ReconstructionModel
from gateway.monitoring.recorder import (
    StampClock,
    VariantRecorder,
    feature_lists,
    timed_run,
)
from gateway.monitoring.reference import Reference
from gateway.monitoring.window import PredictionWindow
from gateway.serving.publisher import Publisher
from gateway.settings import Settings

logger = logging.getLogger("modelgate.monitoring")


def shared_feedback_dir() -> Path | None:
    """With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by ``serve``) the feedback
    tables are files in a ``feedback`` folder beside the metric files; else None."""
    directory = multiprocess_dir()
    return None if directory is None else Path(directory) / "feedback"


def build_window(
    variant: Variant,
    capacity: int,
    clock: Callable[[], float] = time.monotonic,
    probability_columns: int = 0,
) -> PredictionWindow:
    """The version's drift window; a reference that cannot be read leaves it featureless
    (predictions only) with a warning rather than refusing to serve."""
    try:
        reference = Reference.from_dict(dict(variant.reference or {}))
    except (TypeError, ValueError) as exc:
        logger.warning(
            "%s %s: reference distributions unusable (%s); no feature drift for it",
            variant.model,
            variant.version,
            exc,
        )
        reference = Reference.from_dict({})
    sig = variant.signature
    numeric, categorical = feature_lists(sig.numeric_features, sig.categorical_features, reference)
    return PredictionWindow(
        reference,
        capacity=capacity,
        numeric_features=numeric,
        categorical_features=categorical,
        clock=clock,
        probability_columns=probability_columns,
    )


def stored_monitor(variant: Variant, what: str, parse: Callable[[], Any]) -> Any:
    """A label-free monitor parsed from the version's reference: None when the reference
    lacks it (registered before it existed) or it cannot be read (warned)."""
    try:
        return parse()
    except (TypeError, ValueError, KeyError) as exc:
        logger.warning("%s %s: %s unusable (%s)", variant.model, variant.version, what, exc)
        return None


def label_free_monitors(
    variant: Variant, capacity: int, clock: Callable[[], float]
) -> tuple[PredictionWindow, ReconstructionModel | None, Calibration | None]:
    """The version's drift window, stored reconstruction model and calibration map; the
    window keeps probability vectors when the calibration has per-class maps."""
    stored = dict(variant.reference or {})
    calibration: Calibration | None = stored_monitor(
        variant, "calibration map", lambda: Calibration.from_reference(stored)
    )
    columns = 0 if calibration is None else calibration.probability_columns
    window = build_window(variant, capacity, clock, columns)
    reconstruction: ReconstructionModel | None = stored_monitor(
        variant,
        "multivariate drift model",
        lambda: ReconstructionModel.from_reference(stored, window.reference),
    )
    return window, reconstruction, calibration


def timed_batcher(variant: Variant, sink: Any) -> Batcher:
    """A batcher like ``variant.batcher`` (not used yet) whose runner call is timed."""
    old = variant.batcher
    return Batcher(
        timed_run(variant.runner.run, sink),
        mode=old.mode,
        batching=old.batching,
        max_batch_size=old.max_batch_size,
        max_delay_s=old.max_delay_s,
        label=old.label,
        pool=old.pool,
    )


class Monitoring:
    """This process's monitoring (``state.monitoring``); see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        holder: SnapshotHolder,
        mirror: ShadowMirror,
        *,
        metrics: MetricsRegistry | None = None,
        feedback_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.mirror = mirror
        self.metrics = metrics if metrics is not None else get_metrics()
        # read by bind_variant: the low-confidence counter uses the configured threshold
        self.metrics.low_confidence_threshold = settings.low_confidence
        self.feedback = FeedbackStore(
            capacity=settings.feedback_capacity,
            ttl_s=settings.feedback_ttl_s,
            window=settings.feedback_window,
            directory=feedback_dir,
        )
        self.thresholds = HealthThresholds(
            low_confidence=settings.low_confidence,
            max_low_confidence_rate=settings.health_max_low_confidence_rate,
            max_p95_latency_ms=settings.health_max_p95_ms,
            max_error_rate=settings.health_max_error_rate,
            max_drift_score=settings.health_max_drift_score,
            max_drifted_features=settings.health_max_drifted_features,
        )
        self._recorders: dict[int, VariantRecorder] = {}
        self.tasks: Any = None  # MonitoringTasks once started (monitoring_timers)

    def attach(self, publisher: Publisher) -> None:
        publisher.on_load.append(self.bind)
        publisher.on_unload.append(self.unbind)
        self.holder.listeners.append(self.published)

    # --- publisher hooks -------------------------------------------------------------------

    def bind(self, variant: Variant) -> None:
        sig = variant.signature
        vm = self.metrics.bind_variant(variant.model, variant.version, classes=sig.classes)
        tables = self.feedback.model(variant.model)
        tag = tables.register(variant.version, sig.task, sig.classes)
        capacity = self.settings.ring_capacity
        stamps = StampClock()
        window, reconstruction, calibration = label_free_monitors(variant, capacity, stamps)
        recorder = VariantRecorder(
            variant, vm, window, tables, tag, capacity=capacity, stamps=stamps
        )
        recorder.reconstruction, recorder.calibration = reconstruction, calibration
        variant.batcher = timed_batcher(variant, recorder.batches)
        variant.recorder = recorder
        self._recorders[id(variant)] = recorder

    def unbind(self, variant: Variant) -> None:
        recorder = self._recorders.pop(id(variant), None)
        if recorder is not None:
            recorder.flush()
        self.metrics.unbind_variant(variant.model, variant.version)

    def published(self, snapshot: Snapshot) -> None:
        """Traffic weights (percent of weighted traffic) of every version a route holds."""
        for name, route in snapshot.models.items():
            total = sum(route.weights)
            weights: dict[str, float] = {}
            for variant, weight in zip(route.routes, route.weights, strict=True):
                weights[variant.version] = weights.get(variant.version, 0.0) + weight
            for version in route.variants:
                share = 100.0 * weights.get(version, 0.0) / total if total > 0 else 0.0
                self.metrics.set_traffic_weight(name, version, share)

    # --- for the timers, reports and endpoints ---------------------------------------------

    def recorders(self) -> Iterator[VariantRecorder]:
        return iter(list(self._recorders.values()))

    def flush(self) -> None:
        """Flush every recorder of this process (before a scrape, report or lookup)."""
        for recorder in list(self._recorders.values()):
            recorder.flush()

    def recorder(self, model: str, version: str) -> VariantRecorder | None:
        """The recorder of the version as currently published."""
        route = self.holder.current.models.get(model)
        variant = None if route is None else route.variants.get(version)
        found = None if variant is None else variant.recorder
        return found if isinstance(found, VariantRecorder) else None

    def record_input_error(self, model: str, reason: str) -> None:
        self.metrics.record_input_error(model, reason)


class MetricsRoute:
    """``GET /metrics`` (raw ASGI): flush the recorders, then the exposition."""

    __slots__ = ("monitoring", "endpoint")

    def __init__(self, monitoring: Monitoring | None) -> None:
        self.monitoring = monitoring
        self.endpoint = MetricsEndpoint(None if monitoring is None else monitoring.metrics)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.monitoring is not None:
            self.monitoring.flush()
        await self.endpoint(scope, receive, send)
