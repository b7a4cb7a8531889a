"""Run an ONNX artifact on a table, building the feeds from the registered input schema.

Kept deliberately small and independent of the serving code: the schema
(docs/contracts.md#input-schema) says which columns go into which graph input and with
which datatype; outputs are read by the names the schema records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from gateway.evaluation.errors import EvaluationError
from gateway.evaluation.ort_session import first_line

_NUMERIC = {
    "FP32": np.float32,
    "FP64": np.float64,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


@dataclass(frozen=True, slots=True)
class Predictions:
    labels: np.ndarray | None  # classifiers: predicted labels (int64 or str)
    probabilities: np.ndarray | None  # classifiers: float64 [n, n_classes] in schema class order
    values: np.ndarray | None  # regressors: float64 [n]


def schema_inputs(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    inputs = schema.get("inputs")
    if inputs:
        return list(inputs)
    names = [f["name"] for f in schema.get("features", [])]
    return [{"name": "input", "datatype": "FP32", "shape": [-1, len(names)], "features": names}]


def feature_columns(schema: Mapping[str, Any]) -> list[str]:
    return [col for spec in schema_inputs(schema) for col in spec["features"]]


def check_columns(schema: Mapping[str, Any], columns: Sequence[Any]) -> None:
    present = {str(c) for c in columns}
    missing = [c for c in feature_columns(schema) if c not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" (+{len(missing) - 10} more)" if len(missing) > 10 else ""
        )
        raise EvaluationError(f"feature columns missing from the data: {shown}")


def _numeric_block(
    df: pd.DataFrame, cols: list[str], dtype: type, allow_missing: bool
) -> np.ndarray:
    out = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, col in enumerate(cols):
        try:
            values = pd.to_numeric(df[col], errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        except (ValueError, TypeError):
            raise EvaluationError(f"feature column {col!r} is not numeric") from None
        n_missing = int(np.isnan(values).sum())
        if n_missing and not allow_missing:
            raise EvaluationError(
                f"feature column {col!r} has {n_missing} missing values "
                "and the model does not impute"
            )
        out[:, j] = values
    return out.astype(dtype)


def _string_block(df: pd.DataFrame, cols: list[str], allow_missing: bool) -> np.ndarray:
    block = df[cols]
    missing = block.isna()
    if missing.to_numpy().any():
        if not allow_missing:
            col = cols[int(np.argmax(missing.to_numpy().any(axis=0)))]
            raise EvaluationError(
                f"feature column {col!r} has missing values and the model does not impute"
            )
        block = block.where(~missing, "")
    return block.astype(str).to_numpy(dtype=object)


def build_feeds(schema: Mapping[str, Any], df: pd.DataFrame) -> dict[str, np.ndarray]:
    allow_missing = bool(schema.get("allow_missing", False))
    feeds: dict[str, np.ndarray] = {}
    for spec in schema_inputs(schema):
        cols = list(spec["features"])
        datatype = spec.get("datatype", "FP32")
        if datatype == "BYTES":
            array = _string_block(df, cols, allow_missing)
        elif datatype in _NUMERIC:
            array = _numeric_block(df, cols, _NUMERIC[datatype], allow_missing)
        else:
            raise EvaluationError(f"input {spec['name']!r} has unsupported datatype {datatype!r}")
        if len(spec.get("shape", [-1, len(cols)])) == 1:
            array = array.ravel()
        feeds[spec["name"]] = array
    return feeds


def _output_names(session: ort.InferenceSession, schema: Mapping[str, Any]) -> list[str]:
    graph = [o.name for o in session.get_outputs()]
    if schema.get("task") == "regression":
        return [schema.get("value_output") or graph[0]]
    label = schema.get("label_output") or graph[0]
    proba = schema.get("probability_output")
    if proba is None and len(graph) > 1 and schema.get("label_output") is None:
        proba = graph[1]
    return [label, proba] if proba else [label]


def _probabilities(raw: Any, classes: Sequence[Any]) -> np.ndarray:
    if isinstance(raw, list):  # ZipMap output: one {class: probability} dict per row
        return np.asarray([[row[c] for c in classes] for row in raw], dtype=np.float64)
    return np.asarray(raw, dtype=np.float64)


def run(
    session: ort.InferenceSession, schema: Mapping[str, Any], df: pd.DataFrame, chunk: int = 8192
) -> Predictions:
    """Predict every row of ``df`` (in chunks, to bound memory)."""
    names = _output_names(session, schema)
    classes = list(schema.get("classes") or [])
    parts: list[list[Any]] = [[] for _ in names]
    for start in range(0, len(df), chunk):
        feeds = build_feeds(schema, df.iloc[start : start + chunk])
        try:
            outputs = session.run(names, feeds)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise EvaluationError(f"onnxruntime failed on the data: {first_line(exc)}") from None
        for i, out in enumerate(outputs):
            parts[i].append(out)
    if schema.get("task") == "regression":
        values = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts[0]])
        return Predictions(labels=None, probabilities=None, values=values)
    labels = np.concatenate([np.asarray(p).ravel() for p in parts[0]])
    proba = None
    if len(names) > 1:
        proba = np.concatenate([_probabilities(p, classes) for p in parts[1]], axis=0)
    return Predictions(labels=labels, probabilities=proba, values=None)
