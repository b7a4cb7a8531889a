"""Plain-Python accumulators that are flushed into prometheus_client children as deltas.

Why: every prometheus_client ``inc``/``observe`` takes a ``threading.Lock`` (and under
``PROMETHEUS_MULTIPROC_DIR`` also checks the pid and writes an mmap), and ``observe`` walks
the bucket list in Python. ``benchmarks/metrics_bench.py`` measures that at several µs per
request, against ~0.1 µs for bumping a list slot. So the request path only bumps plain ints
in preallocated lists, and ``flush()`` (a periodic task, and before each scrape) adds what
changed since the last flush to the real children.

Accumulators only ever grow; a flush copies them (one C-level ``list.copy``, atomic under
the GIL) and applies ``copy - last_copy``. Recording may therefore happen on the event
loop while a flush runs in another thread without losing a count: what a flush misses, the
next one applies. Flushes themselves must be serialised (the registry holds a lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram


def check_bulk_histogram(child: Histogram, n_buckets: int) -> None:
    """Fail fast if prometheus_client's Histogram no longer has the parts a bulk add uses.

    There is no public bulk-observe API. A child keeps one value per bucket (``_buckets``,
    non-cumulative, +Inf last) and ``_sum``; exposition accumulates the buckets and derives
    ``_count``. Adding bucket deltas there is exact and costs one ``inc`` per changed bucket
    instead of one ``observe`` (lock, bucket walk, two writes) per recorded value.
    """
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if (
        not isinstance(buckets, list)
        or len(buckets) != n_buckets
        or not all(hasattr(b, "inc") for b in buckets)
        or not hasattr(total, "inc")
    ):
        raise RuntimeError(
            "this prometheus_client version stores histogram buckets differently; "
            "gateway.monitoring.metrics.slots.add_to_histogram needs updating"
        )


def add_to_histogram(child: Histogram, bucket_deltas: Sequence[int], sum_delta: float) -> None:
    """Add per-bucket counts (non-cumulative, +Inf last) and their sum to a histogram child."""
    buckets: list[Any] = child._buckets
    for i, delta in enumerate(bucket_deltas):
        if delta:
            buckets[i].inc(delta)
    if sum_delta:
        child._sum.inc(sum_delta)


class HistogramSlot:
    """Bucket counts and their sum for one histogram child, as one plain list.

    ``data[i]`` counts values ``<= bounds[i]`` and above the previous bound (the +Inf bucket
    is ``data[len(bounds)]``) and ``data[-1]`` is the sum, so a recorder does
    ``data[bisect_left(bounds, v)] += 1; data[-1] += v``. ``bisect_left`` puts a value equal
    to a bound into that bound's bucket, Prometheus's ``le`` (less or equal) semantics.
    ``scale`` converts the recorded unit to the exposed one (1e-9: ns -> s).
    """

    __slots__ = ("bounds", "data", "child", "scale", "_done")

    def __init__(self, child: Histogram, bounds: Sequence[float], scale: float = 1.0) -> None:
        # nanosecond bounds stay exact integers so int durations compare exactly
        self.bounds = [round(b / scale) for b in bounds] if scale != 1.0 else list(bounds)
        self.scale = scale
        self.data: list[Any] = [0] * (len(bounds) + 2)
        self.child = child
        self._done: list[Any] = [0] * (len(bounds) + 2)
        check_bulk_histogram(child, len(bounds) + 1)

    def flush(self) -> None:
        if self.data == self._done:
            return  # idle since the last flush (most versions, when traffic is spread thin)
        snap = self.data.copy()
        done = self._done
        deltas = [now - before for now, before in zip(snap, done, strict=True)]
        if any(deltas[:-1]):
            add_to_histogram(self.child, deltas[:-1], deltas[-1] * self.scale)
        self._done = snap


class CounterSlots:
    """A row of counters (one child each, bound lazily through ``bind``), as one plain list.

    ``data[i] += n`` on the request path; ``flush`` adds deltas to ``children[i]``, binding
    it on first use when it was not bound up front.
    """

    __slots__ = ("data", "children", "bind", "_done")

    def __init__(self, size: int, bind: Any) -> None:
        self.data: list[int] = [0] * size
        self.children: list[Counter | None] = [None] * size
        self.bind = bind  # index -> child (a .labels() call, only ever off the request path)
        self._done = [0] * size

    def prebind(self, index: int) -> None:
        if self.children[index] is None:
            self.children[index] = self.bind(index)

    def flush(self) -> None:
        if self.data == self._done:
            return
        snap = self.data.copy()
        for i, (now, before) in enumerate(zip(snap, self._done, strict=True)):
            if now != before:
                child = self.children[i]
                if child is None:
                    child = self.children[i] = self.bind(i)
                child.inc(now - before)
        self._done = snap


class KeyedCounts:
    """Rare counts keyed by a hashable (error reasons, unusual status codes): a dict."""

    __slots__ = ("data", "children", "bind", "_done")

    def __init__(self, bind: Any) -> None:
        self.data: dict[Any, int] = {}
        self.children: dict[Any, Counter] = {}
        self.bind = bind  # key -> child
        self._done: dict[Any, int] = {}

    def add(self, key: Any, n: int = 1) -> None:
        data = self.data
        data[key] = data.get(key, 0) + n

    def flush(self) -> None:
        snap = self.data.copy()
        done = self._done
        for key, now in snap.items():
            delta = now - done.get(key, 0)
            if delta:
                child = self.children.get(key)
                if child is None:
                    child = self.children[key] = self.bind(key)
                child.inc(delta)
        self._done = snap
