"""The inference worker threads every thread-mode batcher of a process shares.

A fixed number of threads (``MODELGATE_INFERENCE_THREADS``, default: the cores this process
may run on) take batches from one queue, run them (onnxruntime releases the GIL) and hand
the results back to the batcher's event loop. The thread count is bounded whatever the
number of loaded versions: one thread per version put 200 threads on 2 cores with 100
models, each costing a stack and a wake-up, and none of them could run more than the cores
allow anyway.

``idle`` counts the workers waiting for a job, or about to: a worker counts itself idle
*before* it posts a finished batch's results to the loop, so the loop, when it dispatches
the next batch while answering that one, hands it to the worker that is coming back for it
(the batcher's handoff wait relies on that; see ``gateway/dataplane/batcher.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.dataplane.batcher import Batcher, Item

logger = logging.getLogger("modelgate.pool")

# (batcher, batch, whether the batch holds the batcher's ``_busy``, whether the loop waits
# for its start) or None to stop one worker
Job = tuple["Batcher", list["Item"], bool, bool]


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset
    narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Worker:
    """One pool thread and its own job slot (a batch is handed to a chosen worker)."""

    __slots__ = ("jobs", "stop", "thread")

    def __init__(self) -> None:
        self.jobs: SimpleQueue[Job | None] = SimpleQueue()
        self.stop = False
        self.thread: threading.Thread | None = None


class InferencePool:
    """``size`` worker threads, started on the first job (a process whose models all run
    inline never starts them) and stopped by ``close``.

    A job goes to the worker that became idle last (a stack), else waits in a backlog the
    next worker to finish takes. Last-idle-first keeps one model's batches on one thread,
    as its dedicated thread did: the worker that just finished a batch has not gone to
    sleep yet, so handing it the next batch costs no wake-up, where a long-idle thread
    must be woken and scheduled (a shared queue wakes whichever thread sleeps on it).
    """

    __slots__ = ("size", "name", "_idle", "_backlog", "_workers", "_lock")

    def __init__(self, size: int | None = None, *, name: str = "ort-pool") -> None:
        if size is not None and size < 1:
            raise ValueError(f"an inference pool needs at least 1 thread, not {size}")
        self.size = size if size is not None else default_threads()
        self.name = name
        self._idle: list[_Worker] = []
        self._backlog: deque[Job] = deque()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    @property
    def idle(self) -> int:
        """Workers waiting for a job, or about to (see the module docstring)."""
        return len(self._idle)

    @property
    def threads(self) -> int:
        """Worker threads running now (0 before the first job and after ``close``)."""
        return sum(w.thread is not None and w.thread.is_alive() for w in self._workers)

    def submit(self, job: Job) -> None:
        """Run one batch on the worker idle last, or queue it for the next one free."""
        if not self._workers:
            self._start()
        with self._lock:
            if not self._idle:
                self._backlog.append(job)
                return
            worker = self._idle.pop()
        worker.jobs.put(job)

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            for index in range(self.size):
                worker = _Worker()
                worker.thread = threading.Thread(
                    target=self._work, args=(worker,), name=f"{self.name}-{index}", daemon=True
                )
                self._workers.append(worker)
                self._idle.append(worker)
                worker.thread.start()

    def _work(self, me: _Worker) -> None:
        lock, backlog, idle = self._lock, self._backlog, self._idle
        job: Job | None = None
        while True:
            if job is None:
                job = me.jobs.get()
                if job is None:
                    return
            batcher, batch, holds_busy, handoff = job
            results: Any = None
            try:
                results = batcher._execute(batch, batcher._started_signal if handoff else None)
            except BaseException:  # _execute never raises; a bug must not kill the pool
                logger.exception("inference worker failed on %s", batcher.label)
                results = [RuntimeError("inference worker failed")] * len(batch)
            # idle (or on to the backlog) before the loop hears of the results
            with lock:
                job = backlog.popleft() if backlog else None
                if job is None and not me.stop:
                    idle.append(me)
            loop = batcher._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(batcher._on_batch_done, batch, results, holds_busy)
                except RuntimeError:  # that loop is closed: nobody waits for these results
                    pass
            if job is None and me.stop:
                return

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers once the jobs handed out before this call have run
        (blocking); a later job starts new ones."""
        with self._lock:
            workers, self._workers = self._workers, []
            idle, self._idle = self._idle, []
            for worker in workers:
                worker.stop = True
        for worker in idle:
            worker.jobs.put(None)
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout_s)


_shared: InferencePool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> InferencePool:
    """The process's default pool (sized from the cores), for batchers built without one."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = InferencePool(name="ort-shared")
    return _shared
