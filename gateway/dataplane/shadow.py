"""Shadow mirroring: routed requests copied to shadow versions, run off the event loop.

``ShadowMirror.mirror`` (hot path, after the primary answer is encoded) samples each shadow
target and appends a copy to one bounded backlog; a full backlog drops the copy and counts
it, so the primary never waits and the shadow never queues work behind it. The copies run
on the mirror's own thread (``shadow_thread``): coalesced into large batches, at idle CPU
priority, never on the event loop, so a shadow version costs the primary answers neither
loop time nor a place in a primary batcher. That thread compares the shadow outputs with
the primary's for the same rows: label agreement for classifiers, absolute probability
difference (largest over the classes, per row) when both versions share their classes,
absolute value difference for regressors. Statistics are kept per (model, shadow
version), updated on the loop only, and survive snapshot swaps. Every copy taken
(``mirrored``) ends up compared (``requests``), failed (``errors``), dropped (``dropped``:
backlog full, or still waiting at shutdown) or still waiting in the backlog.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.dataplane.runner import Feeds, Outputs
from gateway.dataplane.shadow_thread import BATCH_ROWS, Copy, Outcome, ShadowThread
from gateway.dataplane.snapshot import ModelRoute, Variant

logger = logging.getLogger("modelgate.shadow")

WINDOW = 10_000  # recent per-row differences kept for the p95


class ShadowStats:
    """Aggregates for one shadow version of one model (plain numbers, one ring buffer)."""

    __slots__ = (
        "model",
        "version",
        "mirrored",
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
        self.mirrored = 0  # copies taken for this version (sampled in)
        self.requests = 0  # copies run and compared
        self.rows = 0
        self.label_rows = 0  # rows whose labels were compared
        self.agreed = 0
        self.diff_rows = 0  # rows with a numeric difference
        self.diff_sum = 0.0
        self.dropped = 0  # copies dropped: backlog full, or still waiting at shutdown
        self.errors = 0  # copies whose shadow run failed
        self._window = np.zeros(window, dtype=np.float64)
        self._pos = 0
        self._filled = 0

    def record(self, n_rows: int, label_rows: int, agreed: int, diffs: np.ndarray | None) -> None:
        """One copy of ``n_rows`` rows compared."""
        self.record_copies(1, n_rows, label_rows, agreed, diffs)

    def record_copies(
        self, copies: int, n_rows: int, label_rows: int, agreed: int, diffs: np.ndarray | None
    ) -> None:
        """``copies`` copies, ``n_rows`` rows in all, compared in one go."""
        self.requests += copies
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

    @property
    def drop_rate(self) -> float | None:
        """Dropped copies over the copies that have an outcome (compared, failed, dropped)."""
        done = self.requests + self.errors + self.dropped
        return self.dropped / done if done else None

    def summary(self) -> dict[str, Any]:
        recent = self._window[: self._filled]
        return {
            "version": self.version,
            "mirrored": self.mirrored,
            "requests": self.requests,
            "rows": self.rows,
            "compared": self.label_rows,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "mean_abs_diff": self.diff_sum / self.diff_rows if self.diff_rows else None,
            "p95_abs_diff": float(np.percentile(recent, 95)) if recent.size else None,
            "dropped": self.dropped,
            "drop_rate": self.drop_rate,
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


class ShadowMirror:
    """Bounded backlog + the shadow thread; ``stats_for`` hands out the per-version aggregates.

    ``maxsize`` bounds the copies waiting (``MODELGATE_SHADOW_QUEUE``); ``batch_rows`` the
    rows the thread runs per batch; ``cpu_share`` the share of one core the thread may use
    (``MODELGATE_SHADOW_CPU_SHARE``)."""

    def __init__(
        self, maxsize: int = 1024, *, batch_rows: int = BATCH_ROWS, cpu_share: float = 1.0
    ) -> None:
        self.maxsize = maxsize
        self.batch_rows = batch_rows
        self.cpu_share = cpu_share
        self._backlog: deque[Copy] = deque()
        self._thread: ShadowThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outstanding = 0  # copies taken and not finished (loop side)
        self._closed = False
        self._stats: dict[tuple[str, str], ShadowStats] = {}
        self._rand = random.random

    # --- hot path -------------------------------------------------------------
    def mirror(
        self, route: ModelRoute, feeds: Feeds, n_rows: int, primary: Variant, outputs: Outputs
    ) -> None:
        backlog = self._backlog
        queued = 0
        for target in route.shadows:
            if target.variant is primary:
                continue
            if target.sample < 1.0 and self._rand() >= target.sample:
                continue
            stats = target.stats
            stats.mirrored += 1
            if len(backlog) >= self.maxsize or self._closed:
                stats.dropped += 1
                continue
            backlog.append((target, feeds, n_rows, primary, outputs))
            queued += 1
        if queued:
            self._outstanding += queued
            thread = self._thread
            if thread is not None:
                thread.wake()

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
        """Copies waiting in the backlog (not yet taken by the thread)."""
        return len(self._backlog)

    @property
    def priority(self) -> str:
        """The CPU priority the shadow thread got ("idle", "nice 19", "normal"; "" before)."""
        return self._thread.priority if self._thread is not None else ""

    def start(self) -> None:
        if self._thread is not None and self._thread.alive:
            return
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._thread = ShadowThread(
            self._backlog,
            self._post,
            compare,
            batch_rows=self.batch_rows,
            cpu_share=self.cpu_share,
        )
        self._thread.start()
        if self._backlog:
            self._thread.wake()

    async def join(self) -> None:
        """Wait until every copy taken so far has been compared, failed or dropped (tests,
        graceful stop); the mirror must have been started."""
        while self._outstanding > 0:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop the thread after its current batch; copies still waiting count as dropped."""
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.request_stop()  # before any await: no batch is taken after this
            await asyncio.to_thread(thread.join)
        while self._backlog:
            target = self._backlog.popleft()[0]
            target.stats.dropped += 1
            self._outstanding -= 1

    # --- from the shadow thread -------------------------------------------------------
    def _post(self, outcomes: list[Outcome], copies: int) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._finish, outcomes, copies)
        except RuntimeError:  # loop closed under us: nobody reads the statistics any more
            pass

    def _finish(self, outcomes: list[Outcome], copies: int) -> None:
        """On the loop: one batch's outcomes into the statistics, metrics and counters."""
        for outcome in outcomes:
            target, stats = outcome.target, outcome.target.stats
            if outcome.compared:
                stats.record_copies(outcome.compared, outcome.rows, *outcome.result)
            stats.errors += outcome.failed
            variant = target.variant
            batcher = variant.batcher
            batcher.batches += outcome.calls
            batcher.batched_rows += outcome.rows
            recorder = variant.recorder
            if recorder is not None:
                for _ in range(outcome.compared):
                    recorder.record_shadow(200)
                for _ in range(outcome.failed):
                    recorder.record_shadow(500)
                # this batch's rows into the version's window now (a fraction of a ms):
                # left to the 1 s monitoring tick, a second of shadow rows would hold the
                # loop for several ms in one go, in front of primary answers
                recorder.flush()
        self._outstanding -= copies
