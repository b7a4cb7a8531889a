"""Pure parity comparison between scikit-learn and ONNX outputs (docs/contracts.md#parity).

Classifiers: the largest absolute difference of any class probability must stay within
``abs_tolerance`` (1e-4), and predicted labels must all agree except on rows whose two
highest scikit-learn probabilities are within ``near_tie`` (1e-5) of each other; such rows
may legitimately flip under float32 rounding and are counted as ``flipped_near_ties``.

Regressors: the relative difference ``|onnx - sklearn| / max(|sklearn|, rel_floor)`` must
stay within ``rel_tolerance`` (1e-4). ``rel_floor`` is 1 % of the mean absolute prediction
(at least 1e-6), so predictions near zero are judged against the predictions' scale
instead of against themselves, where float32 noise would dominate.

No I/O, no globals: arrays in, a JSON-safe dict out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converters.errors import ParityError

ABS_TOLERANCE = 1e-4
REL_TOLERANCE = 1e-4
NEAR_TIE = 1e-5
REL_FLOOR_FRACTION = 0.01
MIN_REL_FLOOR = 1e-6
MAX_ROWS = 2000


def _abs_diff(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """|a - b| with NaN == NaN counted as equal and a NaN on one side as infinitely far."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: scikit-learn {a.shape} vs ONNX {b.shape}")
    diff = np.abs(a - b)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    diff[nan_a & nan_b] = 0.0
    diff[nan_a ^ nan_b] = np.inf
    return diff


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else 0.0


def compare_classifier(
    sk_proba: np.ndarray,
    sk_labels: np.ndarray,
    onnx_proba: np.ndarray,
    onnx_labels: np.ndarray,
    *,
    abs_tolerance: float = ABS_TOLERANCE,
    near_tie: float = NEAR_TIE,
) -> dict[str, Any]:
    sk_proba = np.asarray(sk_proba, dtype=np.float64)
    sk_labels, onnx_labels = np.asarray(sk_labels).ravel(), np.asarray(onnx_labels).ravel()
    if sk_labels.shape != onnx_labels.shape:
        raise ValueError(f"label count mismatch: {sk_labels.shape} vs {onnx_labels.shape}")
    rows = int(sk_labels.shape[0])
    max_abs = _max(_abs_diff(sk_proba, onnx_proba))
    disagree = sk_labels != onnx_labels
    if sk_proba.shape[1] >= 2:
        top_two = np.sort(sk_proba, axis=1)[:, -2:]
        tie = (top_two[:, 1] - top_two[:, 0]) <= near_tie
    else:
        tie = np.zeros(rows, dtype=bool)
    flipped_near_ties = int(np.count_nonzero(disagree & tie))
    hard_flips = int(np.count_nonzero(disagree & ~tie))
    agreement = float(1.0 - np.count_nonzero(disagree) / rows) if rows else 1.0
    return {
        "rows": rows,
        "max_abs_diff": max_abs,
        "max_rel_diff": None,
        "label_agreement": agreement,
        "flipped_near_ties": flipped_near_ties,
        "abs_tolerance": abs_tolerance,
        "rel_tolerance": None,
        "near_tie": near_tie,
        "passed": bool(max_abs <= abs_tolerance and hard_flips == 0),
        "forced": False,
    }


def compare_regressor(
    sk_values: np.ndarray,
    onnx_values: np.ndarray,
    *,
    rel_tolerance: float = REL_TOLERANCE,
) -> dict[str, Any]:
    sk = np.asarray(sk_values, dtype=np.float64).ravel()
    candidate = np.asarray(onnx_values, dtype=np.float64).ravel()
    diff = _abs_diff(sk, candidate)
    finite = np.abs(sk[np.isfinite(sk)])
    rel_floor = max(
        MIN_REL_FLOOR, REL_FLOOR_FRACTION * float(finite.mean()) if finite.size else 0.0
    )
    with np.errstate(invalid="ignore"):
        rel = diff / np.maximum(np.nan_to_num(np.abs(sk), nan=0.0), rel_floor)
    max_rel = _max(rel)
    return {
        "rows": int(sk.shape[0]),
        "max_abs_diff": _max(diff),
        "max_rel_diff": max_rel,
        "label_agreement": None,
        "flipped_near_ties": None,
        "abs_tolerance": None,
        "rel_tolerance": rel_tolerance,
        "rel_floor": rel_floor,
        "passed": bool(max_rel <= rel_tolerance),
        "forced": False,
    }


def enforce(parity: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    """Return the record to store; ParityError (carrying the numbers) on failure unless forced."""
    if parity["passed"]:
        return parity
    if parity["label_agreement"] is not None:
        numbers = (
            f"max |Δp| {parity['max_abs_diff']:.3g} (tolerance {parity['abs_tolerance']:g}), "
            f"label agreement {parity['label_agreement']:.4%} "
            f"({parity['flipped_near_ties']} near ties) over {parity['rows']} rows"
        )
    else:
        numbers = (
            f"max relative diff {parity['max_rel_diff']:.3g} (tolerance "
            f"{parity['rel_tolerance']:g}), max |Δ| {parity['max_abs_diff']:.3g} "
            f"over {parity['rows']} rows"
        )
    if not force:
        raise ParityError(f"parity check failed: {numbers}; use --force to register anyway", parity)
    return {**parity, "forced": True}
