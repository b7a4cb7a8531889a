"""Micro-benchmark: incremental numba PSI against the usual numpy recomputation.

    python benchmarks/drift_bench.py [--out benchmarks/results/drift_bench.json] [--repeats 15]

Side by side in one run, medians over repeats (``time.perf_counter_ns``):

(a) updating the bin counts of 30 features as rows enter a 10,000-row ring (and the rows
    they replace leave it): one row per call as the gateway records, and amortised over
    batches; also the whole ``PredictionWindow.record`` call for context. Target <= 1 us/row.
(b) PSI of all 30 features from those counts. Target <= 10 us.
(c) the textbook ``calculate_psi`` (np.histogram, below) recomputed for 30 features over a
    10,000-row reference and a 1,000-row window; reported as a ratio to (b), target >= 1,000x.
(d) for reference, our semantics recomputed in plain numpy (``stats.psi_reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from gateway.monitoring import psi_numba
from gateway.monitoring.reference import Reference
from gateway.monitoring.stats import PSI_EPS, proportions, psi_reference, quantile_edges
from gateway.monitoring.window import PredictionWindow

FEATURES = 30
REFERENCE_ROWS = 10_000
WINDOW_ROWS = 1_000
RING_ROWS = 10_000


# --- baseline: the textbook calculate_psi (docs/performance-notes.md, numba PSI) -----------
def calculate_psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """
    Calculate Population Stability Index

    PSI < 0.1: No significant change
    PSI < 0.2: Small change
    PSI >= 0.2: Significant change (retrain recommended)
    """
    # Create bins
    breakpoints = np.percentile(expected, np.linspace(0, 100, bins + 1))

    # Calculate distributions
    expected_dist = np.histogram(expected, bins=breakpoints)[0] / len(expected)
    actual_dist = np.histogram(actual, bins=breakpoints)[0] / len(actual)

    # Avoid division by zero
    expected_dist = np.where(expected_dist == 0, 0.0001, expected_dist)
    actual_dist = np.where(actual_dist == 0, 0.0001, actual_dist)

    # Calculate PSI
    psi = np.sum((actual_dist - expected_dist) * np.log(actual_dist / expected_dist))

    return psi


# ---------------------------------------------------------------------------------------------


def median_ns(fn: Callable[[int], object], calls: int, repeats: int) -> tuple[float, float]:
    """(median, min) over ``repeats`` of the mean time of one call ``fn(i)`` in a loop of
    ``calls``; on a shared machine the min is the better estimate of the undisturbed cost."""
    fn(0)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for i in range(calls):
            fn(i)
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples), min(samples)


def machine() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def build(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    reference = rng.normal(
        rng.uniform(-3, 3, FEATURES), rng.uniform(0.5, 3, FEATURES), (REFERENCE_ROWS, FEATURES)
    )
    window = rng.normal(0.1, 1.1, (WINDOW_ROWS, FEATURES)) + reference.mean(axis=0)
    stored = {"numerical": {}}
    for j in range(FEATURES):
        edges = quantile_edges(reference[:, j])
        stored["numerical"][f"x{j}"] = {
            "edges": edges.tolist(),
            "proportions": proportions(edges, reference[:, j]).tolist(),
        }
    return reference, window, stored


def run(repeats: int) -> dict[str, object]:
    load_start = os.getloadavg()
    rng = np.random.default_rng(0)
    reference, window_rows, stored = build(rng)
    psi_numba.warmup()
    stream = rng.normal(size=(RING_ROWS * 2, FEATURES)).astype(np.float32)
    # the kernel's own arrays, laid out as PredictionWindow lays them (see psi_numba)
    ref = Reference.from_dict(stored)
    ring = np.full((RING_ROWS, FEATURES), np.nan)
    edges = ref.edges
    counts = np.zeros((FEATURES, edges.shape[1] + 2), dtype=np.int64)
    counts[:, -1] = RING_ROWS
    psi_numba.ring_update(ring, stream[:RING_ROWS], 0, edges, counts)  # a full ring
    window = PredictionWindow(stored, capacity=RING_ROWS)
    window.record(stream[:RING_ROWS], None, np.zeros(RING_ROWS), None, 0.001)
    rows: list[dict[str, object]] = []

    def row(name: str, ns: tuple[float, float], unit_rows: int = 1, target: str = "") -> None:
        median, best = (value / unit_rows for value in ns)
        rows.append({"measure": name, "ns": median, "min_ns": best, "target": target})

    singles = [stream[RING_ROWS + i : RING_ROWS + i + 1] for i in range(RING_ROWS)]

    def update_one(i: int) -> None:  # each call replaces the next slot's row, as serving does
        psi_numba.ring_update(ring, singles[i], i, edges, counts)

    row(
        "harness: empty call in the timing loop (included in every row)",
        median_ns(lambda i: None, RING_ROWS, repeats),
    )
    update_ns = median_ns(update_one, RING_ROWS, repeats)
    row("(a) count update, 1 row/call, 30 features", update_ns, target="<= 1000 ns/row")
    for batch in (16, 64, 256, 1000):
        chunk = stream[:batch]

        def update_batch(i: int, chunk: np.ndarray = chunk) -> None:
            psi_numba.ring_update(ring, chunk, 0, edges, counts)

        ns = median_ns(update_batch, max(20, 20_000 // batch), repeats)
        row(f"(a) count update, batch {batch}, per row", ns, batch, "<= 1000 ns/row")
    one, preds, conf = stream[:1], np.zeros(1), np.full(1, 0.9, dtype=np.float32)

    def record_one(i: int) -> None:
        window.record(one, None, preds, conf, 0.001)

    row(
        "(a') PredictionWindow.record, 1 row/call (whole call)",
        median_ns(record_one, 20_000, repeats),
    )

    def psi_all(i: int) -> None:
        psi_numba.psi_from_counts(counts, ref.expected, PSI_EPS)

    psi_ns = median_ns(psi_all, 20_000, repeats)
    row("(b) PSI of 30 features from counts", psi_ns, target="<= 10000 ns")

    def guide(_: int) -> None:
        for j in range(FEATURES):
            calculate_psi(reference[:, j], window_rows[:, j])

    def ours_numpy(_: int) -> None:
        for j in range(FEATURES):
            psi_reference(reference[:, j], window_rows[:, j])

    guide_ns = median_ns(guide, 3, repeats)
    row("(c) guide calculate_psi, 30 features (10k ref, 1k window)", guide_ns)
    row(
        "(d) stats.psi_reference (numpy, our semantics), 30 features",
        median_ns(ours_numpy, 3, repeats),
    )
    ratio = guide_ns[0] / psi_ns[0]
    return {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": {**machine(), "load_average_start": load_start},
        "repeats": repeats,
        "features": FEATURES,
        "reference_rows": REFERENCE_ROWS,
        "window_rows": WINDOW_ROWS,
        "ring_rows": RING_ROWS,
        "results": rows,
        "ratio_guide_over_incremental_psi": ratio,
        "targets_met": {
            "update_1_row_le_1us": update_ns[0] <= 1000,
            "psi_le_10us": psi_ns[0] <= 10_000,
            "ratio_ge_1000x": ratio >= 1000,
        },
        "load_average_end": os.getloadavg(),
    }


def table(result: dict) -> str:
    def shown(ns: float) -> str:
        return f"{ns / 1e6:,.2f} ms" if ns >= 1e5 else f"{ns:,.0f} ns"

    lines = ["| measure | median | min | target |", "| --- | ---: | ---: | --- |"]
    for r in result["results"]:
        median, best = shown(r["ns"]), shown(r["min_ns"])
        lines.append(f"| {r['measure']} | {median} | {best} | {r['target']} |")
    ratio = result["ratio_guide_over_incremental_psi"]
    lines.append(f"| ratio (c) / (b), medians | {ratio:,.0f}x | | >= 1000x |")
    m = result["machine"]
    lines += [
        "",
        f"machine: {m['cpu_model']}, {m['cores']} cores "
        f"(load average {m['load_average_start'][0]:.2f} at start, "
        f"{result['load_average_end'][0]:.2f} at end)",
        f"command: `{result['command']}`",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drift_bench.json"))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    result = run(args.repeats)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
