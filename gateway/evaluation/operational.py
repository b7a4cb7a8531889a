"""Operational profile of an ONNX artifact: latency, throughput, size, session memory.

Measured with onnxruntime directly (one intra-op thread, as the gateway runs sessions), on
rows of the evaluation data; feeds are built before timing so only ``session.run`` is
timed. Numbers depend on the machine and its load: compare versions measured on the same
host, close in time.

* latency: ``runs`` single-row calls after ``warmup`` calls, p50/p95/p99 in milliseconds;
  the loop stops early (after at least 30 runs) when it exceeds its time budget.
* throughput: rows per second over repeated batches of 64 rows (at least 10 batches and
  ``min_seconds``).
* memory (Linux): onnxruntime's one-time process setup is paid first by a trivial
  identity graph (reported as ``runtime_init_bytes``); then the kernel's peak-RSS counter
  is reset (``/proc/self/clear_refs`` = 5) and ``peak_rss_delta_bytes`` = VmHWM after
  creating the model's session and running every call above, minus VmRSS just before
  creating it: the session's graph, weights, arena and call outputs. Without clear_refs it
  falls back to ``ru_maxrss`` growth (the lifetime peak), which under-reports when an
  earlier peak was higher; ``method`` records which.
* isolation: by default everything runs in a fresh Python process (``sys.executable``
  loading this file by path: numpy + onnxruntime only, no pandas / scikit-learn, no
  multiprocessing re-import of the caller's ``__main__``), so the memory delta is not
  hidden by heap pages the parent already freed and the timings share no process with
  other work. If no process can be started it runs in-process (``process`` records which),
  where the memory delta can understate because the session reuses already-mapped heap.
  This module imports nothing from the project, so the child can load it on its own.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

_STATUS = "/proc/self/status"


def _status_bytes(key: str) -> int | None:
    try:
        with open(_STATUS) as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss() -> int | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class _MemoryProbe:
    def __init__(self) -> None:
        self.exact = _reset_peak() and _status_bytes("VmHWM") is not None
        self.before = _status_bytes("VmRSS") if self.exact else _ru_maxrss()

    def result(self) -> dict[str, Any]:
        if self.before is None:
            return {"peak_rss_delta_bytes": None, "method": "unavailable on this platform"}
        if self.exact:
            peak = _status_bytes("VmHWM") or self.before
            method = "VmHWM after clear_refs reset minus VmRSS before session creation"
        else:
            peak = _ru_maxrss() or self.before
            method = "ru_maxrss growth (lifetime peak; may under-report)"
        return {"peak_rss_delta_bytes": max(0, peak - self.before), "method": method}


def _rows(feeds: Mapping[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.take(array, index, axis=0) for name, array in feeds.items()}


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean())}


def _latency(
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    n: int,
    runs: int,
    budget_s: float,
) -> dict[str, Any]:
    singles = [_rows(feeds, np.array([i % n])) for i in range(min(n, runs))]
    samples: list[int] = []
    deadline = time.perf_counter() + budget_s
    for i in range(runs):
        one = singles[i % len(singles)]
        start = time.perf_counter_ns()
        session.run(None, one)
        samples.append(time.perf_counter_ns() - start)
        if len(samples) >= 30 and time.perf_counter() > deadline:
            break
    return {"batch_size": 1, "runs": len(samples), **_percentiles(samples)}


def _throughput(
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    n: int,
    batch_size: int,
    min_seconds: float,
    budget_s: float,
) -> dict[str, Any]:
    batch = _rows(feeds, np.arange(batch_size) % n)
    batches = 0
    start = time.perf_counter()
    while True:
        session.run(None, batch)
        batches += 1
        elapsed = time.perf_counter() - start
        if (batches >= 10 and elapsed >= min_seconds) or elapsed >= budget_s:
            break
    return {
        "batch_size": batch_size,
        "batches": batches,
        "rows_per_second": batches * batch_size / elapsed,
    }


# a serialized ONNX graph y = Identity(x), x: float[N, 1] (opset 13), built with onnx.helper
_IDENTITY_MODEL = (
    b'\x08\x08\x12\x00:>\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x04warmZ\x11\n\x01x'
    b"\x12\x0c\n\n\x08\x01\x12\x06\n\x00\n\x02\x08\x01b\x11\n\x01y\x12\x0c\n\n\x08\x01"
    b"\x12\x06\n\x00\n\x02\x08\x01B\x04\n\x00\x10\r"
)


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _measure(model_bytes: bytes, feeds: Mapping[str, np.ndarray], opts: Mapping[str, Any]) -> dict:
    n = len(next(iter(feeds.values())))
    # onnxruntime's one-time process setup (environment, allocators, kernel registry) is
    # paid by a trivial graph first, so the delta below belongs to this model's session
    runtime = _MemoryProbe()
    _session(_IDENTITY_MODEL).run(None, {"x": np.zeros((1, 1), dtype=np.float32)})
    runtime_init = runtime.result()["peak_rss_delta_bytes"]
    probe = _MemoryProbe()
    session = _session(model_bytes)
    for i in range(opts["warmup"]):
        session.run(None, _rows(feeds, np.array([i % n])))
    budget = opts["budget_seconds"] / 2
    latency = _latency(session, feeds, n, opts["runs"], budget)
    throughput = _throughput(session, feeds, n, opts["batch_size"], opts["min_seconds"], budget)
    return {
        "model_size_bytes": len(model_bytes),
        "latency_ms": latency,
        "throughput": throughput,
        "memory": {**probe.result(), "runtime_init_bytes": runtime_init},
        "intra_op_threads": 1,
        "onnxruntime_version": ort.__version__,
    }


_CHILD = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_modelgate_operational', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module.child_main()\n"
)


def child_main() -> None:
    """Entry of the measuring process: pickled (model, feeds, opts) in, pickled result out."""
    model_bytes, feeds, opts = pickle.loads(sys.stdin.buffer.read())
    try:
        result: dict[str, Any] = {"ok": _measure(model_bytes, feeds, opts)}
    except Exception as exc:  # reported to the parent as one line
        result = {"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]}
    sys.stdout.buffer.write(pickle.dumps(result))


def _in_child(model_bytes: bytes, feeds: Mapping[str, np.ndarray], opts: Mapping[str, Any]) -> dict:
    payload = pickle.dumps((model_bytes, dict(feeds), dict(opts)))
    limit = opts["budget_seconds"] + 120  # the loops stop by budget; this covers loading
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, __file__],
            input=payload,
            capture_output=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"operational profiling took longer than {limit:.0f} s") from None
    try:
        result = pickle.loads(done.stdout) if done.returncode == 0 else None
    except (pickle.UnpicklingError, EOFError):
        result = None
    if result is None:
        tail = done.stderr.decode(errors="replace").strip().splitlines()
        why = tail[-1][:300] if tail else f"exit status {done.returncode}"
        raise RuntimeError(f"operational profiling process failed: {why}")
    if "error" in result:
        raise RuntimeError(f"operational profiling failed: {result['error']}")
    return result["ok"]


def measure_operational(
    model_bytes: bytes,
    feeds: Mapping[str, np.ndarray],
    *,
    runs: int = 300,
    warmup: int = 20,
    batch_size: int = 64,
    min_seconds: float = 0.5,
    budget_seconds: float = 10.0,
    isolated: bool = True,
) -> dict[str, Any]:
    """Profile the artifact on ``feeds`` (graph inputs holding at least one row each).

    Raises RuntimeError (one line) when the measuring process fails.
    """
    opts = {
        "runs": runs,
        "warmup": warmup,
        "batch_size": batch_size,
        "min_seconds": min_seconds,
        "budget_seconds": budget_seconds,
    }
    if isolated:
        try:
            return {**_in_child(model_bytes, feeds, opts), "process": "fresh subprocess"}
        except OSError:
            pass  # cannot start a process here (sandbox, frozen app): measure in-process
    return {**_measure(model_bytes, feeds, opts), "process": "in-process"}
