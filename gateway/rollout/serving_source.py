"""The rollout controller's ``VariantStatsSource`` inside the running server.

``ServingStatsSource`` answers from the Prometheus families (``rollout_stats.
MetricsStatsSource``: every worker's traffic, latency, classes, confidence, feature PSI)
for a version whose metric slots are bound, which is what monitoring does for every loaded
version. For a version without bound slots (a server built without the monitoring layer)
it falls back to the data plane's own per-variant counters, ``Variant.requests`` and
``Variant.errors`` of this worker's routing snapshot: requests and errors only, so the
error-rate check decides and the checks whose signal is missing are skipped
(``gateway.rollout.checks``). Those counters are this process's share of the traffic;
with several workers the leader judges its own sample of it.

Live accuracy comes from ``labels(model, version, since)`` (the server's label feedback);
without it the accuracy check is skipped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway.dataplane.snapshot import SnapshotHolder
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.rollout.checks import VariantIntervalStats
from gateway.rollout.metrics_source import MAX_READINGS, LabelsSource, MetricsStatsSource

Key = tuple[str, str]
# (answered requests including errors, errors) per version, at one instant
Counts = dict[Key, tuple[int, int]]


def flush_recorder(recorder: Any) -> None:
    """Move a recorder's pending requests into its window and metrics (monitoring batches
    them and flushes on its own tick)."""
    flush = getattr(recorder, "flush", None)
    if callable(flush):
        flush()


def flush_model_recorders(holder: SnapshotHolder, model: str) -> None:
    """This worker's recorders of ``model`` batch predictions (class counts, confidence)
    until their next flush: move them into the metrics before reading."""
    route = holder.current.models.get(model)
    if route is not None:
        for variant in route.variants.values():
            flush_recorder(variant.recorder)


def read_counts(holder: SnapshotHolder) -> Counts:
    """Every loaded variant's cumulative counters in the current snapshot."""
    counts: Counts = {}
    for variant in holder.current.variants():
        counts[(variant.model, variant.version)] = (
            variant.requests + variant.errors,
            variant.errors,
        )
    return counts


class CounterStatsSource:
    """Requests and errors from ``Variant`` counters, differenced over the interval.

    Like ``MetricsStatsSource``, it keeps timestamped readings (one per ``resolution_s`` at
    most) and subtracts the newest one taken at or before ``since`` (else the oldest it
    has). A counter below its base means the version was reloaded (fresh counters), so the
    base counts as zero, like a Prometheus counter reset.
    """

    def __init__(
        self,
        holder: SnapshotHolder,
        *,
        clock: Callable[[], float] = time.time,
        resolution_s: float = 1.0,
    ) -> None:
        self.holder = holder
        self.clock = clock
        self.resolution_s = resolution_s
        self._readings: deque[tuple[float, Counts]] = deque(maxlen=MAX_READINGS)

    def read(self) -> Counts:
        now = self.clock()
        if self._readings and now - self._readings[-1][0] < self.resolution_s:
            return self._readings[-1][1]
        counts = read_counts(self.holder)
        self._readings.append((now, counts))
        return counts

    def _base(self, since: float) -> Counts | None:
        base = None
        for at, counts in self._readings:
            if at > since:
                break
            base = counts
        if base is None and len(self._readings) > 1:
            base = self._readings[0][1]
        return base

    def interval_stats(self, model: str, version: str, since: float) -> VariantIntervalStats:
        current = self.read()
        base = self._base(since)
        if base is None:  # the first reading: nothing to subtract yet
            return VariantIntervalStats()
        requests, errors = current.get((model, version), (0, 0))
        base_requests, base_errors = base.get((model, version), (0, 0))
        if requests < base_requests or errors < base_errors:
            base_requests = base_errors = 0
        return VariantIntervalStats(requests=requests - base_requests, errors=errors - base_errors)


class ServingStatsSource:
    """Metrics when the version's slots are bound, else the data plane's counters."""

    def __init__(
        self,
        holder: SnapshotHolder,
        metrics: MetricsRegistry,
        *,
        labels: LabelsSource | None = None,
        clock: Callable[[], float] = time.time,
        resolution_s: float = 1.0,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.labels = labels
        self.from_metrics = MetricsStatsSource(
            metrics, clock=clock, labels=labels, resolution_s=resolution_s
        )
        self.from_counters = CounterStatsSource(holder, clock=clock, resolution_s=resolution_s)

    async def interval_stats(self, model: str, version: str, since: float) -> VariantIntervalStats:
        if self.metrics.variant(model, version) is not None:
            flush_model_recorders(self.holder, model)
            return await self.from_metrics.interval_stats(model, version, since)
        stats = self.from_counters.interval_stats(model, version, since)
        if self.labels is not None:
            accuracy, labelled = await self.labels(model, version, since)
            stats = replace(stats, live_accuracy=accuracy, labelled=labelled)
        return stats
