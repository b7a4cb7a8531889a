"""The shadow mirror's own thread: mirrored copies run in large batches, at idle CPU priority.

The event loop only appends a copy to the mirror's bounded backlog (``ShadowMirror.mirror``)
and, when this thread sleeps, sets one event. Before each batch the thread waits
``COALESCE_S`` so copies pile up (unless a full batch waits already), takes up to
``BATCH_ROWS`` rows, groups them by (shadow version, primary version), runs each group
through the shadow version's runner call in one onnxruntime call (the GIL is released while
it runs) and compares the outputs row by row with the primary's. Per-group outcomes go back
to the loop in one ``call_soon_threadsafe`` per batch, where the statistics are updated, so
no statistic is written from two threads.

After each batch the thread rests in proportion to the CPU time the batch took, so that it
uses at most ``cpu_share`` of one core (``MODELGATE_SHADOW_CPU_SHARE``). Idle priority alone
is not enough: the two CPUs of a small machine are often hyperthreads of one core, and a
shadow running on one slows the primary's inference on the other (measured: 100 % mirrored
copies all ran and cost 20 % of the primary's throughput). The budget is what bounds it;
copies that arrive meanwhile wait in the backlog, and are dropped once it is full.

The thread asks the OS for ``SCHED_IDLE`` (it then only gets CPU time nothing else wants;
nice 19 where that is refused): on a busy machine the shadow falls behind and the mirror
drops copies, instead of taking CPU or batches from the primary answers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gateway.dataplane.runner import Feeds, Outputs

if TYPE_CHECKING:
    from gateway.dataplane.shadow import ShadowTarget
    from gateway.dataplane.snapshot import Variant

logger = logging.getLogger("modelgate.shadow")

COALESCE_S = 0.02  # let copies pile up this long before a batch: fewer, larger batches
BATCH_ROWS = 256  # rows taken per batch at most (one request larger than that goes alone)

Copy = tuple["ShadowTarget", Feeds, int, "Variant", Outputs]
Compared = tuple[int, int, np.ndarray | None]  # label rows, agreeing labels, differences


@dataclass(slots=True)
class Outcome:
    """What one group of copies (same shadow target, same primary) came to."""

    target: ShadowTarget
    compared: int  # copies that ran and were compared
    rows: int  # their rows
    failed: int  # copies whose shadow run failed
    calls: int  # onnxruntime calls made
    result: Compared


def lower_priority() -> str:
    """Put the calling thread at the lowest CPU priority the OS grants; says which."""
    try:
        # pid 0 is the calling thread on Linux, not the whole process
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        return "nice 19"
    except (AttributeError, OSError):
        return "normal"


def _merge(parts: list[Outputs] | list[Feeds]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return dict(parts[0])
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def run_group(group: list[Copy], compare: Callable[..., Compared]) -> Outcome:
    """Run one group's copies through the shadow version (one call when it batches, copy by
    copy when that call fails, so only the copy that broke it fails) and compare the rows
    with the primary's outputs. Never raises."""
    target, primary = group[0][0], group[0][3]
    shadow = target.variant
    batcher = shadow.batcher
    if batcher.closed:  # unloaded under the queued copies
        return Outcome(target, 0, 0, len(group), 0, (0, 0, None))
    run = batcher.run
    ran: list[Copy] = []
    outputs: list[Outputs] = []
    calls = 0
    if len(group) > 1 and batcher.batching:
        calls += 1
        try:
            outputs = [run(_merge([copy[1] for copy in group]))]
            ran = group
        except Exception as exc:
            logger.debug("merged shadow run on %s failed (%s): copy by copy", shadow, exc)
    if not ran:
        for copy in group:
            calls += 1
            try:
                outputs.append(run(copy[1]))
            except Exception as exc:
                logger.debug("shadow inference on %s failed: %s", shadow, exc)
                continue
            ran.append(copy)
    failed = len(group) - len(ran)
    if not ran:
        return Outcome(target, 0, 0, failed, calls, (0, 0, None))
    try:
        primary_out = _merge([copy[4] for copy in ran])
        result = compare(primary, primary_out, shadow, _merge(outputs))
    except Exception as exc:  # outputs that cannot be lined up: counted as failures
        logger.debug("shadow comparison on %s failed: %s", shadow, exc)
        return Outcome(target, 0, 0, len(group), calls, (0, 0, None))
    return Outcome(target, len(ran), sum(copy[2] for copy in ran), failed, calls, result)


class ShadowThread:
    """Takes batches from ``backlog`` and hands their outcomes to ``deliver`` (called on
    this thread; it must post them to the loop)."""

    def __init__(
        self,
        backlog: deque[Copy],
        deliver: Callable[[list[Outcome], int], None],
        compare: Callable[..., Compared],
        *,
        batch_rows: int = BATCH_ROWS,
        coalesce_s: float = COALESCE_S,
        cpu_share: float = 1.0,
    ) -> None:
        if not 0 < cpu_share <= 1:
            raise ValueError("cpu_share must be in (0, 1]")
        self._rest_per_cpu_s = 1.0 / cpu_share - 1.0
        self._backlog = backlog
        self._deliver = deliver
        self._compare = compare
        self._batch_rows = batch_rows
        self._coalesce_s = coalesce_s
        self._ready = threading.Event()
        self._stopping = False
        self.priority = ""  # what lower_priority() obtained, once running
        self._thread = threading.Thread(target=self._main, name="shadow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Hot path (loop): a copy was queued. One ``Event.set`` only when the thread
        sleeps; while it works, the flag read is all."""
        if not self._ready.is_set():
            self._ready.set()

    def request_stop(self) -> None:
        """The thread takes no further batch; the one it runs is finished and delivered."""
        self._stopping = True
        self._ready.set()

    def join(self, timeout_s: float = 30.0) -> None:
        """Blocking: wait for the thread to exit (after ``request_stop``)."""
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        self.priority = lower_priority()
        backlog, ready = self._backlog, self._ready
        while True:
            ready.wait()
            if self._stopping:
                return
            # cleared before draining: a copy queued after the last check sets it again
            ready.clear()
            while backlog and not self._stopping:
                if self._coalesce_s > 0 and len(backlog) < self._batch_rows:
                    # before every batch, not only after sleeping: under load the backlog
                    # never empties, and batches taken back to back would be small ones,
                    # each a GIL hand-over with the loop and a statistics update on it
                    time.sleep(self._coalesce_s)
                    if self._stopping:
                        break
                taken = self._take()
                if not taken:
                    continue
                started = time.thread_time()
                try:
                    self._deliver(self._run(taken), len(taken))
                except Exception:  # a bug here must not stop the mirror for good
                    logger.exception("shadow batch of %d copies failed", len(taken))
                rest = (time.thread_time() - started) * self._rest_per_cpu_s
                if rest > 0 and not self._stopping:
                    time.sleep(rest)

    def _take(self) -> list[Copy]:
        backlog, taken, rows = self._backlog, [], 0
        while rows < self._batch_rows:
            try:
                copy = backlog.popleft()
            except IndexError:  # empty, or discarded by stop()
                break
            taken.append(copy)
            rows += copy[2]
        return taken

    def _run(self, copies: list[Copy]) -> list[Outcome]:
        groups: dict[tuple[int, int], list[Copy]] = {}
        for copy in copies:
            key = (id(copy[0]), id(copy[3]))
            group = groups.get(key)
            if group is None:
                groups[key] = [copy]
            else:
                group.append(copy)
        return [run_group(group, self._compare) for group in groups.values()]
