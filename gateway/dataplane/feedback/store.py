"""Label feedback: what each request was predicted, and the labelled outcomes per version.

Per model (``ModelFeedback``), two rings (``feedback.tables``):

* predictions -- the last ``capacity`` predicted rows: key of the request id (row ``i``
  of a multi-row request: the id's key + ``i * ROW_STEP``), prediction time (wall clock),
  predicted class index (or value), version tag, row count, labelled flag. Monitoring
  appends them in bulk when it flushes a version's recorded requests; the oldest rows go
  first, and an id older than ``ttl_s`` reads as expired.
* outcomes -- labelled predictions (prediction time, label time, predicted, label,
  version tag), appended by ``POST /v2/models/{name}/feedback``; live accuracy, precision
  / recall and MAE come from it.

With several worker processes (``modelgate serve --workers N``) a label may reach another
worker than the one that answered the request, and the rollout controller reads accuracy
in one worker only, so both rings then live in memory-mapped files under a directory the
serve command prepares (``directory``), shared by every worker. Without a directory they
are private arrays of this process.

Keys are the id's ``hash()`` -- cheap, and cached on the string -- when every process
computes the same one: always for private tables, and for shared ones when
``PYTHONHASHSEED`` is fixed (``serve`` sets one random seed for all its workers);
otherwise crc32 + adler32 of the id's UTF-8 bytes, stable anywhere but ~5x slower.
Version tags are the crc32 of the version string.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gateway.dataplane.feedback.tables import OUTCOME, ROW_STEP, OutcomeRing, PredictionRing

MAX_ROWS = np.iinfo(np.uint16).max

# lookup statuses
FOUND, UNKNOWN, EXPIRED, DUPLICATE = "found", "unknown", "expired", "duplicate"


MASK64 = (1 << 64) - 1


def stable_key(request_id: str) -> int:
    """Non-zero 64-bit key of a request id, the same in every process (0 = empty slot)."""
    data = request_id.encode("utf-8", "surrogatepass")
    return (zlib.crc32(data) | (zlib.adler32(data) << 32)) or 1


def hash_key(request_id: str) -> int:
    """Non-zero 64-bit key from ``hash()``: per process unless PYTHONHASHSEED is fixed."""
    return (hash(request_id) & MASK64) or 1


def hash_is_shared(environ: Mapping[str, str] | None = None) -> bool:
    """Whether every process started with this environment hashes strings alike."""
    seed = (os.environ if environ is None else environ).get("PYTHONHASHSEED", "")
    return seed.isdigit()


def version_tag(version: str) -> int:
    return zlib.crc32(version.encode("utf-8", "surrogatepass")) or 1


def row_keys(
    ids: Sequence[str], n_rows: Sequence[int], stable: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(key per row, row count per row) for requests ``ids`` of ``n_rows`` rows each."""
    if stable:
        base = np.fromiter(map(stable_key, ids), dtype=np.uint64, count=len(ids))
    else:
        base = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)).view(np.uint64)
        base[base == 0] = 1
    counts = np.asarray(n_rows, dtype=np.int64)
    total = int(counts.sum())
    if total == len(ids):
        return base, np.ones(total, dtype=np.uint16)
    starts = np.cumsum(counts) - counts
    offsets = (np.arange(total) - np.repeat(starts, counts)).astype(np.uint64)
    keys = np.repeat(base, counts) + offsets * ROW_STEP  # wraps modulo 2**64
    keys[keys == 0] = 1
    rows = np.repeat(np.minimum(counts, MAX_ROWS), counts).astype(np.uint16)
    return keys, rows


@dataclass(frozen=True, slots=True)
class VersionLabels:
    """How labels of one version are matched: class -> index, or plain numbers."""

    version: str
    classification: bool
    index: dict[Any, int]
    n_classes: int

    @classmethod
    def of(cls, version: str, task: str, classes: Sequence[Any]) -> VersionLabels:
        index: dict[Any, int] = {}
        for i, label in enumerate(classes):
            index.setdefault(label, i)
            index.setdefault(str(label), i)
        return cls(version, task == "classification", index, len(classes))

    def encode(self, label: Any) -> float | None:
        """The stored form of a client's label: class index, or the value; None if invalid."""
        if self.classification:
            if isinstance(label, list | dict):
                return None
            found = self.index.get(label)
            if found is None and isinstance(label, float) and label.is_integer():
                found = self.index.get(int(label))
            return None if found is None else float(found)
        if isinstance(label, bool) or not isinstance(label, int | float):
            return None
        value = float(label)
        return value if math.isfinite(value) else None


