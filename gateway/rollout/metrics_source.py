"""A ``VariantStatsSource`` over the gateway's own Prometheus metrics.

The rollout leader runs in one worker, but traffic is served by all of them. The metric
families already add every worker up (multiprocess mode reads each worker's files), so
this source reads the cumulative series and differences them over the interval:

* requests / errors   ``modelgate_requests_total`` of the client routes (shadow copies
                      excluded); an error is any answer that is not 2xx;
* p99 latency         quantile of ``modelgate_request_duration_seconds`` bucket deltas,
                      interpolated inside a bucket like PromQL's ``histogram_quantile``
                      (bucket bounds are ~2x apart: coarse, but the check wants 1.5x);
* class counts        ``modelgate_predictions_total`` deltas (the regressors' "" dropped);
* low-confidence rate ``modelgate_low_confidence_total`` / confidence-histogram count deltas;
* max feature PSI     current ``modelgate_feature_psi`` gauges (the drift window's view);
* live accuracy       the ``modelgate_live_accuracy`` gauge, but with ``labelled = 0``:
                      the metrics carry no label count, so the accuracy check is skipped
                      unless the server passes ``labels`` (accuracy and labelled rows
                      from its feedback store).

Counters are cumulative, so the source keeps timestamped readings (at most one per
``resolution_s``, taken when the controller asks, i.e. every tick of a running rollout)
and subtracts the newest reading taken at or before ``since``; when there is none, the
oldest it has (less data, never made-up data). It keeps ``MAX_READINGS`` of them: at the
default 1 s that covers intervals up to ~68 minutes; longer ones see their last ~68 min.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.rollout.checks import VariantIntervalStats

Key = tuple[str, str]
MAX_READINGS = 4096
LabelsSource = Callable[[str, str, float], Awaitable[tuple[float | None, int]]]


@dataclass
class Totals:
    """Cumulative values of one (model, version) at one instant."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    classes: dict[str, float] = field(default_factory=dict)
    low_confidence: float = 0.0
    confidence_count: float = 0.0
    feature_psi: list[float] = field(default_factory=list)
    live_accuracy: float | None = None


def read_totals(metrics: MetricsRegistry) -> dict[Key, Totals]:
    """Every variant's cumulative series, from the exposition (all workers)."""
    out: dict[Key, Totals] = defaultdict(Totals)
    for family in metrics.exposition.collect():
        for s in family.samples:
            labels = s.labels
            if "model" not in labels or "version" not in labels:
                continue
            t = out[(labels["model"], labels["version"])]
            name = s.name
            if name == "modelgate_requests_total":
                if labels.get("route") == "shadow":
                    continue
                t.requests += s.value
                if not labels.get("code", "").startswith("2"):
                    t.errors += s.value
            elif name == "modelgate_request_duration_seconds_bucket":
                le = float(labels["le"])
                t.buckets[le] = t.buckets.get(le, 0.0) + s.value
            elif name == "modelgate_predictions_total":
                t.classes[labels["class"]] = t.classes.get(labels["class"], 0.0) + s.value
            elif name == "modelgate_low_confidence_total":
                t.low_confidence += s.value
            elif name == "modelgate_prediction_confidence_count":
                t.confidence_count += s.value
            elif name == "modelgate_feature_psi" and math.isfinite(s.value):
                t.feature_psi.append(s.value)
            elif name == "modelgate_live_accuracy" and math.isfinite(s.value):
                t.live_accuracy = s.value
    return out


async def read_merged_totals(metrics: MetricsRegistry) -> dict[Key, Totals]:
    """``read_totals`` after flushing this worker's metric slots (the other workers flush on
    their own timers); merging every worker's files runs off the loop."""
    metrics.flush()
    if metrics.multiprocess:
        return await asyncio.to_thread(read_totals, metrics)
    return read_totals(metrics)


def bucket_quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """``histogram_quantile``: linear inside the bucket holding rank ``q * total``."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    counts = [cumulative[b] for b in bounds]
    rank = q * counts[-1]
    i = bisect.bisect_left(counts, rank)
    if math.isinf(bounds[i]):
        finite = [b for b in bounds if not math.isinf(b)]
        return finite[-1] if finite else None
    lower, below = (bounds[i - 1], counts[i - 1]) if i > 0 else (0.0, 0.0)
    inside = counts[i] - below
    if inside <= 0:
        return bounds[i]
    return lower + (bounds[i] - lower) * (rank - below) / inside


def interval_stats_of(current: Totals, base: Totals | None) -> VariantIntervalStats:
    b = base or Totals()
    buckets = {le: n - b.buckets.get(le, 0.0) for le, n in current.buckets.items()}
    p99 = bucket_quantile(0.99, buckets)
    classes = {
        c: int(round(n - b.classes.get(c, 0.0))) for c, n in current.classes.items() if c != ""
    }
    conf = current.confidence_count - b.confidence_count
    low = (current.low_confidence - b.low_confidence) / conf if conf > 0 else None
    return VariantIntervalStats(
        requests=int(round(current.requests - b.requests)),
        errors=int(round(current.errors - b.errors)),
        p99_latency_ms=None if p99 is None else p99 * 1000.0,
        low_confidence_rate=low,
        confidence_count=int(round(conf)) if conf > 0 else 0,
        class_counts={c: n for c, n in classes.items() if n > 0},
        live_accuracy=current.live_accuracy,
        labelled=0,
        max_feature_psi=max(current.feature_psi) if current.feature_psi else None,
    )


class MetricsStatsSource:
    def __init__(
        self,
        metrics: MetricsRegistry,
        *,
        clock: Callable[[], float] = time.time,
        labels: LabelsSource | None = None,
        resolution_s: float = 1.0,
    ) -> None:
        """``labels(model, version, since)`` -> (live accuracy, labelled rows) over the
        interval, when the server keeps label feedback; it enables the accuracy check."""
        self.metrics = metrics
        self.clock = clock
        self.labels = labels
        self.resolution_s = resolution_s
        self._readings: deque[tuple[float, dict[Key, Totals]]] = deque(maxlen=MAX_READINGS)

    async def read(self) -> dict[Key, Totals]:
        now = self.clock()
        if self._readings and now - self._readings[-1][0] < self.resolution_s:
            return self._readings[-1][1]  # the champion and the canary share one reading
        totals = await read_merged_totals(self.metrics)
        self._readings.append((now, totals))
        return totals

    def _base(self, since: float) -> dict[Key, Totals] | None:
        base = None
        for at, totals in self._readings:
            if at > since:
                break
            base = totals
        if base is None and len(self._readings) > 1:
            base = self._readings[0][1]
        return base

    async def interval_stats(self, model: str, version: str, since: float) -> VariantIntervalStats:
        current = await self.read()
        base = self._base(since)
        key = (model, version)
        if base is None:  # the first reading: nothing to subtract yet, so no data
            stats = VariantIntervalStats()
        else:
            stats = interval_stats_of(current.get(key, Totals()), base.get(key))
        if self.labels is not None:
            accuracy, labelled = await self.labels(model, version, since)
            stats = replace(stats, live_accuracy=accuracy, labelled=labelled)
        return stats
