"""Cost per drift cycle of the label-free monitors on a full 10,000-row window.

    python benchmarks/label_free_cost.py [--repeats 15]

Medians over repeats (``time.perf_counter_ns``) of what the drift timer runs in its worker
thread per version: the multivariate check (encode, project on the PCA components, mean
reconstruction error, bounds) over 30 numerical features and 2 categorical ones, and the
estimated accuracy and ROC AUC of a binary classifier. Neither runs on the request path.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from converters.reference import build_reference, calibration_model
from gateway.monitoring.performance_estimate import Calibration
from gateway.monitoring.reconstruction import ReconstructionModel
from gateway.monitoring.window import PredictionWindow

ROWS, NUMERIC = 10_000, 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [f"x{j}" for j in range(NUMERIC)]
    mixing = rng.normal(size=(NUMERIC, NUMERIC)) / np.sqrt(NUMERIC)
    frame = pd.DataFrame(rng.normal(size=(5000, NUMERIC)) @ mixing, columns=names)
    for c in ("plan", "region"):
        frame[c] = rng.choice(["a", "b", "c", "d"], size=5000)
    schema = {
        "task": "regression",
        "features": [{"name": n, "kind": "numerical"} for n in names]
        + [{"name": c, "kind": "categorical"} for c in ("plan", "region")],
        "value_output": "v",
    }
    reference = build_reference(schema, frame, {"v": np.zeros(5000)})
    window = PredictionWindow(reference, capacity=ROWS)
    codes = rng.integers(0, 4, size=(ROWS, 2)).astype(np.int32)
    window.record(rng.normal(size=(ROWS, NUMERIC)) @ mixing, codes, np.zeros(ROWS), None, 0.0)
    snap = window.snapshot()
    model = ReconstructionModel.from_reference(reference, window.reference)
    assert model is not None
    p1 = rng.random(5000)
    spec = calibration_model(np.column_stack([1 - p1, p1]), (rng.random(5000) < p1).astype(int))
    calibration = Calibration.from_reference({"calibration": spec})
    assert calibration is not None
    predictions = rng.integers(0, 2, size=ROWS).astype(np.float64)
    confidence = 0.5 + rng.random(ROWS) / 2

    def median_ms(job) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter_ns()
            job()
            times.append((time.perf_counter_ns() - start) / 1e6)
        return statistics.median(times)

    mv = median_ms(lambda: model.check(snap, min_samples=200))
    est = median_ms(lambda: calibration.estimate(predictions, confidence, min_samples=200))
    print(f"multivariate check, {ROWS} rows x {NUMERIC}+2 features, "
          f"{model.components.shape[0]} components: {mv:.2f} ms")  # fmt: skip
    print(f"estimated accuracy + ROC AUC, {ROWS} rows: {est:.2f} ms")


if __name__ == "__main__":
    main()
