"""Shadow mirroring: routed requests copied to shadow versions, off the request path.

``ShadowMirror.mirror`` (hot path) samples each shadow target and ``put_nowait``s a copy
onto one bounded queue; a full queue drops the copy and counts it, so the primary
response never waits. Worker tasks run the shadow version through its own batcher and
compare its outputs with the primary's for the same rows: label agreement for
classifiers, absolute probability difference (largest over the classes, per row) when both
versions share their classes, absolute value difference for regressors. Statistics are
kept per (model, shadow version) and survive snapshot swaps.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.dataplane.runner import Feeds, Outputs
from gateway.dataplane.snapshot import ModelRoute, Variant

logger = logging.getLogger("modelgate.shadow")

WINDOW = 10_000  # recent per-row differences kept for the p95


class ShadowStats:
    """Aggregates for one shadow version of one model (plain numbers, one ring buffer)."""

    __slots__ = (
        "model",
        "version",
        "requests",
        "rows",
        "label_rows",
        "agreed",
        "diff_rows",
        "diff_sum",
        "dropped",
        "errors",
        "_window",
        "_pos",
        "_filled",
    )

    def __init__(self, model: str, version: str, window: int = WINDOW) -> None:
        self.model = model
        self.version = version
        self.requests = 0  # shadow inferences compared
        self.rows = 0
        self.label_rows = 0  # rows whose labels were compared
        self.agreed = 0
        self.diff_rows = 0  # rows with a numeric difference
        self.diff_sum = 0.0
        self.dropped = 0  # copies dropped because the queue was full
        self.errors = 0  # shadow inferences that failed
        self._window = np.zeros(window, dtype=np.float64)
        self._pos = 0
        self._filled = 0

    def record(self, n_rows: int, label_rows: int, agreed: int, diffs: np.ndarray | None) -> None:
        self.requests += 1
        self.rows += n_rows
        self.label_rows += label_rows
        self.agreed += agreed
        if diffs is None or diffs.size == 0:
            return
        self.diff_rows += diffs.size
        self.diff_sum += float(diffs.sum())
        window = self._window
        size = window.size
        if diffs.size >= size:
            window[:] = diffs[-size:]
            self._pos = 0
            self._filled = size
            return
        end = self._pos + diffs.size
        if end <= size:
            window[self._pos : end] = diffs
        else:
            first = size - self._pos
            window[self._pos :] = diffs[:first]
            window[: end - size] = diffs[first:]
        self._pos = end % size
        self._filled = min(size, self._filled + diffs.size)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.label_rows if self.label_rows else None

    def summary(self) -> dict[str, Any]:
        recent = self._window[: self._filled]
        return {
            "version": self.version,
            "requests": self.requests,
            "rows": self.rows,
            "compared": self.label_rows,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "mean_abs_diff": self.diff_sum / self.diff_rows if self.diff_rows else None,
            "p95_abs_diff": float(np.percentile(recent, 95)) if recent.size else None,
            "dropped": self.dropped,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True, eq=False)
class ShadowTarget:
    variant: Variant
    sample: float  # fraction of routed requests mirrored, 0..1
    stats: ShadowStats


def compare(
    primary: Variant, primary_out: Outputs, shadow: Variant, shadow_out: Outputs
) -> tuple[int, int, np.ndarray | None]:
    """(label rows compared, labels agreeing, per-row absolute differences or None)."""
    ps, ss = primary.signature, shadow.signature
    label_rows = agreed = 0
    if ps.task == "classification" and ss.task == "classification":
        left = np.asarray(primary_out[ps.prediction_output]).reshape(-1)
        right = np.asarray(shadow_out[ss.prediction_output]).reshape(-1)
        if left.shape == right.shape and left.dtype.kind == right.dtype.kind:
            label_rows = int(left.size)
            agreed = int(np.count_nonzero(left == right))
        if (
            ps.probability_output is not None
            and ss.probability_output is not None
            and ps.classes == ss.classes
        ):
            lp = np.asarray(primary_out[ps.probability_output], dtype=np.float64)
            rp = np.asarray(shadow_out[ss.probability_output], dtype=np.float64)
            if lp.shape == rp.shape and lp.ndim == 2:
                return label_rows, agreed, np.abs(lp - rp).max(axis=1)
        return label_rows, agreed, None
    if ps.task == "regression" and ss.task == "regression":
        lv = np.asarray(primary_out[ps.prediction_output], dtype=np.float64).reshape(-1)
        rv = np.asarray(shadow_out[ss.prediction_output], dtype=np.float64).reshape(-1)
        if lv.shape == rv.shape:
            return 0, 0, np.abs(lv - rv)
    return 0, 0, None


ShadowItem = tuple[ShadowTarget, Feeds, int, Variant, Outputs]


class ShadowMirror:
    """Bounded queue + worker tasks; ``stats_for`` hands out the per-version aggregates."""

    def __init__(self, maxsize: int = 1024, workers: int = 2) -> None:
        self.maxsize = maxsize
        self.workers = workers
        self._queue: asyncio.Queue[ShadowItem] = asyncio.Queue(maxsize)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats: dict[tuple[str, str], ShadowStats] = {}
        self._rand = random.random

    # --- hot path -------------------------------------------------------------
    def mirror(
        self, route: ModelRoute, feeds: Feeds, n_rows: int, primary: Variant, outputs: Outputs
    ) -> None:
        put = self._queue.put_nowait
        for target in route.shadows:
            if target.variant is primary:
                continue
            if target.sample < 1.0 and self._rand() >= target.sample:
                continue
            try:
                put((target, feeds, n_rows, primary, outputs))
            except asyncio.QueueFull:
                target.stats.dropped += 1

    # --- control plane ----------------------------------------------------------
    def stats_for(self, model: str, version: str) -> ShadowStats:
        key = (model, version)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = ShadowStats(model, version)
        return stats

    def stats_of(self, model: str) -> list[ShadowStats]:
        return [s for (m, _v), s in sorted(self._stats.items()) if m == model]

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        for i in range(self.workers - len(self._tasks)):
            task = asyncio.get_running_loop().create_task(self._work(), name=f"shadow-{i}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def join(self) -> None:
        """Wait until every queued copy has been processed (tests, graceful stop)."""
        await self._queue.join()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        queue = self._queue
        while True:
            target, feeds, n_rows, primary, outputs = await queue.get()
            status = 500
            try:
                shadow_out = await target.variant.batcher.infer(feeds, n_rows)
                status = 200
                target.stats.record(n_rows, *compare(primary, outputs, target.variant, shadow_out))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                target.stats.errors += 1
                logger.debug("shadow inference on %s failed: %s", target.variant, exc)
            finally:
                recorder = target.variant.recorder
                if recorder is not None:
                    recorder.record_shadow(status)
                queue.task_done()
