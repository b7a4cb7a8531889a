"""Micro-benchmark: the per-request cost of Prometheus metrics, by recording strategy.

    python -m benchmarks.metrics_bench [--calls 100000] [--reps 5]

One "request" is what the gateway records for a single-row classification: the request
counter and duration, the batch size and inference duration of its ORT call, its predicted
class and confidence (and the low-confidence counter when it is low). Strategies:

* ``direct``      prometheus_client children bound up front; inc/observe per request
* ``labels``      the same through ``.labels(...)`` per request (what binding avoids)
* ``deferred``    values appended to lists per request, observed by a later flush
* ``accumulate``  ``VariantMetrics`` (plain list slots + bisect), flushed as deltas

Each runs ``--calls`` requests timed with perf_counter_ns, the flush cost included (one
flush per 10,000 requests, about once a second at this gateway's rate), minus an empty
loop over the same inputs; the best of ``--reps`` interleaved repetitions is reported.
Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``: every write goes to an mmap) is measured
in a child process, since prometheus_client picks its storage when first imported. A
second table times ``record_predictions`` for batches, with the Python-loop and numpy
paths forced, which is how ``metrics.variant.NUMPY_ROWS`` was chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

FLUSH_EVERY = 10_000
CLASSES = ("a", "b", "c")


def _inputs(n: int = 1024) -> tuple[list[int], list[int], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    request_ns = (rng.lognormal(np.log(120e3), 0.6, n)).astype(int).tolist()
    infer_ns = (rng.lognormal(np.log(15e3), 0.5, n)).astype(int).tolist()
    classes = [np.array([c]) for c in rng.integers(0, len(CLASSES), n)]
    conf = [np.array([x], dtype=np.float32) for x in rng.uniform(0.34, 1.0, n)]
    return request_ns, infer_ns, classes, conf


def _strategies(registry: Any) -> dict[str, Callable[[int], int]]:
    from prometheus_client import CollectorRegistry

    from gateway.monitoring.metrics.families import ROUTE_WEIGHTED, MetricFamilies

    req_ns, inf_ns, cls, conf = _inputs()
    mask = len(req_ns) - 1

    # the prometheus_client strategies get a registry of their own (same families)
    fam = MetricFamilies(CollectorRegistry())
    m, v = "bench", "1.0.0"
    req = fam.requests.labels(m, v, "weighted", "200")
    req_h = fam.request_duration.labels(m, v)
    inf_h = fam.inference_duration.labels(m, v)
    batch_h = fam.batch_size.labels(m, v)
    pred = [fam.predictions.labels(m, v, c) for c in CLASSES]
    conf_h = fam.confidence.labels(m, v)
    low = fam.low_confidence.labels(m, v)

    def baseline(n: int) -> int:
        t = time.perf_counter_ns()
        for i in range(n):
            j = i & mask
            _ = (req_ns[j], inf_ns[j], cls[j], conf[j])
        return time.perf_counter_ns() - t

    def direct(n: int) -> int:
        t = time.perf_counter_ns()
        for i in range(n):
            j = i & mask
            req.inc()
            req_h.observe(req_ns[j] * 1e-9)
            inf_h.observe(inf_ns[j] * 1e-9)
            batch_h.observe(1)
            pred[int(cls[j][0])].inc()
            x = float(conf[j][0])
            conf_h.observe(x)
            if x < 0.6:
                low.inc()
        return time.perf_counter_ns() - t

    def labels(n: int) -> int:
        f = fam
        t = time.perf_counter_ns()
        for i in range(n):
            j = i & mask
            f.requests.labels(m, v, "weighted", "200").inc()
            f.request_duration.labels(m, v).observe(req_ns[j] * 1e-9)
            f.inference_duration.labels(m, v).observe(inf_ns[j] * 1e-9)
            f.batch_size.labels(m, v).observe(1)
            f.predictions.labels(m, v, CLASSES[int(cls[j][0])]).inc()
            x = float(conf[j][0])
            f.confidence.labels(m, v).observe(x)
            if x < 0.6:
                f.low_confidence.labels(m, v).inc()
        return time.perf_counter_ns() - t

    pending: list[tuple[int, int, int, float]] = []

    def deferred_flush() -> None:
        for r, k, c, x in pending:
            req.inc()
            req_h.observe(r * 1e-9)
            inf_h.observe(k * 1e-9)
            batch_h.observe(1)
            pred[c].inc()
            conf_h.observe(x)
            if x < 0.6:
                low.inc()
        pending.clear()

    def deferred(n: int) -> int:
        append = pending.append
        t = time.perf_counter_ns()
        for i in range(n):
            j = i & mask
            append((req_ns[j], inf_ns[j], int(cls[j][0]), float(conf[j][0])))
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                deferred_flush()
        deferred_flush()
        return time.perf_counter_ns() - t

    vm = registry.bind_variant("bench-acc", "1.0.0", CLASSES)

    def accumulate(n: int) -> int:
        record_request, record_batch = vm.record_request, vm.record_batch
        record_predictions = vm.record_predictions
        t = time.perf_counter_ns()
        for i in range(n):
            j = i & mask
            record_request(ROUTE_WEIGHTED, 200, req_ns[j])
            record_batch(1, inf_ns[j])
            record_predictions(1, cls[j], conf[j])
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                vm.flush()
        vm.flush()
        return time.perf_counter_ns() - t

    return {
        "baseline": baseline,
        "direct": direct,
        "labels": labels,
        "deferred": deferred,
        "accumulate": accumulate,
    }


def _batch_paths(registry: Any, calls: int, reps: int) -> list[dict[str, Any]]:
    from gateway.monitoring.metrics import variant as metrics_variant

    vm = registry.bind_variant("bench-batch", "1.0.0", CLASSES)
    default = metrics_variant.NUMPY_ROWS
    rng = np.random.default_rng(1)
    rows = []
    for n in (2, 4, 8, 16, 32, 64, 256):
        idx = rng.integers(0, len(CLASSES), n)
        conf = rng.uniform(0.34, 1.0, n).astype(np.float32)
        k = max(1000, calls // max(n, 8))
        best: dict[str, float] = {}
        for _ in range(reps):
            for name, threshold in (("loop", 1 << 30), ("numpy", 2)):
                metrics_variant.NUMPY_ROWS = threshold
                t = time.perf_counter_ns()
                for _ in range(k):
                    vm.record_predictions(n, idx, conf)
                ns = (time.perf_counter_ns() - t) / k
                best[name] = min(best.get(name, ns), ns)
        rows.append({"rows": n, "loop_ns": best["loop"], "numpy_ns": best["numpy"]})
    metrics_variant.NUMPY_ROWS = default
    return rows


def measure(calls: int, reps: int) -> dict[str, Any]:
    from gateway.monitoring.metrics.prometheus import get_metrics

    registry = get_metrics()  # multiprocess when PROMETHEUS_MULTIPROC_DIR is set
    strategies = _strategies(registry)
    for run in strategies.values():  # warm up
        run(min(calls, 10_000))
    best: dict[str, int] = {}
    for _ in range(reps):
        for name, run in strategies.items():
            best[name] = min(best.get(name, 1 << 62), run(calls))
    base = best.pop("baseline")
    per_request = {name: max(0, ns - base) / calls for name, ns in best.items()}
    return {"per_request_ns": per_request, "batches": _batch_paths(registry, calls, reps)}


def _child(mode: str, calls: int, reps: int) -> dict[str, Any]:
    """Run ``measure`` in a fresh interpreter (multiprocess mode needs a fresh import)."""
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="modelgate-metrics-bench-") as tmp:
        if mode == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.metrics_bench", "--child", mode]
            + ["--calls", str(calls), "--reps", str(reps)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_bench")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--child", choices=("single", "multiprocess"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.calls, args.reps)))
        return 0
    results = {mode: _child(mode, args.calls, args.reps) for mode in ("single", "multiprocess")}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"per request, best of {args.reps} x {args.calls:,} calls (flush cost included)\n")
    print("| strategy | single process (µs) | multiprocess (µs) |")
    print("| --- | ---: | ---: |")
    for name in results["single"]["per_request_ns"]:
        single = results["single"]["per_request_ns"][name] / 1000
        multi = results["multiprocess"]["per_request_ns"][name] / 1000
        print(f"| {name} | {single:.2f} | {multi:.2f} |")
    print("\nrecord_predictions per call, single process (µs)\n")
    print("| rows | Python loop | numpy |")
    print("| ---: | ---: | ---: |")
    for row in results["single"]["batches"]:
        print(f"| {row['rows']} | {row['loop_ns'] / 1000:.2f} | {row['numpy_ns'] / 1000:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
