"""Offline evaluation of one registered version on a labelled table -> a JSON-safe report.

Primary metric (what the promotion gate compares):
* binary classifier: ROC AUC (threshold-free ranking quality; lineage records test_auc too);
* multiclass classifier: macro F1 (every class counts equally, and it scores the labels
  the gateway actually serves);
* a classifier without probabilities, or whose labels hold a single class (AUC undefined):
  macro F1;
* regressor: RMSE, lower is better.
Layout of the report: docstrings of the metric modules; the top-level keys are
``format, created_at, task, dataset, primary_metric, classification | regression,
calibration, operational, fairness, warnings``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from gateway.evaluation.calibration import calibration_metrics
from gateway.evaluation.classification import classification_metrics
from gateway.evaluation.errors import EvaluationError
from gateway.evaluation.fairness import MISSING_GROUP, classification_fairness, regression_fairness
from gateway.evaluation.jsonsafe import jsonable
from gateway.evaluation.onnx_table import Predictions, build_feeds, check_columns, run
from gateway.evaluation.operational import measure_operational
from gateway.evaluation.ort_session import make_session
from gateway.evaluation.regression import regression_metrics

REPORT_FORMAT = 1
MAX_GROUPS = 100
OPERATIONAL_ROWS = 300  # rows cycled through by the latency / throughput loops


def _integer_classes(classes: Sequence[Any]) -> bool:
    return bool(classes) and all(isinstance(c, int) for c in classes)


def align_labels(values: Any, classes: Sequence[Any], what: str) -> np.ndarray:
    """Labels in the model's class representation: int64 for integer classes, else str."""
    series = pd.Series(
        np.asarray(values, dtype=object) if isinstance(values, np.ndarray) else values
    )
    missing = int(series.isna().sum())
    if missing:
        raise EvaluationError(f"{what} has {missing} missing values")
    if _integer_classes(classes):
        try:
            numeric = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            numeric = np.array([np.nan])
        if not np.all(np.isfinite(numeric)) or not np.all(numeric == np.round(numeric)):
            shown = ", ".join(map(str, list(classes)[:10]))
            raise EvaluationError(
                f"{what} holds non-integer values; the model's classes are {shown}"
            )
        return numeric.astype(np.int64)
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in series.tolist()]
    return np.asarray(text, dtype=str)


def resolve_positive_class(classes: Sequence[Any], requested: Any = None) -> Any:
    """``requested`` matched by its text against the classes; default: the last class."""
    classes = list(classes)
    if not classes:
        raise EvaluationError("the model's schema lists no classes")
    if requested is None:
        return classes[-1]
    for cls in classes:
        if str(cls) == str(requested):
            return cls
    shown = ", ".join(map(str, classes[:20]))
    raise EvaluationError(
        f"positive class {requested!r} is not one of the model's classes ({shown})"
    )


def _group_values(df: pd.DataFrame, column: str) -> np.ndarray:
    values = df[column].astype(object).where(df[column].notna(), MISSING_GROUP)
    groups = np.asarray([str(v) for v in values.tolist()], dtype=str)
    distinct = len(np.unique(groups))
    if distinct > MAX_GROUPS:
        raise EvaluationError(
            f"group column {column!r} has {distinct} distinct values "
            f"(max {MAX_GROUPS}); bin it first"
        )
    return groups


def primary_metric(task: str, block: Mapping[str, Any], n_classes: int) -> dict[str, Any]:
    if task == "regression":
        return {"name": "rmse", "value": block["rmse"], "higher_is_better": False}
    if n_classes == 2 and block.get("roc_auc") is not None:
        return {"name": "roc_auc", "value": block["roc_auc"], "higher_is_better": True}
    return {"name": "f1_macro", "value": block["f1_macro"], "higher_is_better": True}


def _validate(
    schema: Mapping[str, Any], df: pd.DataFrame, label_col: str, groups: Sequence[str]
) -> None:
    if label_col not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:20]))
        raise EvaluationError(f"label column {label_col!r} not in the data (columns: {shown})")
    missing = [g for g in groups if g not in df.columns]
    if missing:
        raise EvaluationError(f"group columns not in the data: {', '.join(missing)}")
    if len(df) == 0:
        raise EvaluationError("the data has no rows")
    if schema.get("task") not in ("classification", "regression"):
        raise EvaluationError(f"unknown task {schema.get('task')!r} in the version's schema")
    check_columns(schema, list(df.columns))


