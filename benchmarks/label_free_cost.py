"""Cost per drift cycle of the label-free monitors on a full 10,000-row window.

    python benchmarks/label_free_cost.py [--repeats 15] [--classes 3 10 20] [--quick]
        [--out benchmarks/results/label_free_cost.json] [--no-report]

(also ``python -m benchmarks.label_free_cost``; ``python -m benchmarks`` runs it as an
extra, ``benchmarks/extras.py``). Medians over repeats (``time.perf_counter_ns``), with
min–max, of what the drift timer runs per version (``gateway.monitoring.timers``):

* binary: the multivariate check (encode, project on the PCA components, mean
  reconstruction error, bounds) over 30 numerical features and 2 categorical ones, and the
  estimated accuracy and ROC AUC of a binary classifier;
* multiclass, 3, 10 and 20 classes: a reference built as registration builds it
  (``converters.reference.build_reference`` with a labelled sample: the top-label map and one
  one-vs-rest map per class), its ``Calibration`` and a window keeping the probability
  vectors (sized as ``gateway.monitoring.binder.label_free_monitors`` sizes it), filled
  past its capacity in flushes of ``FLUSH_REQUESTS`` single-row requests as the recorder's
  flush stores them (class index, top probability, float32 probability rows). Timed: the
  snapshot (``PredictionWindow.snapshot``, on the event loop), the estimate
  (``Calibration.check``, what ``gateway.monitoring.reports.label_free`` runs in the worker
  thread: accuracy and macro one-vs-rest ROC AUC) and, for comparison, the accuracy alone;
  with the probability ring's bytes per class.

Neither runs on the request path. Writes the JSON to ``--out`` and, unless ``--no-report``,
the ``label_free_cost`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.machine import machine_line
from benchmarks.readme_section import README, publish, write_section
from converters.reference import MAX_CLASS_MAPS, build_reference, calibration_model
from gateway.monitoring.performance_estimate import Calibration
from gateway.monitoring.reconstruction import ReconstructionModel
from gateway.monitoring.recorder import FLUSH_REQUESTS
from gateway.monitoring.window import DEFAULT_CAPACITY, PredictionWindow, WindowSnapshot

NAME = "label_free_cost"
ROWS, NUMERIC, SAMPLE, MIN_SAMPLES = DEFAULT_CAPACITY, 30, 5000, 200
CATEGORICAL = ("plan", "region")
CLASSES = (3, 10, 20)
QUICK_REPEATS = 3


def features(rng: np.random.Generator, mixing: np.ndarray, n: int, shift: float = 0.0):
    """Correlated numerical columns (float32, as served) and two categorical ones."""
    numeric = (rng.normal(size=(n, NUMERIC)) + shift) @ mixing
    return numeric.astype(np.float32), rng.choice(["a", "b", "c", "d"], size=(n, 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classes_of(rng: np.random.Generator, numeric: np.ndarray, weights: np.ndarray):
    """Labels ~ softmax(2 x.W); the model's probabilities softmax(4 x.W) as float32 (an
    ONNX classifier's output): the right ranking, overconfident, so calibration matters."""
    z = numeric.astype(np.float64) @ weights
    true = softmax(2.0 * z)
    labels = (rng.random((len(z), 1)) > true.cumsum(axis=1)).sum(axis=1)
    return softmax(4.0 * z).astype(np.float32), np.minimum(labels, weights.shape[1] - 1)


