"""``VariantRecorder``: the monitoring of one loaded version, bound on ``Variant.recorder``.

Request path (``record``, on the event loop): the version's metric slots of a successful
request (``VariantMetrics.success_slots``: list-slot increments) and one tuple appended to
a pending list. That is all
a successful request pays; the rest happens in bulk in ``flush``, every
``FLUSH_REQUESTS`` requests and on the monitoring tick (and before a scrape, a report or a
feedback lookup, so those see every answered request).

Row-level work is done per onnxruntime call, not per request: ``timed_run`` wraps the
runner the batcher calls and hands (feeds, outputs, nanoseconds) of every call to a deque
(``deque.append`` is atomic, so the batcher's worker thread may call it). With adaptive
batching those are the merged arrays of many requests, so ``flush`` concatenates a few
batch arrays instead of one small array per request (measured: ~0.65 µs per request and
per output, the largest cost of recording). From them:

* batch size and inference duration (``record_batch``);
* predicted class indexes (or values) and top-class probabilities ->
  ``VariantMetrics.record_predictions`` (class counts, confidence, low confidence);
* the drift window (``PredictionWindow.record``): the numerical features as one matrix
  (the input tensor itself when the model takes one numeric input in schema order), the
  categorical features as codes of the window's encoders, and the class probability
  vectors when the window keeps them (multiclass ROC AUC estimate).

So rows are counted as inferred: a shadow version's rows are those mirrored to it, and a
request whose client left after the inference still counts. From the pending requests:
their latencies (a ring of this recorder's: health percentiles and error rates are per
request) and the feedback table (request id -> version, predicted class or value).

A flush that fails (an output of an unexpected shape) is logged once and skipped: it
never reaches the request that triggered it.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any

import numpy as np

from gateway.dataplane.feedback.store import ModelFeedback
from gateway.dataplane.runner import Feeds, Outputs
from gateway.dataplane.snapshot import Variant
from gateway.monitoring.metrics.families import ROUTE_SHADOW
from gateway.monitoring.metrics.variant import VariantMetrics
from gateway.monitoring.performance_estimate import Calibration
from gateway.monitoring.reconstruction import ReconstructionModel
from gateway.monitoring.window import PredictionWindow, encode_column

logger = logging.getLogger("modelgate.monitoring")

# pending requests that trigger a flush. A flush holds the loop (~7 ms for 1,024 requests on
# the 2-core benchmark machine), and whatever request waits behind it takes that on its
# latency: at 1,024 the p99 at 1 connection was ~6 ms against a 0.4 ms median; at 128 it is
# ~2 ms, with throughput at 64 connections no lower.
FLUSH_REQUESTS = 128
BATCH_BACKLOG = 65_536  # batch timings kept between two flushes at most

# request id, prediction (a scalar, or the output array of a multi-row request), rows, ns
Pending = tuple[str, Any, int, int]
Inference = tuple[Feeds, Outputs, int]  # one runner call: feeds, outputs, elapsed ns


class StampClock:
    """The drift window's clock: while a flush records, the time the oldest of its
    requests arrived (so window times, request latencies and error times line up),
    else ``time.monotonic()``."""

    __slots__ = ("stamp",)

    def __init__(self) -> None:
        self.stamp: float | None = None

    def __call__(self) -> float:
        stamp = self.stamp
        return time.monotonic() if stamp is None else stamp


def timed_run(
    run: Callable[[Feeds], Outputs], sink: deque[Inference]
) -> Callable[[Feeds], Outputs]:
    """``run`` that hands (feeds, outputs, nanoseconds) of every successful call to
    ``sink``; the batcher's worker thread may call it."""

    def run_timed(feeds: Feeds) -> Outputs:
        start = perf_counter_ns()
        outputs = run(feeds)
        sink.append((feeds, outputs, perf_counter_ns() - start))
        return outputs

    return run_timed


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _row_max(values: np.ndarray) -> np.ndarray:
    """The largest value of each row of a 2-D array (NaN if the row has one). Few columns go
    column by column: numpy's ``max(axis=1)`` over 2 values a row is ~100x slower than one
    ``np.maximum`` of the two columns (17 ms against 0.14 ms for 128,000 rows)."""
    if values.shape[1] > 16 or values.shape[1] < 2:
        return values.max(axis=1)
    out = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        np.maximum(out, values[:, j], out=out)
    return out


