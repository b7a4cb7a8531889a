"""Monitoring's periodic work, off the request path, and its lifespan hooks.

* every ``TICK_S`` (1 s): flush every recorder (pending requests -> metric slots, drift
  windows, feedback tables), ``FLUSHES_PER_TURN`` per event-loop turn; shadow agreement
  ratio and dropped copies from each ``ShadowStats`` into
  ``modelgate_shadow_agreement_ratio`` / ``_shadow_dropped_total``;
* every ``MODELGATE_DRIFT_INTERVAL_S`` (10 s): per version with new rows, the PSI gauges
  (``modelgate_feature_psi`` once the window holds ``MODELGATE_DRIFT_MIN_SAMPLES`` values
  of a feature, ``modelgate_prediction_psi`` likewise), ``modelgate_live_accuracy`` over
  the last ``MODELGATE_FEEDBACK_WINDOW`` labels, and a warning, at most once per
  ``WARN_EVERY_S`` per version, when the window's low-confidence share is above
  ``MODELGATE_HEALTH_MAX_LOW_CONFIDENCE_RATE``; then, in a worker thread, the label-free
  monitors of versions whose reference stores them: ``modelgate_multivariate_drift_error``
  and its ``_upper_bound`` / ``_lower_bound`` (once the window holds
  ``MODELGATE_DRIFT_MIN_SAMPLES`` rows),
  ``modelgate_estimated_accuracy`` and ``modelgate_estimated_roc_auc``. With
  ``MODELGATE_DRIFT_WINDOW_S`` set, all of these read only the window's rows of the last
  that many seconds.

``start_monitoring(state)`` / ``stop_monitoring(state)`` are the app's lifespan hooks;
both do nothing when monitoring is off. The metrics registry's own flusher
(``MetricsRegistry.start``: flushes, sweeps dead workers' gauge files) runs alongside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from gateway.monitoring import psi_numba
from gateway.monitoring.binder import Monitoring
from gateway.monitoring.recorder import VariantRecorder
from gateway.monitoring.reports import gauge_psi, label_free
from gateway.monitoring.window import WindowSnapshot

if TYPE_CHECKING:
    from gateway.state import GatewayState

logger = logging.getLogger("modelgate.monitoring")

TICK_S = 1.0
FLUSHES_PER_TURN = 16  # recorders the tick flushes per event-loop turn
WARN_EVERY_S = 300.0


class MonitoringTasks:
    def __init__(
        self,
        monitoring: Monitoring,
        *,
        tick_s: float = TICK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitoring = monitoring
        self.tick_s = tick_s
        self.clock = clock
        self._dropped: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.monitoring.metrics.start()
        drift_s = self.monitoring.settings.drift_interval_s
        for name, period, job in (
            ("monitoring-tick", self.tick_s, self._tick_async),
            ("monitoring-drift", drift_s, self.drift_tick),
        ):
            task = asyncio.get_running_loop().create_task(self._every(period, job), name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tick()
        await self.monitoring.metrics.stop()

    async def _every(self, period: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("monitoring job %s failed", getattr(job, "__name__", job))

    async def _tick_async(self) -> None:
        """``tick``, letting requests in every ``FLUSHES_PER_TURN`` recorders: with a hundred
        models one flush of every version held the loop tens of ms once a second."""
        for n, recorder in enumerate(self.monitoring.recorders(), 1):
            recorder.flush()
            if n % FLUSHES_PER_TURN == 0:
                await asyncio.sleep(0)
        self.shadow()

    def tick(self) -> None:
        self.monitoring.flush()
        self.shadow()

    def shadow(self) -> None:
        mon, metrics = self.monitoring, self.monitoring.metrics
        for model in mon.holder.current.models:
            for stats in mon.mirror.stats_of(model):
                key = (model, stats.version)
                agreement = stats.agreement
                if agreement is not None:
                    metrics.set_shadow_agreement(model, stats.version, agreement)
                seen = self._dropped.get(key, 0)
                if stats.dropped > seen:
                    metrics.inc_shadow_dropped(model, stats.version, stats.dropped - seen)
                self._dropped[key] = stats.dropped

    async def drift_tick(self) -> None:
        for recorder in self.monitoring.recorders():
            snap = self.gauges(recorder)
            if snap is not None and (recorder.reconstruction or recorder.calibration):
                await self.label_free_gauges(recorder, snap)
            await asyncio.sleep(0)  # one version at a time: requests go in between

    async def label_free_gauges(self, recorder: VariantRecorder, snap: WindowSnapshot) -> None:
        """Multivariate error and estimated accuracy: computed in a worker thread (a few ms
        per 10,000 rows, see benchmarks/label_free_cost.py), exported from the loop."""
        minimum = self.monitoring.settings.drift_min_samples
        multivariate, estimate = await asyncio.to_thread(label_free, recorder, snap, minimum)
        metrics, model, version = self.monitoring.metrics, recorder.model, recorder.version
        if multivariate is not None and multivariate.drifted is not None:
            error, lower, upper = multivariate.error, multivariate.lower, multivariate.upper
            assert error is not None and lower is not None and upper is not None
            metrics.set_multivariate_error(model, version, error, lower, upper)
        if estimate is not None and estimate.accuracy is not None:
            metrics.set_estimated_accuracy(model, version, estimate.accuracy.value)
        if estimate is not None and estimate.roc_auc is not None:
            metrics.set_estimated_roc_auc(model, version, estimate.roc_auc.value)

    def gauges(self, recorder: VariantRecorder) -> WindowSnapshot | None:
        """PSI, live accuracy and the low-confidence warning of one version."""
        mon = self.monitoring
        settings, metrics = mon.settings, mon.metrics
        model, version = recorder.model, recorder.version
        tables = mon.feedback.get(model)
        if (
            recorder.classification
            and tables is not None
            and tables.appended != recorder.gauge_labels
        ):
            recorder.gauge_labels = tables.appended
            quality = tables.quality(version, last=mon.feedback.window)
            if quality.get("accuracy") is not None:
                metrics.set_live_accuracy(model, version, quality["accuracy"])
        window = recorder.window
        if window is None:
            return None
        recorder.flush()
        # nothing new since the last tick (a time-bounded window changes anyway: rows age out)
        if recorder.rows == recorder.gauge_rows and not settings.drift_window_s:
            return None
        recorder.gauge_rows = recorder.rows
        snap = window.snapshot(settings.drift_window_s)
        minimum = settings.drift_min_samples
        features, prediction = gauge_psi(snap, window.reference)
        present = snap.counts.sum(axis=1).tolist()  # non-missing values per feature
        counted = dict(zip(snap.numeric_features, present, strict=True))
        for name, value in features.items():
            if counted.get(name, snap.size) >= minimum:
                metrics.set_feature_psi(model, version, name, value)
        if prediction is not None and snap.size >= minimum:
            metrics.set_prediction_psi(model, version, prediction)
        confidence = snap.confidence[~np.isnan(snap.confidence)]
        if confidence.size >= minimum:
            share = float(np.count_nonzero(confidence < settings.low_confidence) / confidence.size)
            now = self.clock()
            if share > settings.health_max_low_confidence_rate and (
                now - recorder.last_warned >= WARN_EVERY_S
            ):
                recorder.last_warned = now
                logger.warning(
                    "%s %s: %.1f%% of the last %d predictions have confidence below %.2f "
                    "(threshold %.1f%%)",
                    model,
                    version,
                    100.0 * share,
                    confidence.size,
                    settings.low_confidence,
                    100.0 * settings.health_max_low_confidence_rate,
                )
        return snap


async def start_monitoring(state: GatewayState) -> None:
    """Lifespan hook: compile the numba kernels (cached after the first run), start the
    timers and export the traffic weights of the snapshot already published."""
    monitoring: Monitoring | None = state.monitoring
    if monitoring is None or monitoring.tasks is not None:
        return
    await asyncio.to_thread(psi_numba.warmup)
    monitoring.published(state.holder.current)
    tasks = MonitoringTasks(monitoring)
    tasks.start()
    monitoring.tasks = tasks


async def stop_monitoring(state: GatewayState) -> None:
    monitoring: Monitoring | None = state.monitoring
    if monitoring is None or monitoring.tasks is None:
        return
    tasks, monitoring.tasks = monitoring.tasks, None
    await tasks.stop()