class ModelFeedback:
    """The two rings of one model (see the module docstring)."""

    def __init__(
        self,
        model: str,
        capacity: int,
        ttl_s: float,
        directory: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.clock = clock
        stem = "feedback-" + hashlib.sha256(model.encode()).hexdigest()[:16]
        self.predictions = PredictionRing(directory, stem + ".predictions", capacity)
        self.outcomes = OutcomeRing(directory, stem + ".outcomes", capacity)
        # shared tables need the same key in every worker (see the module docstring)
        self.stable_keys = directory is not None and not hash_is_shared()
        self.key = stable_key if self.stable_keys else hash_key
        self.versions: dict[int, VersionLabels] = {}

    def register(self, version: str, task: str, classes: Sequence[Any]) -> int:
        """Make ``version``'s labels matchable; returns its tag (kept after unloads)."""
        tag = version_tag(version)
        self.versions[tag] = VersionLabels.of(version, task, classes)
        return tag

    # --- written by monitoring (bulk, on the event loop) ---------------------------------

    def row_keys(self, ids: Sequence[str], n_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return row_keys(ids, n_rows, self.stable_keys)

    def remember(
        self, tag: int, keys: np.ndarray, preds: np.ndarray, rows: np.ndarray, now: float
    ) -> None:
        """Append one predicted row per key (see ``row_keys``)."""
        self.predictions.append(keys, preds, rows, tag, now)

    # --- read by the feedback endpoint -----------------------------------------------------

    def find(self, request_id: str, now: float) -> tuple[str, np.ndarray]:
        """(status, ring positions of the request's rows in order) for one id."""
        ring = self.predictions
        positions = ring.find(self.key(request_id))
        if positions is None:
            return UNKNOWN, np.empty(0, dtype=np.int64)
        if float(ring.times[positions[0]]) < now - self.ttl_s:
            return EXPIRED, positions
        if ring.done[positions].any():
            return DUPLICATE, positions
        return FOUND, positions

    def served(self, request_id: str, now: float, window_s: float) -> tuple[str, int, float]:
        """(status, version tag, prediction time) of one id for an outcome: FOUND, UNKNOWN
        (never served here, or evicted), or EXPIRED (predicted more than ``window_s``
        before ``now``). Read only: a label for the same id is still accepted."""
        ring = self.predictions
        positions = ring.find(self.key(request_id))
        if positions is None:
            return UNKNOWN, 0, 0.0
        first = positions[0]
        tag, at = int(ring.versions[first]), float(ring.times[first])
        return (EXPIRED if at < now - window_s else FOUND), tag, at

    def entry(self, positions: np.ndarray) -> tuple[int, np.ndarray, float]:
        """(version tag, predicted values, prediction time) of a found request."""
        ring, first = self.predictions, positions[0]
        return int(ring.versions[first]), ring.preds[positions].copy(), float(ring.times[first])

    def label(
        self,
        positions: np.ndarray,
        tag: int,
        preds: np.ndarray,
        pred_time: float,
        labels: np.ndarray,
        now: float,
    ) -> None:
        """Append the labelled rows of one request and mark them done."""
        entries = np.zeros(len(positions), dtype=OUTCOME)
        entries["pred_time"] = pred_time
        entries["label_time"] = now
        entries["pred"] = preds
        entries["label"] = labels
        entries["version"] = tag
        self.outcomes.append(entries)
        self.predictions.done[positions] = 1

    # --- queries (off the request path) ----------------------------------------------------

    @property
    def appended(self) -> int:
        """Labelled predictions received since the tables were created."""
        return self.outcomes.count

    def select(
        self, version: str | None = None, since: float | None = None, last: int | None = None
    ) -> np.ndarray:
        """Outcomes of ``version`` (all versions: None) predicted at or after ``since``
        (wall seconds), the ``last`` newest of them when given."""
        out = self.outcomes.valid()
        if version is not None:
            out = out[out["version"] == version_tag(version)]
        if since is not None:
            out = out[out["pred_time"] >= since]
        if last is not None and len(out) > last:
            out = out[-last:]
        return out

    def quality(
        self, version: str, since: float | None = None, last: int | None = None
    ) -> dict[str, Any]:
        """Labelled count and live accuracy (+ precision/recall for binary classifiers)
        or MAE (regressors) of ``version``."""
        return quality_of(
            self.select(version, since, last), self.versions.get(version_tag(version))
        )


def quality_of(outcomes: np.ndarray, labels: VersionLabels | None) -> dict[str, Any]:
    n = int(len(outcomes))
    result: dict[str, Any] = {"labelled": n}
    if labels is None or n == 0:
        return result
    pred, truth = outcomes["pred"], outcomes["label"]
    if not labels.classification:
        result["mae"] = float(np.abs(pred - truth).mean())
        return result
    result["accuracy"] = float(np.count_nonzero(pred == truth) / n)
    if labels.n_classes == 2:
        tp = int(np.count_nonzero((pred == 1) & (truth == 1)))
        predicted, actual = int(np.count_nonzero(pred == 1)), int(np.count_nonzero(truth == 1))
        result["precision"] = tp / predicted if predicted else None
        result["recall"] = tp / actual if actual else None
    return result


class FeedbackStore:
    """Every model's feedback tables (``state.feedback``)."""

    def __init__(
        self,
        *,
        capacity: int,
        ttl_s: float,
        window: int,
        directory: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.window = window  # labelled predictions behind the live-accuracy gauge
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._models: dict[str, ModelFeedback] = {}

    def model(self, name: str) -> ModelFeedback:
        """The tables of ``name``, created (or opened, when shared) on first use."""
        found = self._models.get(name)
        if found is None:
            found = self._models[name] = ModelFeedback(
                name, self.capacity, self.ttl_s, self.directory, self.clock
            )
        return found

    def get(self, name: str) -> ModelFeedback | None:
        return self._models.get(name)

    def live_accuracy(self, model: str, version: str, since: float) -> tuple[float | None, int]:
        """(accuracy of ``version``'s labelled predictions made since ``since`` (wall
        seconds), how many). For the rollout controller; regressors: (None, 0), since
        accuracy does not apply to them (their labels count in ``labelled_count``)."""
        tables = self._models.get(model)
        if tables is None:
            return None, 0
        found = tables.quality(version, since=since)
        accuracy = found.get("accuracy")
        return (None, 0) if accuracy is None else (accuracy, found["labelled"])

    def labelled_count(self, model: str, since: float = 0.0, version: str | None = None) -> int:
        """Labels received for ``model`` (one version, or all) for predictions made since
        ``since``; the retraining policy's "new labelled samples"."""
        tables = self._models.get(model)
        if tables is None:
            return 0
        if since <= 0 and version is None:
            return tables.appended
        return int(len(tables.select(version, since)))
