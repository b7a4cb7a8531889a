"""Per-version ring buffers of the last N predictions, with incrementally kept bin counts.

``PredictionWindow.record`` runs on the request path: an index increment, a few stores
into preallocated arrays (item stores for a single row, slices for a batch) and one numba
call that stores the numerical rows and moves their bin counts (rows entering, rows
leaving). No Python loop over rows, no locks, no allocation beyond the views numpy slicing
creates. Call it and ``snapshot`` from the same thread (the event loop); the snapshot is a
copy, so the statistics can then run anywhere.

Times are ``time.monotonic()`` seconds, one reading per call shared by the rows of a batch:
immune to wall-clock jumps, good for spans. ``WindowSnapshot.taken_at`` and
``taken_at_wall`` let a caller map them to wall-clock time.

``snapshot(max_age_s=N)`` bounds the window by time as well as by count: only the rows
recorded in the last ``N`` seconds (``time >= taken_at - N``) of the last ``capacity`` rows.
The bound costs the request path nothing (the time of every row is stored anyway): the
snapshot cuts its chronological copy and recounts the kept numerical rows (one numba pass:
0.3 ms more than a plain snapshot for 3,000 of 10,000 rows of 30 features, measured by
``benchmarks/drift_delay.py``), in the drift cycle or report that asks for it.

With ``probability_columns=k`` the window also keeps every row's class probability vector
(float32, ``k`` per row: 40 KB per class for 10,000 rows), for the multiclass ROC AUC
estimate (``gateway.monitoring.performance_estimate``). Only versions registered with
per-class calibration maps ask for it, and only for at most 20 classes
(``converters.reference.MAX_CLASS_MAPS``); the recorder stores the vectors in its flush,
with the rest of the row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gateway.monitoring.psi_numba import ROW_DTYPES, count_rows, psi_from_counts, ring_update
from gateway.monitoring.reference import Reference, other_code
from gateway.monitoring.stats import PSI_EPS

DEFAULT_CAPACITY = 10_000


def categorical_codes(reference_categories: Sequence[Any]) -> dict[Any, int]:
    """Category -> code (its index in the reference); non-string categories are also
    reachable by their ``str``. Unknown values take ``reference.other_code(categories)``."""
    mapping: dict[Any, int] = {}
    for code, category in enumerate(reference_categories):
        mapping[category] = code
        mapping.setdefault(str(category), code)
    return mapping


def encode_column(mapping: dict[Any, int], other: int, values: Iterable[Any], n: int) -> np.ndarray:
    """Codes of ``n`` values, ``other`` for anything the reference never saw."""
    get = mapping.get
    return np.fromiter((get(v, other) for v in values), dtype=np.int32, count=n)


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """A chronological copy (oldest row first) of the valid part of a window."""

    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    numeric: np.ndarray  # float64 [n, f_num]
    categorical: np.ndarray  # int32 [n, f_cat] codes; len(categories) is "other"
    predictions: np.ndarray  # float64 [n]: class index, or predicted value for regressors
    confidence: np.ndarray  # float64 [n]: top probability, NaN for regressors
    latency_s: np.ndarray  # float64 [n]
    times: np.ndarray  # float64 [n], monotonic seconds
    counts: np.ndarray  # int64 [f_num, bins]: the incremental counts at snapshot time
    missing: np.ndarray  # int64 [f_num]: NaN values in the window
    capacity: int
    recorded_total: int  # rows ever recorded, including those that left the window
    taken_at: float  # monotonic
    taken_at_wall: float  # time.time() at the same instant
    max_age_s: float = 0.0  # the time bound applied (0: the count window only)
    # float32 [n, k] class probabilities (NaN rows: none recorded); None: not kept
    probabilities: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.predictions.shape[0])

    @property
    def time_span_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if self.size else 0.0


class PredictionWindow:
    """The last ``capacity`` predictions of one model version."""

    def __init__(
        self,
        reference: Reference | dict[str, Any] | None,
        *,
        capacity: int = DEFAULT_CAPACITY,
        numeric_features: Sequence[str] | None = None,
        categorical_features: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        probability_columns: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity must be >= 1, got {capacity}")
        if probability_columns < 0:
            raise ValueError(f"probability_columns must be >= 0, got {probability_columns}")
        ref = reference if isinstance(reference, Reference) else Reference.from_dict(reference)
        self.reference = ref
        self.numeric_features = _select(ref.numeric_names, numeric_features, "numerical")
        self.categorical_features = _select(
            ref.categorical_names, categorical_features, "categorical"
        )
        by_name = {spec.name: spec for spec in ref.categorical}
        # (mapping, code for unknown values) per categorical column, for the request codec
        self.category_encoders = tuple(
            (categorical_codes(by_name[name].categories), other_code(by_name[name].categories))
            for name in self.categorical_features
        )
        idx = [ref.numeric_names.index(name) for name in self.numeric_features]
        self._edges = np.ascontiguousarray(ref.edges[idx])
        self._expected = np.ascontiguousarray(ref.expected[idx])
        f_num, f_cat = len(self.numeric_features), len(self.categorical_features)
        self._capacity = capacity
        self._clock = clock
        # never-written slots are NaN rows, counted as missing (see psi_numba.ring_update)
        self._numeric = np.full((capacity, f_num), np.nan)
        self._counts = np.zeros((f_num, self._edges.shape[1] + 2), dtype=np.int64)
        self._counts[:, -1] = capacity
        self._categorical = np.zeros((capacity, f_cat), dtype=np.int32)
        self._predictions = np.zeros(capacity, dtype=np.float64)
        self._confidence = np.zeros(capacity, dtype=np.float64)
        self._latency = np.zeros(capacity, dtype=np.float64)
        self._times = np.zeros(capacity, dtype=np.float64)
        self.probability_columns = probability_columns
        self._probabilities = (
            np.full((capacity, probability_columns), np.nan, dtype=np.float32)
            if probability_columns
            else None
        )
        self._n_numeric = f_num
        self._has_numeric = f_num > 0
        self._has_categorical = f_cat > 0
        self._pos = 0
        self._filled = 0
        self._recorded = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._filled

    def record(
        self,
        numeric: np.ndarray | None,
        categorical: np.ndarray | None,
        predictions: np.ndarray,
        confidence: np.ndarray | None,
        latency_s: float,
        probabilities: np.ndarray | None = None,
    ) -> None:
        """Store ``n`` rows: numeric (n, f_num), codes (n, f_cat), predictions/confidence (n,),
        probabilities (n, probability_columns) when the window keeps them (None: NaN rows).

        Raises ValueError, storing nothing, when the numeric rows or a required input do not
        fit; numpy raises on other shape mismatches.
        """
        start = self._pos
        stop = start + predictions.shape[0]
        if stop > self._capacity:
            self._record_wrapping(
                numeric, categorical, predictions, confidence, latency_s, probabilities
            )
            return
        self._store(
            start, stop, numeric, categorical, predictions, confidence, latency_s, probabilities
        )
        self._pos = stop if stop < self._capacity else 0
        self._recorded += stop - start

    def _record_wrapping(
        self,
        numeric: np.ndarray | None,
        categorical: np.ndarray | None,
        predictions: np.ndarray,
        confidence: np.ndarray | None,
        latency_s: float,
        probabilities: np.ndarray | None,
    ) -> None:
        n = predictions.shape[0]
        for name, rows in (
            ("numeric", numeric),
            ("categorical", categorical),
            ("probability", probabilities),
        ):
            if rows is not None and rows.shape[0] != n:  # before the first segment is stored
                raise ValueError(f"{name} rows must number {n}, got {rows.shape[0]}")
        cap = self._capacity
        first = min(n, cap) - (cap - self._pos)  # rows that go to the front of the ring
        cut = max(0, n - cap)  # only the last ``cap`` rows survive a batch this large
        split = n - first
        for lo, hi, start in ((cut, split, self._pos), (split, n, 0)):
            self._store(
                start,
                start + hi - lo,
                None if numeric is None else numeric[lo:hi],
                None if categorical is None else categorical[lo:hi],
                predictions[lo:hi],
                None if confidence is None else confidence[lo:hi],
                latency_s,
                None if probabilities is None else probabilities[lo:hi],
            )
        self._pos = first if first < cap else 0
        self._recorded += n

    def _store(
        self,
        start: int,
        stop: int,
        numeric: np.ndarray | None,
        categorical: np.ndarray | None,
        predictions: np.ndarray,
        confidence: np.ndarray | None,
        latency_s: float,
        probabilities: np.ndarray | None = None,
    ) -> None:
        kept = self._probabilities
        if kept is not None and probabilities is not None:
            if probabilities.shape != (stop - start, kept.shape[1]):  # before any store
                raise ValueError(
                    f"probabilities must have shape {(stop - start, kept.shape[1])}, "
                    f"got {probabilities.shape}"
                )
        if self._has_numeric:  # checked first: a bad call stores nothing
            if numeric is None:
                raise ValueError("this window has numerical features: pass their rows")
            if numeric.shape != (stop - start, self._n_numeric):
                raise ValueError(
                    f"numeric rows must have shape {(stop - start, self._n_numeric)}, "
                    f"got {numeric.shape}"
                )
            if numeric.dtype not in ROW_DTYPES or not numeric.flags.aligned:
                numeric = numeric.astype(np.float64)  # keep to the warmed-up kernel types
        if self._has_categorical and categorical is None:
            raise ValueError("this window has categorical features: pass their codes")
        # ``and ... is not None`` only narrows the type: a missing array has raised above
        if stop - start == 1:  # the usual single-row call: item stores cost a third of slices
            if self._has_categorical and categorical is not None:
                self._categorical[start] = categorical[0]
            self._predictions[start] = predictions[0]
            self._confidence[start] = np.nan if confidence is None else confidence[0]
            self._latency[start] = latency_s
            self._times[start] = self._clock()
        else:
            if self._has_categorical and categorical is not None:
                self._categorical[start:stop] = categorical
            self._predictions[start:stop] = predictions
            self._confidence[start:stop] = np.nan if confidence is None else confidence
            self._latency[start:stop] = latency_s
            self._times[start:stop] = self._clock()
        if kept is not None:  # a slice store per flush, not per request
            kept[start:stop] = np.nan if probabilities is None else probabilities
        if self._has_numeric and numeric is not None:
            ring_update(self._numeric, numeric, start, self._edges, self._counts)
        if stop > self._filled:
            self._filled = stop

    def feature_psi(self) -> np.ndarray:
        """PSI of every numerical feature from the live counts (cheap: for gauges)."""
        return psi_from_counts(self._counts, self._expected, PSI_EPS)

    def snapshot(self, max_age_s: float = 0.0) -> WindowSnapshot:
        """Copy the valid rows, oldest first, with the counts of the same instant; with
        ``max_age_s > 0`` only the rows recorded in the last ``max_age_s`` seconds."""
        if not max_age_s >= 0:
            raise ValueError(f"max_age_s must be >= 0, got {max_age_s}")
        snap = self._snapshot()
        return snap if max_age_s == 0 else self._bounded(snap, max_age_s)

    def _bounded(self, snap: WindowSnapshot, max_age_s: float) -> WindowSnapshot:
        """``snap`` without the rows older than ``max_age_s`` (times are non-decreasing)."""
        first = int(np.searchsorted(snap.times, snap.taken_at - max_age_s, side="left"))
        if first == 0:
            return replace(snap, max_age_s=max_age_s)
        numeric = snap.numeric[first:]
        counts = np.zeros_like(self._counts)
        count_rows(numeric, self._edges, counts, 1)
        return replace(
            snap,
            numeric=numeric,
            categorical=snap.categorical[first:],
            predictions=snap.predictions[first:],
            confidence=snap.confidence[first:],
            latency_s=snap.latency_s[first:],
            times=snap.times[first:],
            probabilities=None if snap.probabilities is None else snap.probabilities[first:],
            counts=counts[:, :-1],
            missing=counts[:, -1],
            max_age_s=max_age_s,
        )

    def _snapshot(self) -> WindowSnapshot:
        n, pos = self._filled, self._pos
        if n < self._capacity:
            order: slice | np.ndarray = slice(0, n)
        else:
            order = np.concatenate((np.arange(pos, n), np.arange(0, pos)))

        def take(buf: np.ndarray) -> np.ndarray:
            return buf[order].copy() if isinstance(order, slice) else buf[order]

        return WindowSnapshot(
            numeric_features=self.numeric_features,
            categorical_features=self.categorical_features,
            numeric=take(self._numeric),
            categorical=take(self._categorical),
            predictions=take(self._predictions),
            confidence=take(self._confidence),
            latency_s=take(self._latency),
            times=take(self._times),
            counts=self._counts[:, :-1].copy(),
            missing=self._counts[:, -1] - (self._capacity - n),
            capacity=self._capacity,
            recorded_total=self._recorded,
            taken_at=self._clock(),
            taken_at_wall=time.time(),
            probabilities=None if self._probabilities is None else take(self._probabilities),
        )


def _select(available: tuple[str, ...], wanted: Sequence[str] | None, kind: str) -> tuple[str, ...]:
    if wanted is None:
        return available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(f"no {kind} reference for feature(s): {', '.join(unknown)}")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{kind} features repeat a name")
    return tuple(wanted)
