"""The inference worker threads every thread-mode batcher of a process shares.

A fixed number of threads (``MODELGATE_INFERENCE_THREADS``, default: the cores this process
may run on) take batches from one queue, run them (onnxruntime releases the GIL) and hand
the results back to the batcher's event loop. The thread count is bounded whatever the
number of loaded versions: one thread per version put 200 threads on 2 cores with 100
models, each costing a stack and a wake-up, and none of them could run more than the cores
allow anyway.

``idle`` counts the workers waiting for a job, or about to: a worker counts itself idle
*before* it posts a finished batch's results to the loop, so the loop, when it dispatches
the next batch while answering that one, sees the worker that is coming back for it (the
batcher's handoff wait relies on that; see ``gateway/dataplane/batcher.py``).
"""

from __future__ import annotations

import logging
import os
import threading
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


class InferencePool:
    """``size`` worker threads, started on the first job (a process whose models all run
    inline never starts them) and stopped by ``close``."""

    __slots__ = ("size", "name", "idle", "_jobs", "_threads", "_lock")

    def __init__(self, size: int | None = None, *, name: str = "ort-pool") -> None:
        if size is not None and size < 1:
            raise ValueError(f"an inference pool needs at least 1 thread, not {size}")
        self.size = size if size is not None else default_threads()
        self.name = name
        self.idle = 0
        self._jobs: SimpleQueue[Job | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def threads(self) -> int:
        """Worker threads running now (0 before the first job and after ``close``)."""
        return sum(thread.is_alive() for thread in self._threads)

    def submit(self, job: Job) -> None:
        """Queue one batch; any idle worker runs it."""
        if not self._threads:
            self._start()
        self._jobs.put(job)

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self.idle = self.size
            for index in range(self.size):
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{index}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        jobs, lock = self._jobs, self._lock
        while True:
            job = jobs.get()
            if job is None:
                return
            with lock:
                self.idle -= 1
            batcher, batch, holds_busy, handoff = job
            results: Any = None
            try:
                results = batcher._execute(batch, batcher._started_signal if handoff else None)
            except BaseException:  # _execute never raises; a bug must not kill the pool
                logger.exception("inference worker failed on %s", batcher.label)
                results = [RuntimeError("inference worker failed")] * len(batch)
            with lock:
                self.idle += 1
            loop = batcher._loop
            if loop is None:
                continue
            try:
                loop.call_soon_threadsafe(batcher._on_batch_done, batch, results, holds_busy)
            except RuntimeError:  # that loop is closed: nobody waits for these results
                pass

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers once the jobs queued before this call have run (blocking); a
        later job starts them again."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout_s)


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
