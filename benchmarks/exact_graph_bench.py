"""Micro-benchmark: what the exact-double graph costs per row against the float32 graph.

    python benchmarks/exact_graph_bench.py [--out benchmarks/results/exact_graph_bench.json]
                                           [--repeats 5] [--rounds 15]

For each model, both graphs (``converters.convert(..., graph=...)``) run in onnxruntime
with the gateway's session options (one intra-op and one inter-op thread), on the same
rows, interleaved round by round so that machine drift hits both alike:

* one row per ``run`` call (the single-request path): a loop over 200 different rows,
  per call;
* 1,000 rows in one ``run`` call (a batch): ``--repeats`` calls, per row;

each the median of ``--rounds`` timings. Times are CPU time of the calling thread
(``time.thread_time_ns``): with one intra-op thread onnxruntime runs the graph on it, and
CPU time does not count the time other processes hold the core (a shared 2-core machine
under load varies wall-clock figures by +-30 % between runs).

The result that matters is the ratio exact / float32 per model and mode (absolute figures
move by tens of percent on a shared machine; the ratio measured in one run does not).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from converters.runner import feeds
from converters.sklearn_onnx import GRAPHS, convert
from gateway.dataplane.runner import session_options

NUMERIC = ["tenure", "charges", "usage"]
STRINGS = ["plan", "region"]
SINGLE_ROWS = 200
BATCH_ROWS = 1000


def churn(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "charges": rng.normal(60, 20, rows).round(2),
            "usage": rng.gamma(2.0, 30.0, rows).round(1),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "region": rng.choice(["eu", "us", "apac"], rows),
        }
    )
    logit = -0.04 * frame.tenure + 0.03 * (frame.charges - 60) + (frame.plan == "basic")
    return frame, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


def models() -> dict[str, tuple[Pipeline, list[str]]]:
    columns = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
            ("num", StandardScaler(), NUMERIC),
        ]
    )
    return {
        "issue: columns + HGB(100)": (
            Pipeline([("prep", columns), ("model", HistGradientBoostingClassifier())]),
            NUMERIC + STRINGS,
        ),
        "scaler + RF(100)": (
            Pipeline([("s", StandardScaler()), ("m", RandomForestClassifier(100))]),
            NUMERIC,
        ),
        "scaler + GB(100)": (
            Pipeline([("s", StandardScaler()), ("m", GradientBoostingClassifier())]),
            NUMERIC,
        ),
    }


def _single(sess: ort.InferenceSession, rows: list[dict[str, Any]]) -> float:
    """ns per call, one row per call."""
    started = time.thread_time_ns()
    for row in rows:
        sess.run(None, row)
    return (time.thread_time_ns() - started) / len(rows)


def _batch(sess: ort.InferenceSession, many: dict[str, Any], repeats: int) -> float:
    """ns per row, BATCH_ROWS rows per call."""
    started = time.thread_time_ns()
    for _ in range(repeats):
        sess.run(None, many)
    return (time.thread_time_ns() - started) / repeats / BATCH_ROWS


def measure(
    sessions: dict[str, tuple[ort.InferenceSession, dict[str, Any]]],
    frame: pd.DataFrame,
    repeats: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """ns per row call (single) and ns per row (batch) for each graph, interleaved."""
    single: dict[str, list[float]] = {g: [] for g in sessions}
    batch: dict[str, list[float]] = {g: [] for g in sessions}
    prepared = {}
    for graph, (sess, schema) in sessions.items():
        rows = [feeds(schema, frame.iloc[[i]]) for i in range(SINGLE_ROWS)]
        many = feeds(schema, frame.iloc[:BATCH_ROWS])
        prepared[graph] = (sess, rows, many)
        sess.run(None, many)  # warm-up
    for _ in range(rounds):
        for graph, (sess, rows, many) in prepared.items():
            single[graph].append(_single(sess, rows))
            batch[graph].append(_batch(sess, many, repeats))
    return {
        graph: {
            "single_row_us": statistics.median(single[graph]) / 1000,
            "batch_per_row_us": statistics.median(batch[graph]) / 1000,
        }
        for graph in sessions
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/exact_graph_bench.json")
    )
    parser.add_argument("--repeats", type=int, default=5, help="batch calls per timing")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timings per graph")
    args = parser.parse_args(argv)
    X, y = churn(3000)
    results: dict[str, Any] = {}
    for name, (pipeline, columns) in models().items():
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            pipeline.fit(X[columns], y)
        sessions = {}
        for graph in GRAPHS:
            conversion = convert(pipeline, X[columns], graph=graph)
            sess = ort.InferenceSession(
                conversion.onnx_bytes, session_options(1), providers=["CPUExecutionProvider"]
            )
            sessions[graph] = (sess, conversion.schema)
        timings = measure(sessions, X[columns], args.repeats, args.rounds)
        fast, exact = timings["float32"], timings["exact-double"]
        results[name] = {
            **timings,
            "ratio_single": exact["single_row_us"] / fast["single_row_us"],
            "ratio_batch": exact["batch_per_row_us"] / fast["batch_per_row_us"],
        }
        print(
            f"{name:28} single row: float32 {fast['single_row_us']:7.1f} us, exact "
            f"{exact['single_row_us']:7.1f} us (x{results[name]['ratio_single']:.2f}); "
            f"batch of {BATCH_ROWS}: {fast['batch_per_row_us']:6.2f} vs "
            f"{exact['batch_per_row_us']:6.2f} us/row (x{results[name]['ratio_batch']:.2f})"
        )
    document = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "onnxruntime": ort.__version__,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