def _classification(
    report: dict[str, Any],
    schema: Mapping[str, Any],
    df: pd.DataFrame,
    label_col: str,
    groups: Sequence[str],
    positive_class: Any,
    preds: Predictions,
) -> None:
    classes = list(schema.get("classes") or [])
    positive = resolve_positive_class(classes, positive_class)
    y_true = align_labels(df[label_col], classes, f"label column {label_col!r}")
    y_pred = align_labels(preds.labels, classes, "the model's label output")
    unknown = sorted(set(y_true.tolist()) - set(classes))
    if unknown:
        report["warnings"].append(
            f"{int(np.isin(y_true, unknown).sum())} rows have labels the model cannot predict: "
            f"{unknown[:10]}"
        )
    present = set(y_true.tolist())
    absent = [c for c in classes if c not in present]
    if absent:
        report["warnings"].append(f"classes absent from the labels: {absent[:10]}")
    block = classification_metrics(y_true, y_pred, preds.probabilities, classes, positive)
    block["positive_class"] = positive
    report["classification"] = block
    report["primary_metric"] = primary_metric("classification", block, len(classes))
    if preds.probabilities is not None:
        report["calibration"] = calibration_metrics(y_true, preds.probabilities, classes)
    report["fairness"] = {
        "positive_class": positive,
        "columns": {
            g: classification_fairness(y_true, y_pred, _group_values(df, g), positive)
            for g in groups
        },
    }


def _regression(
    report: dict[str, Any],
    df: pd.DataFrame,
    label_col: str,
    groups: Sequence[str],
    preds: Predictions,
) -> None:
    try:
        y_true = pd.to_numeric(df[label_col], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise EvaluationError(f"label column {label_col!r} is not numeric") from None
    if np.isnan(y_true).any():
        raise EvaluationError(
            f"label column {label_col!r} has {int(np.isnan(y_true).sum())} missing values"
        )
    y_pred = preds.values
    if y_pred is None:
        raise EvaluationError("the model gave no regression values")
    block = regression_metrics(y_true, y_pred)
    report["regression"] = block
    report["primary_metric"] = primary_metric("regression", block, 0)
    report["fairness"] = {
        "columns": {g: regression_fairness(y_true, y_pred, _group_values(df, g)) for g in groups}
    }


def evaluate(
    model_bytes: bytes,
    schema: Mapping[str, Any],
    df: pd.DataFrame,
    label_col: str,
    groups: Sequence[str] = (),
    positive_class: Any = None,
    *,
    fingerprint: str | None = None,
    operational: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Evaluate an ONNX artifact on ``df`` (features + label [+ group columns]).

    ``fingerprint`` identifies the dataset (the CLI passes
    ``converters.data.dataset_fingerprint`` of the whole table); the promotion gate only
    compares reports with equal fingerprints. Raises EvaluationError on unusable input.
    """
    df = df.set_axis([str(c) for c in df.columns], axis=1)
    groups = list(dict.fromkeys(groups))
    _validate(schema, df, label_col, groups)
    started = time.perf_counter()
    task = schema["task"]
    preds = run(make_session(model_bytes), schema, df)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "task": task,
        "dataset": {
            "fingerprint": fingerprint,
            "rows": len(df),
            "label": label_col,
            "groups": groups,
        },
        "warnings": [],
    }
    if task == "classification":
        _classification(report, schema, df, label_col, groups, positive_class, preds)
    else:
        _regression(report, df, label_col, groups, preds)
    if operational:
        feeds = build_feeds(schema, df.iloc[:OPERATIONAL_ROWS])
        try:
            report["operational"] = measure_operational(model_bytes, feeds)
        except RuntimeError as exc:
            raise EvaluationError(str(exc)) from None
    report["evaluation_seconds"] = time.perf_counter() - started
    return jsonable(report)
