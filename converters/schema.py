"""Input schema inference (docs/contracts.md#input-schema) from a fitted estimator and a sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import KNNImputer, SimpleImputer

from converters.data import is_numeric_column
from converters.errors import ConversionError
from converters.estimator import final_step, iter_steps
from converters.framework_names import library_of
from converters.levels import categorical_levels

try:  # IterativeImputer is still behind an experimental import switch in some releases
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    _IMPUTERS: tuple[type, ...] = (SimpleImputer, KNNImputer, IterativeImputer)
except ImportError:  # pragma: no cover - depends on the scikit-learn release
    _IMPUTERS = (SimpleImputer, KNNImputer)

_NAN_NATIVE = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)

# ONNX tensor element type -> Open Inference Protocol datatype
_OIP = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.STRING: "BYTES",
}


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:10])
    return shown + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")


def align_sample(estimator: BaseEstimator, frame: pd.DataFrame) -> pd.DataFrame:
    """The sample's feature columns in the order the estimator was fitted with.

    ConversionError names the missing and extra columns when the sample does not match.
    """
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    expected = getattr(estimator, "feature_names_in_", None)
    if expected is not None:
        expected = [str(c) for c in expected]
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {_listing(missing)}")
            if extra:
                parts.append(f"unexpected {_listing(extra)} (is one of them the label column?)")
            raise ConversionError(
                f"sample columns do not match the estimator's features: {'; '.join(parts)}"
            )
        return frame[expected]
    n_expected = getattr(estimator, "n_features_in_", None)
    if n_expected is not None and n_expected != len(columns):
        raise ConversionError(
            f"sample has {len(columns)} feature columns, the estimator expects {n_expected}"
        )
    return frame


def infer_features(frame: pd.DataFrame, numeric: str = "float32") -> list[dict[str, str]]:
    """numbers (and bools) -> ``numeric`` (float32, or float64 for an exact graph) numerical;
    strings / objects / categories -> categorical."""
    features = []
    for name in frame.columns:
        column = frame[name]
        if is_numeric_column(column) and not isinstance(column.dtype, pd.CategoricalDtype):
            features.append({"name": name, "dtype": numeric, "kind": "numerical"})
        else:
            features.append({"name": name, "dtype": "string", "kind": "categorical"})
    return features


def allow_missing(estimator: BaseEstimator) -> bool:
    """True when some step imputes or natively handles NaN (XGBoost and LightGBM do)."""
    return any(
        isinstance(step, _IMPUTERS + _NAN_NATIVE) or library_of(step) is not None
        for _, step in iter_steps(estimator)
    )


def needs_column_inputs(estimator: BaseEstimator, features: list[dict[str, str]]) -> bool:
    """One ONNX input per column for string features or name-based column selection."""
    if any(f["kind"] == "categorical" for f in features):
        return True
    return any(isinstance(step, ColumnTransformer) for _, step in iter_steps(estimator))


# feature dtype -> OIP datatype of its graph input
_NUMERIC_INPUT = {"float32": "FP32", "float64": "FP64"}


def input_plan(features: list[dict[str, str]], per_column: bool) -> list[dict[str, Any]]:
    numeric = {_NUMERIC_INPUT[f["dtype"]] for f in features if f["kind"] == "numerical"}
    datatype = numeric.pop() if len(numeric) == 1 else "FP32"
    if not per_column:
        names = [f["name"] for f in features]
        shape = [-1, len(names)]
        return [{"name": "input", "datatype": datatype, "shape": shape, "features": names}]
    return [
        {
            "name": f["name"],
            "datatype": "BYTES" if f["kind"] == "categorical" else _NUMERIC_INPUT[f["dtype"]],
            "shape": [-1, 1],
            "features": [f["name"]],
        }
        for f in features
    ]


def classes_of(estimator: BaseEstimator) -> list[int] | list[str] | None:
    """Class labels as JSON ints (integers, bools, integral floats) or strings."""
    if not is_classifier(estimator):
        return None
    step, final = final_step(estimator)
    classes = np.asarray(getattr(final, "classes_", getattr(estimator, "classes_", [])))
    if classes.ndim != 1:
        raise ConversionError(
            f"cannot convert step '{step}' ({type(final).__name__}): multi-output classifiers "
            "are not supported"
        )
    if classes.dtype.kind in "biu":
        return [int(c) for c in classes]
    if classes.dtype.kind == "f":
        if np.all(np.isfinite(classes)) and np.all(classes == np.round(classes)):
            return [int(c) for c in classes]
        raise ConversionError(
            f"cannot convert step '{step}' ({type(final).__name__}): class labels must be "
            f"integers or strings, got {classes.tolist()[:5]}"
        )
    return [str(c) for c in classes]


def normalise_labels(labels: np.ndarray, classes: list[int] | list[str]) -> np.ndarray:
    """Predicted labels in the schema's representation (int64 or str objects)."""
    labels = np.asarray(labels).ravel()
    if classes and isinstance(classes[0], int):
        return labels.astype(np.int64)
    return np.asarray(
        [c.decode() if isinstance(c, bytes) else str(c) for c in labels], dtype=object
    )


def graph_outputs(model: onnx.ModelProto, task: str, n_classes: int) -> dict[str, Any]:
    """Output tensors read from the graph, and which one is the label / probabilities / value."""
    outputs = []
    roles: dict[str, str | None] = {
        "label_output": None,
        "probability_output": None,
        "value_output": None,
    }
    for out in model.graph.output:
        tensor = out.type.tensor_type
        datatype = _OIP.get(tensor.elem_type)
        if datatype is None:
            raise ConversionError(f"ONNX output {out.name!r} is not a plain tensor")
        rank = len(tensor.shape.dim)
        shape = [-1] + [d.dim_value or -1 for d in tensor.shape.dim[1:]]
        if task == "classification":
            if roles["label_output"] is None and datatype in ("INT64", "BYTES") and rank == 1:
                roles["label_output"] = out.name
            elif roles["probability_output"] is None and datatype in ("FP32", "FP64") and rank == 2:
                roles["probability_output"] = out.name
                shape = [-1, n_classes]
        elif roles["value_output"] is None and datatype in ("FP32", "FP64"):
            roles["value_output"] = out.name
        outputs.append({"name": out.name, "datatype": datatype, "shape": shape})
    wanted = (
        ("label_output", "probability_output") if task == "classification" else ("value_output",)
    )
    if any(roles[key] is None for key in wanted):
        raise ConversionError(f"unexpected ONNX outputs {[o['name'] for o in outputs]} for {task}")
    return {"outputs": outputs, **roles}


def build_schema(
    estimator: BaseEstimator,
    features: list[dict[str, str]],
    inputs: list[dict[str, Any]],
    model: onnx.ModelProto,
) -> dict[str, Any]:
    task = "classification" if is_classifier(estimator) else "regression"
    classes = classes_of(estimator)
    return {
        "task": task,
        "features": features,
        "inputs": inputs,
        **graph_outputs(model, task, len(classes or [])),
        "classes": classes,
        "allow_missing": allow_missing(estimator),
        # known levels of string columns, from the fitted encoders (registry.schema_diff)
        "levels": categorical_levels(estimator, features),
    }