def _category_text(values: np.ndarray) -> list[Any]:
    """Values of a categorical column as the reference stores them (strings)."""
    if values.dtype.kind == "O":
        return values.tolist()
    if values.dtype.kind == "f":
        return [str(int(v)) if v.is_integer() else str(v) for v in values.tolist()]
    return [str(v) for v in values.tolist()]


class VariantRecorder:
    """The ``Recorder`` of one loaded version (see the module docstring)."""

    def __init__(
        self,
        variant: Variant,
        vm: VariantMetrics,
        window: PredictionWindow | None,
        feedback: ModelFeedback | None,
        feedback_tag: int,
        *,
        capacity: int,
        stamps: StampClock | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        sig = variant.signature
        self.model, self.version, self.signature = variant.model, variant.version, sig
        self.vm = vm
        self.window = window
        self.feedback = feedback
        self.feedback_tag = feedback_tag
        self.classification = sig.task == "classification"
        self.batches: deque[Inference] = deque(maxlen=BATCH_BACKLOG)
        # the request-path slots of ``vm.record_request`` for a 200, bumped here directly
        self._ok_counts, self._req_data, self._req_bounds = vm.success_slots()
        self._pending: list[Pending] = []
        self._clock, self._wall = clock, wall
        self._stamps = stamps if stamps is not None else StampClock()  # the window's clock
        self._first_at = 0.0  # arrival (monotonic) of the oldest pending request
        self._multi_rows = False  # a pending request has several rows (or odd outputs)
        self._failed = False
        # outputs
        self._pred_name = sig.prediction_output
        self._prob_name = sig.probability_output if self.classification else None
        classes = sig.classes
        self._identity = all(
            type(c) is int and c == i for i, c in enumerate(classes)
        )  # labels are their own index
        self._class_index: dict[Any, int] = {}
        for i, c in enumerate(classes):
            self._class_index.setdefault(c, i)
            self._class_index.setdefault(str(c), i)
        # inputs the window wants, in the window's feature order
        numeric = window.numeric_features if window is not None else ()
        categorical = window.categorical_features if window is not None else ()
        # one numeric input holding every feature in schema order: the tensor is the matrix
        fast = sig.single_numeric and tuple(numeric) == sig.features
        self._fast_input = sig.inputs[0].name if fast else None
        num_locs = dict(zip(sig.numeric_features, sig.numeric_locs, strict=True))
        cat_locs = dict(zip(sig.categorical_features, sig.categorical_locs, strict=True))
        self._numeric_locs = [] if fast else [num_locs[f] for f in numeric]
        self._categorical_locs = [cat_locs[f] for f in categorical]
        self._encoders = window.category_encoders if window is not None else ()
        self._inputs = sorted({name for name, _ in self._numeric_locs + self._categorical_locs})
        self._first_input = sig.inputs[0].name
        self._latency_s = 0.0  # mean latency of the last flushed requests (window column)
        # per-request latencies (seconds), stamped like the window rows of their flush
        self._latency = np.zeros(capacity)
        self._latency_at = np.zeros(capacity)
        self._pos = self._filled = 0
        self.requests = 0  # successful requests flushed
        self.rows = 0  # rows inferred and recorded
        self.server_errors: deque[float] = deque(maxlen=capacity)  # 5xx, monotonic times
        self.input_errors: deque[float] = deque(maxlen=capacity)  # 4xx
        # the drift timer's bookkeeping: warning rate limit, what the gauges last saw
        self.last_warned = -float("inf")
        self.gauge_rows = self.gauge_labels = -1
        # label-free monitors from the stored reference (None: not available for it)
        self.reconstruction: ReconstructionModel | None = None
        self.calibration: Calibration | None = None

    # --- request path ----------------------------------------------------------------------

    def record(
        self,
        rule: int,
        request_id: str,
        feeds: Feeds,
        outputs: Outputs,
        n_rows: int,
        elapsed_ns: int,
    ) -> None:
        # vm.record_request(rule, 200, elapsed_ns), without the call and the status test
        self._ok_counts[rule] += 1
        data = self._req_data
        data[bisect_left(self._req_bounds, elapsed_ns)] += 1
        data[-1] += elapsed_ns
        pending = self._pending
        if not pending:
            self._first_at = self._clock()
        # the prediction as a Python scalar (one row), so no request object outlives the
        # request (measured: keeping them until the flush slowed every request down)
        value = outputs[self._pred_name]
        if n_rows == 1 and value.size == 1:
            value = value.item()
        else:
            self._multi_rows = True
        pending.append((request_id, value, n_rows, elapsed_ns))
        if len(pending) >= FLUSH_REQUESTS:
            self.flush()

    def record_shadow(self, status: int) -> None:
        """A mirrored copy this version ran (``status`` 200) or failed on (500), counted under
        route "shadow". Its rows are recorded with the inference (``timed_run``); it feeds no
        request duration, health latency or feedback entry: the primary answered the client."""
        self.vm.count_request(ROUTE_SHADOW, status)

    def record_error(self, rule: int, status: int, reason: str, elapsed_ns: int) -> None:
        vm = self.vm
        vm.record_request(rule, status, elapsed_ns)
        if status < 500:
            vm.record_input_error(reason)
            self.input_errors.append(self._clock())
        else:
            self.server_errors.append(self._clock())

    # --- bulk work -------------------------------------------------------------------------

    def flush(self) -> None:
        """Move the pending requests and inferences into metrics, window and feedback."""
        pending, batches = self._pending, self.batches
        if not pending and not batches:
            return
        stamps = self._stamps
        # window rows carry the arrival of the oldest pending request (see StampClock)
        stamps.stamp = self._first_at if pending else self._clock()
        try:
            if pending:
                self._flush_requests(pending)
            if batches:
                taken = [batches.popleft() for _ in range(len(batches))]
                self._flush_inferences(taken)
        except Exception:
            if not self._failed:
                self._failed = True
                logger.exception("monitoring %s %s: recording failed", self.model, self.version)
        finally:
            stamps.stamp = None
            pending.clear()

    def _flush_requests(self, pending: list[Pending]) -> None:
        # one C-level transposition instead of a Python loop per column (cold caches:
        # this runs once per FLUSH_REQUESTS requests, in the middle of serving)
        ids, values, counts, elapsed = zip(*pending, strict=True)
        n_requests = len(ids)
        latency = np.array(elapsed, dtype=np.float64) * 1e-9
        self.requests += n_requests
        self._store_latencies(latency, self._first_at)
        self._latency_s = float(latency.mean())
        if self.feedback is None:
            return
        predicted: Any = values
        if self._multi_rows:  # some request had several rows: one prediction per row
            self._multi_rows = False
            # arrays joined as arrays: a Python float per row cost ~17 ms per flush of
            # 128 requests of 1,000 rows (benchmarks/big_batch.py)
            parts = [
                value.reshape(n_rows, -1)[:, 0] if isinstance(value, np.ndarray) else [value]
                for value, n_rows in zip(values, counts, strict=True)
            ]
            predicted = np.concatenate(parts)
        if self.classification and not self._identity:
            get = self._class_index.get
            labels = predicted.tolist() if isinstance(predicted, np.ndarray) else predicted
            predicted = tuple([get(v, -1) for v in labels])
        preds = np.asarray(predicted, dtype=np.float64)
        keys, rows = self.feedback.row_keys(ids, counts)
        # stamped with the wall time the oldest of them arrived, never later than any of
        # them was served (an outcome of a request served before an experiment started
        # must not count in it)
        served_at = self._wall() - max(0.0, self._clock() - self._first_at)
        self.feedback.remember(self.feedback_tag, keys, preds, rows, served_at)

    def _flush_inferences(self, taken: list[Inference]) -> None:
        first, vm = self._first_input, self.vm
        total = 0
        for feeds, _outputs, ns in taken:
            rows = feeds[first].shape[0]
            vm.record_batch(rows, ns)
            total += rows
        self.rows += total
        preds, class_index, confidence, probs = self._predictions([t[1] for t in taken], total)
        vm.record_predictions(total, class_index, confidence)
        window = self.window
        if window is None:
            return
        width = window.probability_columns
        if probs is not None and probs.shape[1] != width:
            probs = None  # not kept, or not the registered class count: NaN rows
        feeds_list = [t[0] for t in taken]
        merged = {name: _concat([f[name] for f in feeds_list]) for name in self._inputs}
        if self._fast_input is not None:
            numeric: np.ndarray | None = _concat([f[self._fast_input] for f in feeds_list])
        elif self._numeric_locs:
            columns = [merged[name][:, col] for name, col in self._numeric_locs]
            numeric = np.column_stack(columns).astype(np.float64)
        else:
            numeric = None
        window.record(
            numeric, self._codes(merged, total), preds, confidence, self._latency_s, probs
        )

    def _predictions(
        self, outputs: list[Outputs], total: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(prediction per row as float64, class index or None, confidence or None, class
        probabilities [total, k] or None)."""
        values = _concat([o[self._pred_name] for o in outputs]).reshape(-1)
        if values.shape[0] != total:
            raise ValueError(f"output {self._pred_name!r} has {values.shape[0]} rows, not {total}")
        if not self.classification:
            return values.astype(np.float64), None, None, None
        if self._identity and values.dtype.kind in "iu":
            index = values.astype(np.int64)
        else:
            get = self._class_index.get
            index = np.fromiter((get(v, -1) for v in values.tolist()), np.int64, total)
        confidence = probabilities = None
        if self._prob_name is not None:
            probs = _concat([o[self._prob_name] for o in outputs])
            if probs.ndim == 2 and probs.shape[0] == total:
                confidence = _row_max(probs).astype(np.float64)
                probabilities = probs
        return index.astype(np.float64), index, confidence, probabilities

    def _codes(self, merged: dict[str, np.ndarray], total: int) -> np.ndarray | None:
        if not self._categorical_locs:
            return None
        codes = np.empty((total, len(self._categorical_locs)), dtype=np.int32)
        for j, ((name, col), (mapping, other)) in enumerate(
            zip(self._categorical_locs, self._encoders, strict=True)
        ):
            codes[:, j] = encode_column(mapping, other, _category_text(merged[name][:, col]), total)
        return codes

    def _store_latencies(self, latency: np.ndarray, now: float) -> None:
        cap = self._latency.size
        if latency.size > cap:
            latency = latency[-cap:]
        n, pos = latency.size, self._pos
        first = min(n, cap - pos)
        self._latency[pos : pos + first] = latency[:first]
        self._latency_at[pos : pos + first] = now
        if first < n:
            self._latency[: n - first] = latency[first:]
            self._latency_at[: n - first] = now
        self._pos = (pos + n) % cap
        self._filled = min(cap, self._filled + n)

    # --- reports (off the request path, on the loop) ---------------------------------------

    def inference_totals(self) -> tuple[int, int]:
        """(onnxruntime calls, total nanoseconds) of this version, every call so far included
        (flushes first; the statistics extension's ``compute_infer``)."""
        self.flush()
        return self.vm.inference_totals()

    def request_stats(self, since: float) -> tuple[np.ndarray, int, int, int]:
        """(latencies in s, successful requests, 5xx, 4xx) recorded at or after ``since``
        (monotonic seconds)."""
        recent = self._latency_at[: self._filled] >= since
        latencies = self._latency[: self._filled][recent]
        server = sum(1 for at in self.server_errors if at >= since)
        client = sum(1 for at in self.input_errors if at >= since)
        return latencies, int(latencies.size), server, client


def feature_lists(
    numeric: Sequence[str], categorical: Sequence[str], reference: Any
) -> tuple[list[str], list[str]]:
    """The model's features that have a reference distribution, by kind."""
    return (
        [f for f in numeric if f in reference.numeric_names],
        [f for f in categorical if f in reference.categorical_names],
    )
