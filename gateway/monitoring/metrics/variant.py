"""``VariantMetrics``: the metric slots of one loaded (model, version), bound at load time.

The recording methods are the request path's whole metrics cost: list-slot increments and a
``bisect`` per histogram, no lock, no ``.labels()``, no prometheus_client call. What they
accumulate reaches Prometheus on ``flush()`` (see ``metrics.slots``). The gauges
(``set_*``) are written by off-path timers and go straight to their children.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from gateway.monitoring.metrics.families import (
    BATCH_BUCKETS,
    CLIENT_ROUTES,
    CONFIDENCE_BUCKETS,
    DURATION_BUCKETS,
    ROUTE_STICKY,
    ROUTE_WEIGHTED,
    ROUTES,
    MetricFamilies,
)
from gateway.monitoring.metrics.slots import CounterSlots, HistogramSlot, KeyedCounts

DEFAULT_LOW_CONFIDENCE = 0.6  # docs/lifecycle.md, "Health": low-confidence threshold
UNKNOWN_CLASS = "unknown"  # a class index outside the schema's classes ("_unknown", ... if taken)
# from this many rows on, numpy beats a Python loop over the rows (metrics_bench.py)
NUMPY_ROWS = 64


class VariantMetrics:
    """Metric slots of one (model, version). Create through ``MetricsRegistry.bind_variant``.

    Request path (event loop, one thread):
      ``record_request(route, code, elapsed_ns)``  per request that reached this version
      ``record_batch(n_rows, inference_ns)``        per onnxruntime call
      ``record_predictions(n_rows, class_index, confidence)``  per successful request
      ``record_input_error(reason)``, ``record_shadow_dropped(n)``
    Off path: ``set_prediction_psi``, ``set_feature_psi``, ``set_shadow_agreement``,
    ``set_live_accuracy``, ``set_traffic_weight``, ``set_loaded``, ``flush`` and
    ``inference_totals``.
    """

    __slots__ = (
        "model",
        "version",
        "classes",
        "low_confidence_threshold",
        "refs",
        # request path: plain lists (mutated in place, never replaced) and their bounds
        "_ok_counts",
        "_req_data",
        "_req_bounds",
        "_inf_data",
        "_inf_bounds",
        "_batch_data",
        "_batch_bounds",
        "_conf_data",
        "_conf_bounds",
        "_conf_bounds_np",
        "_class_counts",
        "_n_classes",
        # flush side: the slots that own those lists, and the children
        "_ok",
        "_codes",
        "_req",
        "_inf",
        "_batch",
        "_conf",
        "_classes",
        "_class_labels",
        "_low",
        "_low_done",
        "_dropped",
        "_dropped_done",
        "_errors",
        "_families",
        "_low_child",
        "_dropped_child",
        "_gauges",
        "_features",
    )

    def __init__(
        self,
        families: MetricFamilies,
        model: str,
        version: str,
        classes: Sequence[Any] = (),
        *,
        input_error_child: Callable[[str], Counter],
        prebind_routes: Sequence[int] = CLIENT_ROUTES,
        low_confidence_threshold: float = DEFAULT_LOW_CONFIDENCE,
    ) -> None:
        f = families
        self.model = model
        self.version = version
        self.classes: tuple[str, ...] = tuple(str(c) for c in classes)
        self.low_confidence_threshold = float(low_confidence_threshold)
        self.refs = 1  # bind_variant calls not yet matched by unbind_variant
        self._families = f
        self._ok = CounterSlots(
            len(ROUTES), lambda i: f.requests.labels(model, version, ROUTES[i], "200")
        )
        for route in prebind_routes:
            self._ok.prebind(route)
        self._codes = KeyedCounts(
            lambda key: f.requests.labels(model, version, ROUTES[key // 1000], str(key % 1000))
        )
        self._req = HistogramSlot(f.request_duration.labels(model, version), DURATION_BUCKETS, 1e-9)
        self._inf = HistogramSlot(
            f.inference_duration.labels(model, version), DURATION_BUCKETS, 1e-9
        )
        self._batch = HistogramSlot(f.batch_size.labels(model, version), BATCH_BUCKETS)
        self._conf = HistogramSlot(f.confidence.labels(model, version), CONFIDENCE_BUCKETS)
        self._ok_counts = self._ok.data
        self._req_data, self._req_bounds = self._req.data, self._req.bounds
        self._inf_data, self._inf_bounds = self._inf.data, self._inf.bounds
        self._batch_data, self._batch_bounds = self._batch.data, self._batch.bounds
        self._conf_data, self._conf_bounds = self._conf.data, self._conf.bounds
        self._conf_bounds_np = np.asarray(CONFIDENCE_BUCKETS, dtype=np.float64)
        # one slot per schema class (one "" slot for a regressor), then "unknown"
        names = self.classes or ("",)
        self._n_classes = len(self.classes)
        unknown = UNKNOWN_CLASS
        while unknown in names:  # a schema class may be called "unknown"
            unknown = "_" + unknown
        labels = self._class_labels = (*names, unknown) if self.classes else names
        self._classes = CounterSlots(
            len(labels), lambda i: f.predictions.labels(model, version, labels[i])
        )
        self._class_counts = self._classes.data
        for i in range(len(names)):
            self._classes.prebind(i)
        self._low_child = f.low_confidence.labels(model, version)
        self._low = self._low_done = 0
        self._dropped_child: Counter | None = None
        self._dropped = self._dropped_done = 0
        self._errors = KeyedCounts(input_error_child)
        # gauges written off-path; bound when first set (a 0 before any data would lie)
        self._gauges: dict[str, Gauge] = {}
        self._features: dict[str, Gauge] = {}

    # ---- request path -------------------------------------------------------------------

    def success_slots(self) -> tuple[list[int], list[Any], list[Any]]:
        """The lists ``record_request(route, 200, ns)`` bumps, for a caller that inlines it:
        ``ok[route] += 1; data[bisect_left(bounds, ns)] += 1; data[-1] += ns``."""
        return self._ok_counts, self._req_data, self._req_bounds

    def record_request(self, route: int, code: int, elapsed_ns: int) -> None:
        """One request routed here by rule ``route`` (``ROUTE_*``), answered with ``code``."""
        if code == 200:
            self._ok_counts[route] += 1
        else:
            self._codes.add(route * 1000 + code)
        data = self._req_data
        data[bisect_left(self._req_bounds, elapsed_ns)] += 1
        data[-1] += elapsed_ns

    def count_request(self, route: int, code: int) -> None:
        """A request counted without a client-facing duration (a shadow copy)."""
        if code == 200:
            self._ok_counts[route] += 1
        else:
            self._codes.add(route * 1000 + code)

    def assigned_requests(self) -> int:
        """Requests the sticky or weighted routing sent here so far, answered or failed
        (an experiment's assignments; off the request path: reads the accumulators)."""
        ok = self._ok_counts[ROUTE_STICKY] + self._ok_counts[ROUTE_WEIGHTED]
        failed = sum(
            n
            for key, n in self._codes.data.copy().items()
            if key // 1000 in (ROUTE_STICKY, ROUTE_WEIGHTED)
        )
        return ok + failed

    def record_batch(self, n_rows: int, inference_ns: int) -> None:
        """One onnxruntime call of ``n_rows`` rows that took ``inference_ns``."""
        data = self._inf_data
        data[bisect_left(self._inf_bounds, inference_ns)] += 1
        data[-1] += inference_ns
        data = self._batch_data
        data[bisect_left(self._batch_bounds, n_rows)] += 1
        data[-1] += n_rows

    def record_predictions(
        self,
        n_rows: int,
        class_index: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
    ) -> None:
        """``n_rows`` predictions: 1-D arrays of class indexes into the schema's classes
        (None for a regressor) and of top-class probabilities (None when the model has none;
        NaNs are skipped). One row costs two ``.item()`` calls, a bisect and a few adds."""
        if n_rows == 1:
            if class_index is None:
                self._class_counts[0] += 1
            else:
                c = int(class_index.item())  # .item(): no numpy scalar in between
                self._class_counts[c if 0 <= c < self._n_classes else self._n_classes] += 1
            if confidence is not None:
                x = float(confidence.item())
                if x == x:  # not NaN
                    data = self._conf_data
                    data[bisect_left(self._conf_bounds, x)] += 1
                    data[-1] += x
                    if x < self.low_confidence_threshold:
                        self._low += 1
            return
        if class_index is None:
            self._class_counts[0] += n_rows
        elif n_rows < NUMPY_ROWS:
            counts, k = self._class_counts, self._n_classes
            for c in class_index.tolist():
                c = int(c)
                counts[c if 0 <= c < k else k] += 1
        else:
            self._count_classes(class_index)
        if confidence is None:
            return
        if n_rows < NUMPY_ROWS:
            data, bounds, low = self._conf_data, self._conf_bounds, self.low_confidence_threshold
            for x in confidence.tolist():
                if x == x:
                    data[bisect_left(bounds, x)] += 1
                    data[-1] += x
                    if x < low:
                        self._low += 1
        else:
            self._count_confidence(confidence)

    def record_input_error(self, reason: str) -> None:
        """A request routed here refused as bad input: a 4xx ``GatewayError.reason`` (5xx
        failures are not input errors; they show in ``requests_total{code}``)."""
        self._errors.add(reason)

    def record_shadow_dropped(self, n: int = 1) -> None:
        self._dropped += n

    def _count_classes(self, class_index: np.ndarray) -> None:
        k = self._n_classes
        idx = np.asarray(class_index).astype(np.intp, copy=False)
        try:
            counted = np.bincount(idx, minlength=k + 1).tolist()
        except ValueError:  # negative indexes: "unknown" like any other out-of-range one
            counted = np.bincount(np.where(idx >= 0, idx, k), minlength=k + 1).tolist()
        if len(counted) > k + 1:  # indexes past the schema's classes
            counted[k] = sum(counted[k:])
        counts = self._class_counts
        for i in range(k + 1):
            if counted[i]:
                counts[i] += counted[i]

    def _count_confidence(self, confidence: np.ndarray) -> None:
        conf = np.asarray(confidence, dtype=np.float64)
        total = float(conf.sum())
        if total != total:  # NaNs: skip them (the rare path)
            conf = conf[~np.isnan(conf)]
            total = float(conf.sum())
        bounds = self._conf_bounds_np
        where = np.searchsorted(bounds, conf, side="left")  # the same buckets as bisect_left
        data = self._conf_data
        for i, n in enumerate(np.bincount(where, minlength=bounds.size + 1).tolist()):
            if n:
                data[i] += n
        data[-1] += total
        self._low += int(np.count_nonzero(conf < self.low_confidence_threshold))

    # ---- off path -----------------------------------------------------------------------

    def inference_totals(self) -> tuple[int, int]:
        """(onnxruntime calls, their total nanoseconds) recorded so far, flushed or not."""
        data = self._inf_data
        return sum(data[:-1]), int(data[-1])

    def flush(self) -> None:
        """Apply what was recorded since the last flush to the prometheus children."""
        self._ok.flush()
        self._codes.flush()
        self._req.flush()
        self._inf.flush()
        self._batch.flush()
        self._conf.flush()
        self._classes.flush()
        self._errors.flush()
        low = self._low
        if low != self._low_done:
            self._low_child.inc(low - self._low_done)
            self._low_done = low
        dropped = self._dropped
        if dropped != self._dropped_done:
            if self._dropped_child is None:
                self._dropped_child = self._families.shadow_dropped.labels(self.model, self.version)
            self._dropped_child.inc(dropped - self._dropped_done)
            self._dropped_done = dropped

    def _gauge(self, name: str) -> Gauge:
        """The child of the (model, version) gauge family ``MetricFamilies.<name>``."""
        child = self._gauges.get(name)
        if child is None:
            family: Gauge = getattr(self._families, name)
            child = self._gauges[name] = family.labels(self.model, self.version)
        return child

    def set_loaded(self, loaded: bool) -> None:
        self._gauge("model_loaded").set(1.0 if loaded else 0.0)

    def set_traffic_weight(self, weight: float) -> None:
        """Percent of weighted traffic (0..100), as in the traffic API."""
        self._gauge("traffic_weight").set(weight)

    def set_prediction_psi(self, value: float) -> None:
        self._gauge("prediction_psi").set(value)

    def set_shadow_agreement(self, ratio: float) -> None:
        self._gauge("shadow_agreement").set(ratio)

    def set_live_accuracy(self, accuracy: float) -> None:
        self._gauge("live_accuracy").set(accuracy)

    def set_multivariate_error(self, error: float, lower: float, upper: float) -> None:
        self._gauge("multivariate_drift_error").set(error)
        self._gauge("multivariate_drift_lower").set(lower)
        self._gauge("multivariate_drift_upper").set(upper)

    def set_estimated_accuracy(self, accuracy: float) -> None:
        self._gauge("estimated_accuracy").set(accuracy)

    def set_estimated_roc_auc(self, auc: float) -> None:
        self._gauge("estimated_roc_auc").set(auc)

    def set_feature_psi(self, feature: str, value: float) -> None:
        child = self._features.get(feature)
        if child is None:
            child = self._features[feature] = self._families.feature_psi.labels(
                self.model, self.version, feature
            )
        child.set(value)

    def retire(self, multiprocess: bool) -> None:
        """The version is unloaded: flush, then drop its series (see the prometheus module)."""
        self.flush()
        f, key = self._families, (self.model, self.version)
        if multiprocess:
            # series cannot leave the mmap files: leave final values that read as "gone"
            self.set_loaded(False)
            self.set_traffic_weight(0.0)
            for name, child in self._gauges.items():
                if name not in ("model_loaded", "traffic_weight"):
                    child.set(math.nan)
            for child in self._features.values():
                child.set(math.nan)
            return
        for family in (f.request_duration, f.inference_duration, f.batch_size, f.confidence):
            family.remove(*key)
        f.low_confidence.remove(*key)
        if self._dropped_child is not None:
            f.shadow_dropped.remove(*key)
        for i, ok_child in enumerate(self._ok.children):
            if ok_child is not None:
                f.requests.remove(*key, ROUTES[i], "200")
        for code_key in self._codes.children:
            f.requests.remove(*key, ROUTES[code_key // 1000], str(code_key % 1000))
        for i, class_child in enumerate(self._classes.children):
            if class_child is not None:
                f.predictions.remove(*key, self._class_labels[i])
        for name in self._gauges:
            gauge: Gauge = getattr(f, name)
            gauge.remove(*key)
        for feature in self._features:
            f.feature_psi.remove(*key, feature)
