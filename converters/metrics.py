"""Held-out metrics of the ONNX graph on a labelled sample (the lineage "performance" section)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from converters.errors import DataError
from converters.schema import normalise_labels


def _true_labels(y: pd.Series, classes: list[Any]) -> np.ndarray:
    if y.isna().any():
        raise DataError(f"label column {y.name!r} has missing values")
    try:
        labels = normalise_labels(y.to_numpy(), classes)
    except (TypeError, ValueError):
        raise DataError(
            f"label column {y.name!r} values do not match the classes {classes[:10]}"
        ) from None
    unknown = sorted({str(v) for v in labels} - {str(c) for c in classes})
    if unknown:
        raise DataError(f"label column {y.name!r} holds values the model never saw: {unknown[:10]}")
    return labels


def classification_metrics(
    y: pd.Series, classes: list[Any], labels: np.ndarray, proba: np.ndarray
) -> dict[str, Any]:
    truth = _true_labels(y, classes)
    predicted = normalise_labels(labels, classes)
    binary = len(classes) == 2
    result: dict[str, Any] = {
        "test_accuracy": float(accuracy_score(truth, predicted)),
        "test_f1": float(
            f1_score(
                truth,
                predicted,
                average="binary" if binary else "macro",
                pos_label=classes[1] if binary else 1,
                labels=classes,
                zero_division=0,
            )
        ),
        "test_auc": None,
    }
    present = set(truth.tolist())
    if len(present) == len(classes) and len(classes) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = proba[:, 1] if binary else proba / proba.sum(axis=1, keepdims=True)
            auc = roc_auc_score(
                truth, score, multi_class="raise" if binary else "ovr", labels=classes
            )
        result["test_auc"] = float(auc)
    return result


def regression_metrics(y: pd.Series, values: np.ndarray) -> dict[str, Any]:
    truth = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(truth).any():
        raise DataError(f"label column {y.name!r} has missing or non-numeric values")
    values = np.asarray(values, dtype=np.float64).ravel()
    return {
        "test_rmse": float(np.sqrt(mean_squared_error(truth, values))),
        "test_mae": float(mean_absolute_error(truth, values)),
        "test_r2": float(r2_score(truth, values)) if len(truth) > 1 else None,
    }


def sample_performance(
    schema: dict[str, Any], y: pd.Series, outputs: dict[str, np.ndarray]
) -> dict[str, Any]:
    if schema["task"] == "classification":
        result = classification_metrics(
            y,
            schema["classes"],
            outputs[schema["label_output"]],
            np.asarray(outputs[schema["probability_output"]], dtype=np.float64),
        )
    else:
        result = regression_metrics(y, outputs[schema["value_output"]])
    return {**result, "evaluated_on": "sample", "evaluated_rows": len(y)}