def spread(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def timed(job: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Milliseconds per call: median, min, max over ``repeats`` calls after one warm-up."""
    job()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        job()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return spread(times)


def binary(rng: np.random.Generator, repeats: int) -> dict[str, Any]:
    """The multivariate check and the binary estimate, as first measured."""
    names = [f"x{j}" for j in range(NUMERIC)]
    mixing = rng.normal(size=(NUMERIC, NUMERIC)) / np.sqrt(NUMERIC)
    frame = pd.DataFrame(rng.normal(size=(SAMPLE, NUMERIC)) @ mixing, columns=names)
    for c in CATEGORICAL:
        frame[c] = rng.choice(["a", "b", "c", "d"], size=SAMPLE)
    schema = {
        "task": "regression",
        "features": [{"name": n, "kind": "numerical"} for n in names]
        + [{"name": c, "kind": "categorical"} for c in CATEGORICAL],
        "value_output": "v",
    }
    reference = build_reference(schema, frame, {"v": np.zeros(SAMPLE)})
    window = PredictionWindow(reference, capacity=ROWS)
    codes = rng.integers(0, 4, size=(ROWS, 2)).astype(np.int32)
    window.record(rng.normal(size=(ROWS, NUMERIC)) @ mixing, codes, np.zeros(ROWS), None, 0.0)
    snap = window.snapshot()
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    p1 = rng.random(SAMPLE)
    spec = calibration_model(np.column_stack([1 - p1, p1]), (rng.random(SAMPLE) < p1).astype(int))
    calibration = Calibration.from_reference({"calibration": spec})
    assert calibration is not None
    predictions = rng.integers(0, 2, size=ROWS).astype(np.float64)
    confidence = 0.5 + rng.random(ROWS) / 2
    return {
        "components": int(model.components.shape[0]),
        "multivariate_ms": timed(lambda: model.check(snap, min_samples=MIN_SAMPLES), repeats),
        "estimate_ms": timed(
            lambda: calibration.estimate(predictions, confidence, min_samples=MIN_SAMPLES),
            repeats,
        ),
    }


def registered(rng: np.random.Generator, mixing: np.ndarray, weights: np.ndarray):
    """The reference registration stores for a k-class model and a labelled sample."""
    k = weights.shape[1]
    numeric, categorical = features(rng, mixing, SAMPLE)
    names = [f"x{j}" for j in range(NUMERIC)]
    frame = pd.DataFrame(numeric, columns=names)
    for j, c in enumerate(CATEGORICAL):
        frame[c] = categorical[:, j]
    probabilities, labels = classes_of(rng, numeric, weights)
    classes = [f"c{i}" for i in range(k)]
    schema = {
        "task": "classification",
        "features": [{"name": n, "kind": "numerical"} for n in names]
        + [{"name": c, "kind": "categorical"} for c in CATEGORICAL],
        "classes": classes,
        "label_output": "label",
        "probability_output": "probabilities",
    }
    outputs = {
        "label": np.asarray(classes)[probabilities.argmax(axis=1)],
        "probabilities": probabilities,
    }
    return build_reference(schema, frame, outputs, labels=np.asarray(classes)[labels])


def filled_window(
    rng: np.random.Generator,
    reference: dict[str, Any],
    calibration: Calibration,
    mixing: np.ndarray,
    weights: np.ndarray,
    *,
    keep_probabilities: bool = True,
) -> tuple[PredictionWindow, np.ndarray]:
    """A window past its capacity (the ring has wrapped, as in steady state), recorded in
    flushes as ``VariantRecorder._flush_inferences`` records; and the rows' labels. Without
    ``keep_probabilities``: the window of a version without per-class maps."""
    columns = calibration.probability_columns if keep_probabilities else 0
    window = PredictionWindow(reference, capacity=ROWS, probability_columns=columns)
    encoders = window.category_encoders
    total = ROWS + ROWS // 4
    numeric, categorical = features(rng, mixing, total, shift=0.3)  # covariate shift
    probabilities, labels = classes_of(rng, numeric, weights)
    codes = np.column_stack(
        [[mapping.get(v, other) for v in categorical[:, j]] for j, (mapping, other) in
         enumerate(encoders)]
    ).astype(np.int32)  # fmt: skip
    for start in range(0, total, FLUSH_REQUESTS):
        rows = slice(start, start + FLUSH_REQUESTS)
        probs = probabilities[rows]
        index = probs.argmax(axis=1)
        window.record(
            numeric[rows],
            codes[rows],
            index.astype(np.float64),
            probs.max(axis=1).astype(np.float64),
            0.001,
            probs if columns else None,
        )
    return window, labels[-ROWS:]


def multiclass(rng: np.random.Generator, k: int, repeats: int) -> dict[str, Any]:
    mixing = rng.normal(size=(NUMERIC, NUMERIC)) / np.sqrt(NUMERIC)
    weights = rng.normal(size=(NUMERIC, k)) / np.sqrt(NUMERIC)
    reference = registered(rng, mixing, weights)
    calibration = Calibration.from_reference(reference)
    assert calibration is not None and calibration.probability_columns == k
    window, labels = filled_window(rng, reference, calibration, mixing, weights)
    plain, _ = filled_window(rng, reference, calibration, mixing, weights, keep_probabilities=False)
    snap: WindowSnapshot = window.snapshot()
    assert snap.probabilities is not None and snap.size == ROWS
    estimate = calibration.check(snap, min_samples=MIN_SAMPLES)
    assert estimate.accuracy is not None and estimate.roc_auc is not None
    return {
        "classes": k,
        "snapshot_ms": timed(window.snapshot, repeats),
        "snapshot_without_ring_ms": timed(plain.snapshot, repeats),
        "estimate_ms": timed(lambda: calibration.check(snap, min_samples=MIN_SAMPLES), repeats),
        "accuracy_only_ms": timed(
            lambda: calibration.estimate(
                snap.predictions, snap.confidence, min_samples=MIN_SAMPLES
            ),
            repeats,
        ),
        "ring_bytes": int(snap.probabilities.nbytes),
        "ring_bytes_per_class": int(snap.probabilities.nbytes) // k,
        "estimated_accuracy": estimate.accuracy.value,
        "realized_accuracy": float((snap.predictions == labels).mean()),
        "estimated_roc_auc": estimate.roc_auc.value,
    }


def _ms(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def render(result: dict[str, Any]) -> str:
    b = result["binary"]
    lines = [
        f"| what (full {ROWS:,}-row window) | ms per drift cycle, median (min–max) |",
        "| --- | ---: |",
        f"| multivariate check, {NUMERIC}+{len(CATEGORICAL)} features, "
        f"{b['components']} components | {_ms(b['multivariate_ms'])} |",
        f"| binary: estimated accuracy + ROC AUC | {_ms(b['estimate_ms'])} |",
        "",
        "| classes | estimate: accuracy + macro ROC AUC (worker thread) | accuracy alone | "
        "snapshot copy (event loop) | the same window without the ring | "
        "probability ring per class | ring in all |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in result["multiclass"]:
        lines.append(
            f"| {m['classes']} | {_ms(m['estimate_ms'])} | {_ms(m['accuracy_only_ms'])} | "
            f"{_ms(m['snapshot_ms'])} | {_ms(m['snapshot_without_ring_ms'])} | "
            f"{m['ring_bytes_per_class'] / 1000:.0f} KB | "
            f"{m['ring_bytes'] / 1000:.0f} KB |"
        )
    checks = "; ".join(
        f"{m['classes']} classes {m['estimated_accuracy']:.3f} / {m['realized_accuracy']:.3f}"
        for m in result["multiclass"]
    )
    load = result["load_average"]
    return (
        "\n".join(lines)
        + "\n\n"
        + f"{result['repeats']} repeats per row after one warm-up call, ms of wall time. "
        "Multiclass: calibration maps from a labelled 5,000-row sample through "
        "`build_reference` (as registration), the window filled with "
        f"{ROWS + ROWS // 4:,} rows in flushes of {FLUSH_REQUESTS} (the ring has wrapped), "
        "a covariate shift on its inputs; estimated / realized accuracy on it: "
        f"{checks}. The snapshot copies every column of the window (30+2 features, "
        "predictions, the probability ring); the ring is float32 and the snapshot holds a "
        "copy of the same size for the cycle.\n\n"
        f"Run {result['started_at']} on {result['machine']}, load average {load[0]:.2f} at "
        f"start, {load[1]:.2f} at end (2 cores: above ~0.5 other processes were running and "
        f"the figures are disturbed); command: `{result['command']}`.\n"
    )


def write_readme(result: dict[str, Any], readme: Path = README) -> None:
    write_section(NAME, render(result), readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEATS} repeats")
    parser.add_argument(
        "--classes", type=int, nargs="+", default=list(CLASSES), help="multiclass sizes"
    )
    parser.add_argument("--out", type=Path, default=Path(f"benchmarks/results/{NAME}.json"))
    parser.add_argument("--no-report", action="store_true", help="leave the README alone")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    if args.repeats < 1 or any(not 3 <= k <= MAX_CLASS_MAPS for k in args.classes):
        parser.error(f"--repeats must be >= 1 and --classes within 3..{MAX_CLASS_MAPS}")
    repeats = QUICK_REPEATS if args.quick else args.repeats
    rng = np.random.default_rng(0)
    load_start = os.getloadavg()[0]
    result: dict[str, Any] = {
        "schema": 1,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "-m", f"benchmarks.{NAME}", *given]),
        "machine": machine_line(),
        "repeats": repeats,
        "rows": ROWS,
        "binary": binary(rng, repeats),
        "multiclass": [multiclass(rng, k, repeats) for k in args.classes],
    }
    result["load_average"] = [load_start, os.getloadavg()[0]]
    publish(result, args.out, NAME, render(result), report=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
