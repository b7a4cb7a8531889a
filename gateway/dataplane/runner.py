"""One onnxruntime session per loaded version, configured for a server process.

Session options are chosen for a 2-core box that also runs the event loop
(docs/performance-notes.md, "onnxruntime intra-op threads on 2 cores"):
``intra_op_num_threads`` defaults to 1 because ORT's default pool (one thread per core,
spinning) fights the loop and cut a forest's throughput by a third; ``inter_op`` is 1 and
execution sequential because sklearn graphs have no parallel branches worth a pool; when
more intra-op threads are asked for, spinning is turned off so idle workers yield the CPU.

Memory (docs/performance-notes.md, "Memory per loaded version"): the CPU memory arena is
off. With one intra-op thread a session's arena only keeps freed blocks for reuse, and
its first chunk cost a 50-tree forest ~1 MiB per session (22 %) with no measurable latency
gain; memory patterns stay on (off, single-row runs took ~1.5x as long), and per-session
thread pools stay (with one thread there is no pool to share: a global pool saved nothing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


class ModelLoadError(Exception):
    """The artifact could not be turned into a working session (message is one line)."""


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    if intra_op_threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRunner:
    """A ready-to-run session: ``run(feeds) -> {output name: array}``.

    ``run`` is thread-safe (ORT sessions allow concurrent ``run``) and releases the GIL
    while the graph executes, so a batcher may call it from a worker thread.
    """

    __slots__ = ("_session", "_run", "input_names", "output_names", "single_row_us")

    def __init__(self, model_bytes: bytes, *, intra_op_threads: int = 1) -> None:
        try:
            self._session = ort.InferenceSession(
                model_bytes,
                sess_options=session_options(intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # ORT raises several unrelated pybind exception types
            raise ModelLoadError(f"onnxruntime cannot load the model: {_first_line(exc)}") from exc
        self._run = self._session.run
        self.input_names: tuple[str, ...] = tuple(i.name for i in self._session.get_inputs())
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]
        # measured by measure(); None until then
        self.single_row_us: float | None = None

    def run(self, feeds: Feeds) -> Outputs:
        names = self.output_names
        return dict(zip(names, self._run(names, feeds), strict=True))

    def warm_up(self, feeds: Feeds, runs: int = 5) -> None:
        """First runs allocate arenas and JIT-like caches; take them before traffic does."""
        try:
            for _ in range(runs):
                self.run(feeds)
        except Exception as exc:
            raise ModelLoadError(f"warm-up inference failed: {_first_line(exc)}") from exc

    def measure(self, feeds: Feeds, runs: int = 50) -> float:
        """Fastest wall time of one call on ``feeds`` in µs (after warm-up), kept on the runner.

        The minimum, not the median: on a busy box the other samples measure the neighbours,
        and the mode decision must not flip with the load at startup.
        """
        best = None
        run = self.run
        for _ in range(runs):
            start = time.perf_counter_ns()
            run(feeds)
            elapsed = time.perf_counter_ns() - start
            if best is None or elapsed < best:
                best = elapsed
        self.single_row_us = (best or 0) / 1000.0
        return self.single_row_us

    def batchable(self, feeds: Feeds, n_rows: int) -> bool:
        """True when every output has one leading row per input row.

        Merged batches are split back by row offsets; a graph with an output that is not
        row-aligned (a scalar, a fixed-size summary) must run each request alone.
        """
        doubled = {name: np.concatenate([value, value]) for name, value in feeds.items()}
        try:
            outputs = self.run(doubled)
        except Exception:
            return False
        return all(
            getattr(value, "ndim", 0) >= 1 and len(value) == 2 * n_rows
            for value in outputs.values()
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
