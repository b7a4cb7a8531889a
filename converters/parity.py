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


def classifier_rows(
    sk_proba: np.ndarray,
    sk_labels: np.ndarray,
    onnx_proba: np.ndarray,
    onnx_labels: np.ndarray,
    *,
    abs_tolerance: float = ABS_TOLERANCE,
    near_tie: float = NEAR_TIE,
) -> dict[str, np.ndarray]:
    """Per row: the largest probability difference (``diff``), label disagreement, near tie,
    and whether the row breaks the rule (``failing``)."""
    sk_proba = np.asarray(sk_proba, dtype=np.float64)
    sk_labels, onnx_labels = np.asarray(sk_labels).ravel(), np.asarray(onnx_labels).ravel()
    if sk_labels.shape != onnx_labels.shape:
        raise ValueError(f"label count mismatch: {sk_labels.shape} vs {onnx_labels.shape}")
    rows = int(sk_labels.shape[0])
    diff = _abs_diff(sk_proba, onnx_proba)
    row_diff = diff.max(axis=1) if diff.size else np.zeros(rows)
    disagree = sk_labels != onnx_labels
    if sk_proba.shape[1] >= 2:
        top_two = np.sort(sk_proba, axis=1)[:, -2:]
        tie = (top_two[:, 1] - top_two[:, 0]) <= near_tie
    else:
        tie = np.zeros(rows, dtype=bool)
    failing = (row_diff > abs_tolerance) | (disagree & ~tie)
    return {"diff": row_diff, "disagree": disagree, "tie": tie, "failing": failing}


def regressor_rows(
    sk_values: np.ndarray, onnx_values: np.ndarray, *, rel_tolerance: float = REL_TOLERANCE
) -> dict[str, Any]:
    """Per row: absolute and relative difference and whether the row breaks the rule; the
    relative floor used."""
    sk = np.asarray(sk_values, dtype=np.float64).ravel()
    candidate = np.asarray(onnx_values, dtype=np.float64).ravel()
    diff = _abs_diff(sk, candidate)
    finite = np.abs(sk[np.isfinite(sk)])
    rel_floor = max(
        MIN_REL_FLOOR, REL_FLOOR_FRACTION * float(finite.mean()) if finite.size else 0.0
    )
    with np.errstate(invalid="ignore"):
        rel = diff / np.maximum(np.nan_to_num(np.abs(sk), nan=0.0), rel_floor)
    return {"diff": diff, "rel": rel, "failing": rel > rel_tolerance, "rel_floor": rel_floor}


def compare_classifier(
    sk_proba: np.ndarray,
    sk_labels: np.ndarray,
    onnx_proba: np.ndarray,
    onnx_labels: np.ndarray,
    *,
    abs_tolerance: float = ABS_TOLERANCE,
    near_tie: float = NEAR_TIE,
) -> dict[str, Any]:
    per_row = classifier_rows(
        sk_proba,
        sk_labels,
        onnx_proba,
        onnx_labels,
        abs_tolerance=abs_tolerance,
        near_tie=near_tie,
    )
    disagree, tie = per_row["disagree"], per_row["tie"]
    rows = int(disagree.shape[0])
    max_abs = _max(per_row["diff"])
    flipped_near_ties = int(np.count_nonzero(disagree & tie))
    hard_flips = int(np.count_nonzero(disagree & ~tie))
    agreement = float(1.0 - np.count_nonzero(disagree) / rows) if rows else 1.0
    return {
        "rows": rows,
        "rows_differ": int(np.count_nonzero(per_row["failing"])),
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
    per_row = regressor_rows(sk_values, onnx_values, rel_tolerance=rel_tolerance)
    max_rel = _max(per_row["rel"])
    return {
        "rows": int(per_row["diff"].shape[0]),
        "rows_differ": int(np.count_nonzero(per_row["failing"])),
        "max_abs_diff": _max(per_row["diff"]),
        "max_rel_diff": max_rel,
        "label_agreement": None,
        "flipped_near_ties": None,
        "abs_tolerance": None,
        "rel_tolerance": rel_tolerance,
        "rel_floor": per_row["rel_floor"],
        "passed": bool(max_rel <= rel_tolerance),
        "forced": False,
    }


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _worst_text(row: dict[str, Any]) -> str:
    digits = 4 if "class" in row else 6
    sk, ox = (f"{v:.{digits}g}" if v is not None else "NaN" for v in (row["sklearn"], row["onnx"]))
    output = f"p({row['class']})" if "class" in row else "output"
    text = f"row {row['row']}: {output} scikit-learn {sk} vs ONNX {ox}"
    split = row.get("split")
    if split and split["sklearn_value"] is not None and split["onnx_value"] is not None:
        text += (
            f" (split '{split['feature']}' <= {split['threshold']:.9g}: value "
            f"{split['sklearn_value']:.9g} in scikit-learn, {split['onnx_value']:.9g} in ONNX)"
        )
    return text


def report_text(report: dict[str, Any], shown: int = 3) -> str:
    """One line naming the worst rows and the split features the differing rows fall on."""
    parts = []
    worst = report.get("worst") or []
    if worst:
        parts.append("worst " + ", ".join(_worst_text(r) for r in worst[:shown]))
    features = report.get("features") or []
    if features:
        named = ", ".join(f"'{f['feature']}' ({_rows(f['rows'])})" for f in features[:shown])
        more = f" and {len(features) - shown} more" if len(features) > shown else ""
        parts.append(f"the differing rows fall on split thresholds of {named}{more}")
    return "; ".join(parts)


def _graphs_text(parity: dict[str, Any]) -> str:
    """`` on the exact-double graph (float32 graph: 12 rows differ)`` when both were tried."""
    graph = parity.get("graph")
    if not graph:
        return ""
    others = [a for a in (parity.get("report") or {}).get("attempts") or [] if a["graph"] != graph]
    tried = "; ".join(f"{a['graph']} graph: {_rows(a['rows_differ'])} differ" for a in others)
    return f" on the {graph} graph ({tried})" if tried else f" on the {graph} graph"


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
    if "rows_differ" in parity:
        numbers = f"{parity['rows_differ']} of {parity['rows']} rows differ, {numbers}"
    report = parity.get("report")
    if report:
        explained = report_text(report)
        numbers = f"{numbers}; {explained}" if explained else numbers
    where = _graphs_text(parity)
    if not force:
        raise ParityError(
            f"parity check failed{where}: {numbers}; use --force to register anyway", parity
        )
    return {**parity, "forced": True}
