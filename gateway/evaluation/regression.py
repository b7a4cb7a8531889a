"""Regression metrics in numpy with scikit-learn's definitions (tests compare to 1e-9).

R² follows ``r2_score``'s finite convention: a constant target gives 1.0 when predicted
exactly and 0.0 otherwise. RMSE is the primary metric of a regressor (lower is better).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - np.mean(y_true)) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def residual_histogram(y_true: np.ndarray, y_pred: np.ndarray, bins: int = 20) -> dict[str, Any]:
    counts, edges = np.histogram(y_pred - y_true, bins=bins)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "r2": r2(y_true, y_pred),
        "mean_target": float(np.mean(y_true)),
        "mean_prediction": float(np.mean(y_pred)),
        "residual_histogram": residual_histogram(y_true, y_pred),
    }
