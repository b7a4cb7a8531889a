"""The two fixed-size tables behind label feedback, private or shared between processes.

Both are rings of numpy records with an append count in a 64-byte header, in a private
array or, with a ``directory``, in a memory-mapped file every worker process opens (the
first one creates it; ``ftruncate`` to the same size is harmless for the others).
Appends hold an exclusive ``flock`` on a lock file beside it when shared, and write the
entries before publishing the new count; readers take no lock.

* ``PredictionRing`` -- the last ``capacity`` predicted rows, oldest overwritten first
  (exact FIFO: every row among the last ``capacity`` is found). Lookups go through a
  dict ``key -> position`` that each process builds lazily from the ring (``catch_up``,
  a Python loop over the rows appended since its previous lookup, whoever wrote them),
  so the request path never pays for indexing; a found position is verified against the
  ring's key, since a newer row may have replaced it meanwhile.
* ``OutcomeRing`` -- labelled predictions, for live accuracy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HEADER_BYTES = 64  # the append count lives in the first 8
ENTRY = np.dtype(
    [
        ("key", "<u8"),
        ("time", "<f8"),
        ("pred", "<f8"),
        ("version", "<u4"),
        ("rows", "<u2"),
        ("done", "<u2"),
    ]
)
OUTCOME = np.dtype(
    [
        ("pred_time", "<f8"),
        ("label_time", "<f8"),
        ("pred", "<f8"),
        ("label", "<f8"),
        ("version", "<u4"),
        ("pad", "<u4"),
    ]
)
ROW_STEP = np.uint64(0x9E3779B97F4A7C15)  # row i of a request: the id's key + i * ROW_STEP


def allocate(directory: Path | None, name: str, size: int) -> Any:
    """``size`` zeroed bytes: a private array, or the shared file ``directory/name``."""
    if directory is None:
        return np.zeros(size, dtype=np.uint8)
    path = directory / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))


class _Ring:
    def __init__(self, directory: Path | None, name: str, dtype: np.dtype, capacity: int):
        raw = allocate(directory, name, HEADER_BYTES + capacity * dtype.itemsize)
        self.capacity = capacity
        self._count = raw[:8].view(np.uint64)
        self.records = raw[HEADER_BYTES:].view(dtype)
        self._lock_path = None if directory is None else directory / (name + ".lock")

    @property
    def count(self) -> int:
        """Entries ever appended (by every process sharing the ring)."""
        return int(self._count[0])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _segments(self, start: int, n: int) -> list[tuple[int, int, int]]:
        """(first, stop) in the new entries and where they go, for ``n`` entries at ``start``."""
        pos = start % self.capacity
        first = min(n, self.capacity - pos)
        out = [(0, first, pos)]
        if first < n:
            out.append((first, n, 0))
        return out

    def positions(self, start: int, stop: int) -> np.ndarray:
        """Ring positions of appended entries ``start .. stop - 1``."""
        return np.arange(start, stop, dtype=np.int64) % self.capacity


class PredictionRing(_Ring):
    def __init__(self, directory: Path | None, name: str, capacity: int) -> None:
        super().__init__(directory, name, ENTRY, capacity)
        r = self.records
        self.keys, self.times, self.preds = r["key"], r["time"], r["pred"]
        self.versions, self.rows, self.done = r["version"], r["rows"], r["done"]
        self._index: dict[int, int] = {}
        self._indexed = 0  # appended entries this process has indexed
        self._index_keys = [0] * capacity  # the key indexed at each position

    def append(
        self, keys: np.ndarray, preds: np.ndarray, rows: np.ndarray, tag: int, now: float
    ) -> None:
        """One row per key (see ``feedback.row_keys``), all predicted at ``now``."""
        if len(keys) > self.capacity:
            keys, preds, rows = (
                keys[-self.capacity :],
                preds[-self.capacity :],
                rows[-self.capacity :],
            )
        with self.locked():
            start = self.count
            for lo, hi, at in self._segments(start, len(keys)):
                span = slice(at, at + hi - lo)
                self.keys[span] = 0  # a reader never pairs a key with half an entry
                self.times[span] = now
                self.preds[span] = preds[lo:hi]
                self.versions[span] = tag
                self.rows[span] = rows[lo:hi]
                self.done[span] = 0
                self.keys[span] = keys[lo:hi]
            self._count[0] = start + len(keys)

    def catch_up(self) -> None:
        """Index what was appended since the last call (a lookup calls it)."""
        written = self.count
        if written == self._indexed:
            return
        start = max(self._indexed, written - self.capacity)
        positions = self.positions(start, written).tolist()
        index, indexed = self._index, self._index_keys
        for pos, key in zip(positions, self.keys[positions].tolist(), strict=True):
            old = indexed[pos]
            if old and index.get(old) == pos:
                del index[old]
            if key:
                index[key] = pos
            indexed[pos] = key
        self._indexed = written

    def find(self, key: int) -> np.ndarray | None:
        """Positions of every row of the request whose first row has ``key``, or None."""
        self.catch_up()
        pos = self._index.get(key)
        if pos is None or int(self.keys[pos]) != key:
            return None
        n = int(self.rows[pos])
        if n <= 1:
            return np.array([pos], dtype=np.int64)
        offsets = np.arange(n, dtype=np.uint64)
        expected = np.uint64(key) + offsets * ROW_STEP
        expected[expected == 0] = 1
        positions = (pos + offsets.astype(np.int64)) % self.capacity
        return positions if np.array_equal(self.keys[positions], expected) else None


class OutcomeRing(_Ring):
    def __init__(self, directory: Path | None, name: str, capacity: int) -> None:
        super().__init__(directory, name, OUTCOME, capacity)

    def append(self, entries: np.ndarray) -> None:
        if len(entries) > self.capacity:
            entries = entries[-self.capacity :]
        with self.locked():
            start = self.count
            for lo, hi, at in self._segments(start, len(entries)):
                self.records[at : at + hi - lo] = entries[lo:hi]
            self._count[0] = start + len(entries)

    def valid(self) -> np.ndarray:
        """A copy of the entries still in the ring, oldest first."""
        count = self.count
        if count <= self.capacity:
            return self.records[:count].copy()
        return self.records[self.positions(count - self.capacity, count)]
