"""RSS per onnxruntime session under different session options, and their single-row latency.

``python -m benchmarks.ort_memory [--sessions N] [--out FILE]``: for each model family of
``benchmarks/scale.py`` and each option set, a fresh process creates N sessions of the
family's ONNX the way ``gateway/dataplane/runner.py`` does, warms each up (5 single-row
runs and one of 64 rows, like the loader and a first batch), and reports the RSS growth
per session and the median run time of one row and of 64 rows over the sessions. The option sets:

* ``default``: onnxruntime's defaults around the gateway's threading (arena on, memory
  patterns on, per-session thread pools with ``intra_op_num_threads=1``);
* ``no-arena``: ``enable_cpu_mem_arena = False`` (what ``runner.py`` sets);
* ``no-pattern``: ``enable_mem_pattern = False``;
* ``no-arena-no-pattern``: both;
* ``global-threads``: ``use_per_session_threads = False`` with the process-wide pools set by
  ``onnxruntime.capi._pybind_state.set_global_thread_pool_sizes(1, 1)`` before any session.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OPTION_SETS = ("default", "no-arena", "no-pattern", "no-arena-no-pattern", "global-threads")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _median_run_us(session: Any, feeds: dict[str, Any], runs: int) -> float:
    """Median wall time of ``runs`` calls of ``session.run(None, feeds)``, in microseconds."""
    timings = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        timings.append(time.perf_counter_ns() - start)
    return statistics.median(timings) / 1000.0


def child(family: str, options_name: str, sessions: int) -> dict[str, Any]:
    """Runs in its own process: N sessions with one option set."""
    import numpy as np
    import onnxruntime as ort

    from benchmarks.models import request_rows, to_onnx_bytes
    from benchmarks.scale import estimator
    from gateway.dataplane.runner import session_options

    data = to_onnx_bytes(estimator(family, 0))
    rows = request_rows(64)
    one = {"input": rows[:1]}
    batch = {"input": np.ascontiguousarray(rows)}
    if options_name == "global-threads":
        from onnxruntime.capi import _pybind_state

        _pybind_state.set_global_thread_pool_sizes(1, 1)

    def options_for() -> Any:
        options = session_options(1)
        options.enable_cpu_mem_arena = options_name not in ("no-arena", "no-arena-no-pattern")
        if options_name in ("no-pattern", "no-arena-no-pattern"):
            options.enable_mem_pattern = False
        if options_name == "global-threads":
            options.use_per_session_threads = False
        return options

    # one session first, so the library's own allocations are not counted per session
    ort.InferenceSession(data, sess_options=options_for(), providers=["CPUExecutionProvider"])
    base = _rss_kib()
    kept = []
    latencies: list[float] = []
    batch_latencies: list[float] = []
    for _ in range(sessions):
        options = options_for()
        session = ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
        for _ in range(5):
            session.run(None, one)
        session.run(None, batch)
        latencies.append(_median_run_us(session, one, 200))
        batch_latencies.append(_median_run_us(session, batch, 50))
        kept.append(session)
    grown = _rss_kib() - base
    return {
        "family": family,
        "options": options_name,
        "sessions": sessions,
        "onnx_kib": len(data) / 1024.0,
        "rss_per_session_kib": grown / sessions,
        "single_row_us": statistics.median(latencies),
        "batch_64_us": statistics.median(batch_latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "OPTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.sessions)))
        return 0
    from benchmarks.scale import ORDER

    rows = []
    for family in ORDER:
        for options in OPTION_SETS:
            command = [sys.executable, "-m", "benchmarks.ort_memory", "--child", family, options]
            command += ["--sessions", str(args.sessions)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{family:8s} {options:20s} {row['rss_per_session_kib']:8.0f} KiB/session "
                f"{row['single_row_us']:7.1f} us/row {row['batch_64_us']:7.1f} us/64 rows "
                f"(ONNX {row['onnx_kib']:.0f} KiB)",
                flush=True,
            )
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
