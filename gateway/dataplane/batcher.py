"""Adaptive batching in front of one runner: concurrent requests share one ORT call.

Requests are ``(feeds, n_rows)``; a batch concatenates the feeds of several requests
along the row axis, runs once, and hands every caller exactly its rows back (row
offsets). Two execution modes:

* ``inline`` -- the call runs on the event loop. With batching on, every request that
  arrives before the next loop tick joins the batch (``loop.call_soon``). For tiny models
  the thread hop costs more than the inference (docs/performance-notes.md), so this is
  their mode. A single request larger than ``max_batch_size`` rows still goes to the
  worker thread, so one big request never stalls the loop.
* ``thread`` -- one hop per batch to a worker thread of the process's shared
  ``InferencePool`` (``gateway/dataplane/pool.py``: a fixed number of threads, however many
  versions are loaded; ORT releases the GIL), so the loop keeps parsing requests while a
  batch runs. A batcher has at most one batch of its own in flight; what arrives meanwhile
  becomes the next batch, which is dispatched the moment that batch is done: before the
  loop answers the finished batch, so a worker runs the next one while the loop writes the
  replies. Two rules keep that overlap (a batch timeline under wrk showed it lost without
  them):

  - *Half split.* A batch dispatched as another finishes takes at most half of the rows
    of the two (pending plus the finished batch's), so two groups alternate: one on the
    worker, one being answered and re-read by the loop. Taking all that was pending let
    the groups drift into one big batch and a tiny one (60 + 4 rows, then all 64), with
    the loop or the worker idle. A batch dispatched to an idle worker takes all it can.
  - *Handoff.* After dispatching a batch it is about to answer another for, the loop
    waits (at most ``HANDOFF_WAIT_S``) until the worker has started it. The worker needs
    the GIL to start, and a thread waiting for the GIL gets it only when the holder blocks
    or after the 5 ms switch interval: without the wait the batch would start only once
    the loop had answered the previous one. The wait costs the loop the worker's wake-up.
    The loop waits only when a pool worker is idle: with every worker busy on other
    models' batches nothing could start it, and waiting would only stall the loop.

``auto`` picks per model from the measured single-row latency (``choose_mode``).
With batching off every request runs alone, in the same mode.

A request's ``Waiter`` (an ``asyncio.Future`` or the HTTP fast path's ``FastCycle``) gets its
outputs or its error on the loop. Cancellation safety: waiters are resolved only
``if not waiter.done()``, one that is done before its batch runs is dropped, completion never
raises, and a failing merged batch is retried request by request so that one bad request
fails alone; an ORT failure becomes ``InferenceFailed`` (a server-side 500), never a
client error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, Protocol

import numpy as np

from gateway.dataplane.pool import InferencePool, shared_pool
from gateway.dataplane.runner import Feeds, Outputs
from gateway.errors import GatewayError, ModelNotReady

logger = logging.getLogger("modelgate.batcher")

# how long the loop waits for the worker to start a batch (see Handoff above); it is
# idle when dispatched to, so it normally starts within ~0.1 ms
HANDOFF_WAIT_S = 0.002

Result = Outputs | BaseException


class Waiter(Protocol):
    """Who gets a request's outputs: an ``asyncio.Future`` (``Batcher.infer``) or any object
    with the same three methods (the HTTP fast path answers from ``set_result`` directly).
    ``done()`` true means nobody waits any more: the request is dropped, never run."""

    def done(self) -> bool: ...

    def set_result(self, result: Outputs, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


Item = tuple[Feeds, int, Waiter]


class InferenceFailed(GatewayError):
    """The model itself failed on input the codec accepted: a server-side error."""

    status = 500
    reason = "inference_failed"


def choose_mode(setting: str, single_row_us: float | None, inline_max_us: float) -> str:
    """``inline`` or ``thread``: explicit settings win; ``auto`` compares the measured
    single-row latency with ``inline_max_us`` (a model that is slower than that gains more
    from running beside the loop than the hop costs)."""
    if setting in ("inline", "thread"):
        return setting
    if single_row_us is None:
        return "thread"
    return "inline" if single_row_us <= inline_max_us else "thread"


class Batcher:
    __slots__ = (
        "submit",
        "mode",
        "batching",
        "max_batch_size",
        "max_delay_s",
        "label",
        "pool",
        "batches",
        "batched_rows",
        "_run",
        "_pending",
        "_pending_rows",
        "_scheduled",
        "_timer",
        "_busy",
        "_in_flight",
        "_closed",
        "_loop",
        "_started",
    )

    def __init__(
        self,
        run: Callable[[Feeds], Outputs],
        *,
        mode: str = "inline",
        batching: bool = True,
        max_batch_size: int = 64,
        max_delay_s: float = 0.0,
        label: str = "",
        pool: InferencePool | None = None,
    ) -> None:
        if mode not in ("inline", "thread"):
            raise ValueError(f"mode must be inline or thread, not {mode!r}")
        self.mode = mode
        self.batching = batching
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.label = label
        # where thread-mode batches (and inline mode's oversized requests) run
        self.pool = pool if pool is not None else shared_pool()
        # plain counters, read by monitoring
        self.batches = 0
        self.batched_rows = 0
        self._run = run
        self._pending: list[Item] = []
        self._pending_rows = 0
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._in_flight = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # a pool worker signals here when it starts a batch the loop waits for (handoff)
        self._started: SimpleQueue[None] = SimpleQueue()
        # bind the request entry point once: no mode test per request
        if mode == "inline":
            self.submit = self._submit_batched if batching else self._submit_inline
        else:
            self.submit = self._submit_batched if batching else self._submit_threaded

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def run(self) -> Callable[[Feeds], Outputs]:
        """The runner call batches make (monitoring may have wrapped it to time and record
        the rows); the shadow mirror runs its copies through it on a thread of its own."""
        return self._run

    @property
    def closed(self) -> bool:
        return self._closed

    # --- request entry points ------------------------------------------------------
    async def infer(self, feeds: Feeds, n_rows: int) -> Outputs:
        """Run one request (``n_rows`` rows) and return exactly its outputs."""
        future: asyncio.Future[Outputs] = (self._loop or self._start()).create_future()
        self.submit(feeds, n_rows, future)
        return await future

    def _submit_inline(self, feeds: Feeds, n_rows: int, waiter: Waiter) -> None:
        if self._closed:
            raise ModelNotReady(f"{self.label} is unloading")
        if n_rows > self.max_batch_size:
            self._submit_threaded(feeds, n_rows, waiter)
            return
        result = _run_one(self._run, feeds)
        self.batches += 1
        self.batched_rows += n_rows
        _deliver(waiter, result, self.label)

    def _submit_threaded(self, feeds: Feeds, n_rows: int, waiter: Waiter) -> None:
        if self._loop is None:
            self._start()
        if self._closed:
            raise ModelNotReady(f"{self.label} is unloading")
        self._in_flight += 1
        self._to_worker([(feeds, n_rows, waiter)], False, False)

    def _submit_batched(self, feeds: Feeds, n_rows: int, waiter: Waiter) -> None:
        loop = self._loop or self._start()
        if self._closed:
            raise ModelNotReady(f"{self.label} is unloading")
        self._in_flight += 1
        self._pending.append((feeds, n_rows, waiter))
        self._pending_rows += n_rows
        if not self._busy:
            if not self._scheduled:
                self._scheduled = True
                if self.max_delay_s > 0 and self._pending_rows < self.max_batch_size:
                    self._timer = loop.call_later(self.max_delay_s, self._dispatch)
                else:
                    loop.call_soon(self._dispatch)
            elif self._timer is not None and self._pending_rows >= self.max_batch_size:
                # a full batch does not wait for the delay
                self._timer.cancel()
                self._timer = None
                loop.call_soon(self._dispatch)

    # --- batching ----------------------------------------------------------------
    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        self._loop = loop
        return loop

    def _to_worker(self, batch: list[Item], holds_busy: bool, handoff: bool) -> None:
        pool = self.pool
        if not handoff or pool.idle <= 0:
            pool.submit((self, batch, holds_busy, False))
            return
        started = self._started
        while not started.empty():  # a start signal that came after its wait timed out
            started.get_nowait()
        pool.submit((self, batch, holds_busy, True))
        try:
            started.get(timeout=HANDOFF_WAIT_S)
        except Empty:
            pass

    def _take_batch(self, limit: int) -> list[Item]:
        """Oldest requests first, up to ``limit`` rows; at least one request."""
        pending = self._pending
        batch: list[Item] = []
        rows = 0
        taken = 0
        for item in pending:
            if item[2].done():  # cancelled while waiting: drop it, never run it
                taken += 1
                self._in_flight -= 1
                self._pending_rows -= item[1]
                continue
            if batch and rows + item[1] > limit:
                break
            batch.append(item)
            rows += item[1]
            taken += 1
            if rows >= limit:
                break
        del pending[:taken]
        self._pending_rows -= rows
        return batch

    def _dispatch(self, answering_rows: int = 0) -> None:
        """Run what is pending. ``answering_rows``: the rows of the finished batch the loop
        answers right after this (thread mode: the half split and the handoff apply)."""
        self._scheduled = False
        self._timer = None
        limit = self.max_batch_size
        if self.mode == "inline":
            while self._pending:
                batch = self._take_batch(limit)
                if len(batch) == 1 and batch[0][1] > limit:
                    # one oversized request would block the loop: it takes the thread
                    self._to_worker(batch, False, False)
                elif batch:
                    self._resolve(batch, self._execute(batch))
            return
        if self._busy or self._closed:
            return
        if answering_rows:
            limit = min(limit, (self._pending_rows + answering_rows + 1) // 2)
        batch = self._take_batch(limit)
        if batch:
            self._busy = True
            self._to_worker(batch, True, answering_rows > 0)

    def _on_batch_done(self, batch: list[Item], results: list[Result], holds_busy: bool) -> None:
        """Runs on the loop when the worker finished a batch."""
        if holds_busy:
            self._busy = False
            if self._pending and not self._scheduled:
                # requests that arrived during the run already waited: go now, and let the
                # worker run them while the loop answers this batch
                self._dispatch(sum(item[1] for item in batch))
        self._resolve(batch, results)

    def _resolve(self, batch: list[Item], results: list[Result]) -> None:
        self._in_flight -= len(batch)
        self.batches += 1
        label = self.label
        for (_feeds, n_rows, waiter), result in zip(batch, results, strict=True):
            self.batched_rows += n_rows
            _deliver(waiter, result, label)

    def _execute(
        self, batch: list[Item], started: Callable[[], None] | None = None
    ) -> list[Result]:
        """Run one batch; never raises. Runs on the loop (inline) or a pool worker, which
        passes ``started``: called once the batch is ready to run (the handoff)."""
        run = self._run
        if len(batch) == 1:
            if started is not None:
                started()
            return [_run_one(run, batch[0][0])]
        first = batch[0][0]
        try:
            merged = {name: np.concatenate([item[0][name] for item in batch]) for name in first}
            if started is not None:
                started()
            outputs = run(merged)
        except Exception:
            # isolate the request that broke the merged call: only it fails
            return [_run_one(run, item[0]) for item in batch]
        results: list[Result] = []
        start = 0
        for _feeds, n_rows, _future in batch:
            stop = start + n_rows
            results.append({name: value[start:stop] for name, value in outputs.items()})
            start = stop
        return results

    def _started_signal(self) -> None:
        self._started.put(None)

    # --- lifecycle (control plane) -------------------------------------------------
    async def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every submitted request has been answered; False on timeout."""
        waited = 0.0
        while self._in_flight > 0 and waited < timeout_s:
            await asyncio.sleep(0.01)
            waited += 0.01
        return self._in_flight == 0

    async def aclose(self) -> None:
        """Refuse new requests and fail the queued ones (batches already handed to the
        pool still run and are answered)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        self._pending_rows = 0
        for _feeds, _rows, waiter in pending:
            self._in_flight -= 1
            if not waiter.done():
                waiter.set_exception(ModelNotReady(f"{self.label} was unloaded"))


def _run_one(run: Callable[[Feeds], Outputs], feeds: Feeds) -> Result:
    try:
        return run(feeds)
    except Exception as exc:
        return exc


def _deliver(waiter: Waiter, result: Result, label: str) -> None:
    """Hand one request its result, unless nobody waits for it any more."""
    if waiter.done():
        return
    if isinstance(result, BaseException):
        error = _failure(result, label)
        error.__cause__ = result
        waiter.set_exception(error)
    else:
        waiter.set_result(result)


def _failure(exc: BaseException, label: str) -> InferenceFailed:
    logger.warning("inference failed on %s: %s", label, exc)
    return InferenceFailed(f"model {label} failed to run this input")


def describe(batcher: Batcher) -> dict[str, Any]:
    """Plain view for admin/monitoring."""
    return {
        "mode": batcher.mode,
        "batching": batcher.batching,
        "max_batch_size": batcher.max_batch_size,
        "batches": batcher.batches,
        "rows": batcher.batched_rows,
        "mean_batch_rows": (batcher.batched_rows / batcher.batches) if batcher.batches else 0.0,
    }
