"""Confidence calibration of a classifier's probabilities.

* Confidence = the top-class probability of a row; a row is correct when the top class
  (argmax of the probabilities, first column on ties) equals the true label.
* Reliability bins: 10 equal-width bins over [0, 1]; bin ``i`` holds ``i/10 <= c <
  (i+1)/10``, the last bin also holds 1.0. Per bin: count, mean confidence, accuracy
  (null for an empty bin).
* Expected calibration error: ``sum_b (n_b / n) * |accuracy_b - confidence_b|``.
* Brier score, scikit-learn's ``brier_score_loss``: binary = mean squared error of the
  positive-class probability against the 0/1 outcome (range 0..1, the same for either
  choice of positive class); multiclass = mean over rows of the SUM over classes of the
  squared one-hot error (Brier's original definition, range 0..2; divide by the number of
  classes for the per-class mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

N_BINS = 10


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS
) -> list[dict[str, Any]]:
    index = np.minimum(np.floor(confidence * n_bins), n_bins - 1).astype(np.int64)
    index = np.maximum(index, 0)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    bins = []
    for i in range(n_bins):
        n = int(counts[i])
        bins.append(
            {
                "lower": i / n_bins,
                "upper": (i + 1) / n_bins,
                "count": n,
                "mean_confidence": float(conf_sum[i] / n) if n else None,
                "accuracy": float(hit_sum[i] / n) if n else None,
            }
        )
    return bins


def expected_calibration_error(bins: list[dict[str, Any]]) -> float:
    total = sum(b["count"] for b in bins)
    return float(
        sum(
            b["count"] / total * abs(b["accuracy"] - b["mean_confidence"])
            for b in bins
            if b["count"]
        )
    )


def brier_score(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> float:
    onehot = (y_true[:, None] == np.asarray(classes)[None, :]).astype(np.float64)
    if proba.shape[1] == 2:
        return float(np.mean((onehot[:, 1] - proba[:, 1]) ** 2))
    return float(np.mean(np.sum((onehot - proba) ** 2, axis=1)))


def calibration_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], n_bins: int = N_BINS
) -> dict[str, Any]:
    class_array = np.asarray(classes)
    top = np.argmax(proba, axis=1)
    confidence = proba[np.arange(len(proba)), top]
    correct = class_array[top] == y_true
    bins = reliability_bins(confidence, correct, n_bins)
    return {
        "binning": f"{n_bins} equal-width bins over top-class confidence",
        "ece": expected_calibration_error(bins),
        "brier_score": brier_score(y_true, proba, classes),
        "brier_definition": (
            "binary: mean squared error of the positive-class probability"
            if proba.shape[1] == 2
            else "multiclass: mean over rows of the sum over classes of the squared one-hot error"
        ),
        "mean_confidence": float(np.mean(confidence)),
        "reliability": bins,
    }
