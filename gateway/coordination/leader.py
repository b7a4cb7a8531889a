"""Process coordination through ``flock``: one leader among the workers, and a short mutex.

``LeaderElection`` makes exactly one process of a home folder run the background
controllers (canary rollouts, the retraining trigger) however many ``--workers`` serve.
Each worker tries ``flock(LOCK_EX | LOCK_NB)`` on ``<home>/controller.lock`` every
``retry_s`` seconds; the winner keeps the descriptor open for its lifetime. The kernel
drops the lock when that process exits or is killed, so another worker takes over at its
next retry. The lock file holds the leader's pid (diagnostics only).

``FileMutex`` serialises short read-decide-write sequences on control-plane state across
processes (workers, the CLI), which the registry's plain key/value ``put_state`` cannot do
on its own: each acquisition opens its own descriptor, so it excludes coroutines of the
same process too. It polls with ``LOCK_NB`` instead of blocking in a thread, so a
cancelled waiter never ends up holding the lock. Coroutines of one event loop first queue,
in order, on an ``asyncio.Lock`` per path: on a loop saturated with requests a 5 ms poll
wakes late and keeps missing the short gaps between one holder and the next, so three
models rolled back every 0.5 s waited up to 8 s for their turn (``benchmarks/scale.py``).

Both need a local filesystem (``flock`` is not reliable over NFS), which SQLite needs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
import weakref
from pathlib import Path
from types import TracebackType

from gateway.coordination.background import BackgroundTask
from gateway.errors import GatewayError

logger = logging.getLogger("modelgate.leader")

LEADER_LOCK = "controller.lock"


class ControlPlaneBusy(GatewayError):
    status = 503
    reason = "busy"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class LeaderElection:
    """A ``Leader`` (``coordination.leadership``): exactly one process per home folder holds
    the lease; the others keep retrying."""

    def __init__(self, path: str | os.PathLike[str], retry_s: float = 1.0) -> None:
        if retry_s <= 0:
            raise ValueError("retry_s must be > 0")
        self.path = Path(path)
        self.retry_s = retry_s
        self._fd: int | None = None
        self._task = BackgroundTask(self._campaign)
        self.elected = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """One non-blocking attempt; True when this process is (now) the leader."""
        if self._fd is not None:
            return True
        fd = _open(self.path)
        if not _try_lock(fd):
            os.close(fd)
            return False
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self.elected.set()
        logger.info("this process (pid %d) leads the control plane", os.getpid())
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        self.elected.clear()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor drops the flock

    async def _campaign(self) -> None:
        while not self.is_leader:
            try:
                if self.try_acquire():
                    return
            except OSError as exc:
                logger.warning("cannot take the leader lock %s: %s", self.path, exc)
            await asyncio.sleep(self.retry_s)

    def start(self) -> None:
        """Campaign in the background until elected (idempotent); needs a running loop."""
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        self.release()


# the in-process queue of each mutex path, per event loop (an asyncio.Lock is bound to one)
_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _queue(path: Path) -> asyncio.Lock:
    locks = _queues.setdefault(asyncio.get_running_loop(), {})
    key = os.path.abspath(path)
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


class FileMutex:
    """``async with FileMutex(path):`` a cross-process critical section (keep it short)."""

    def __init__(
        self, path: str | os.PathLike[str], timeout_s: float = 10.0, poll_s: float = 0.005
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._fd: int | None = None
        self._queue: asyncio.Lock | None = None  # the path's in-process queue, while held

    async def __aenter__(self) -> FileMutex:
        if self._fd is not None:
            raise RuntimeError("FileMutex is not reentrant")
        deadline = time.monotonic() + self.timeout_s
        queue = _queue(self.path)
        try:
            async with asyncio.timeout(self.timeout_s):
                await queue.acquire()  # cancelled while waiting: not acquired
        except TimeoutError:
            raise ControlPlaneBusy(
                f"control-plane state is locked by another change ({self.path}); try again"
            ) from None
        try:
            fd = _open(self.path)
        except BaseException:
            queue.release()
            raise
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise ControlPlaneBusy(
                        f"control-plane state is locked by another process ({self.path}); try again"
                    )
                await asyncio.sleep(self.poll_s)
        except BaseException:
            os.close(fd)
            queue.release()
            raise
        self._fd = fd
        self._queue = queue
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            if self._queue is not None:
                self._queue.release()
                self._queue = None
