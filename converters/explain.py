"""The parity report: which rows differ, the worst of them, and for tree models the split
threshold each row falls on (docs/conversion.md#the-parity-report).

For a tree model the explanation replays every tree twice on the differing rows: once as
scikit-learn decides (its own preprocessing output, its thresholds and precision), once as
the ONNX graph decides (the tensor the graph's tree node reads, the thresholds the node
holds). Where the two walks part, the node's feature and threshold are the cause; of all
the trees that part on a row, the split whose threshold is nearest to the row's value is
reported.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from converters import parity as parity_mod
from converters.errors import ConversionError
from converters.runner import feeds, session
from converters.schema import normalise_labels
from converters.sklearn_onnx import Conversion
from converters.trees import Forest, forest_of, splits_of, walk_divergence

WORST_ROWS = 10
SPLIT_GROUPS = 10


def _label(value: Any) -> Any:
    """A row index or class label as a plain JSON value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, int | str) else str(value)


def _float(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _final_input(estimator: BaseEstimator, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """What scikit-learn hands the final estimator (dense float64) and its column names."""
    data: Any = frame
    names = [str(c) for c in frame.columns]
    step = estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while isinstance(step, Pipeline):
            if len(step.steps) > 1:
                head = step[:-1]
                data = head.transform(data)
                try:
                    names = [str(n) for n in head.get_feature_names_out()]
                except (AttributeError, ValueError, TypeError):
                    names = [f"x{i}" for i in range(data.shape[1])]
            step = step.steps[-1][1]
    if scipy.sparse.issparse(data):
        data = data.toarray()
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(data, dtype=np.float64), names


def _tree_tensor(conversion: Conversion, frame: pd.DataFrame, name: str) -> np.ndarray:
    """The values the graph's tree node reads, by running the graph with that tensor exposed."""
    model = onnx.load_from_string(conversion.onnx_bytes)
    if name in {o.name for o in model.graph.output}:
        exposed = [model]
    else:
        # shape inference does not know every ai.onnx.ml operator: try the two float types
        exposed = []
        for elem in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
            exposed.append(copy)
    failure: Exception | None = None
    for candidate in exposed:
        try:
            sess = session(candidate.SerializeToString())
        except Exception as exc:  # onnxruntime refuses a wrongly typed output at load
            failure = exc
            continue
        (values,) = sess.run([name], feeds(conversion.schema, frame))
        return np.asarray(values, dtype=np.float64)
    raise ConversionError(f"cannot read the tree node's input {name!r}: {failure}")


def _raw_input(frame: pd.DataFrame, row: int, feature: str) -> dict[str, Any] | None:
    """The sample value behind a transformed feature name such as ``num__charges``."""
    column = feature.rsplit("__", 1)[-1]
    if column not in frame.columns:
        return None
    value = frame[column].iloc[row]
    if isinstance(value, int | float | np.number):
        return {column: _float(value)}
    return {column: None if pd.isna(value) else str(value)}


def _split_causes(
    forest: Forest,
    conversion: Conversion,
    estimator: BaseEstimator,
    frame: pd.DataFrame,
) -> list[dict[str, Any] | None]:
    """For each row of ``frame``: the nearest split where scikit-learn and ONNX part."""
    model = onnx.load_from_string(conversion.onnx_bytes)
    onnx_splits = splits_of(model, forest)
    x_sk, names = _final_input(estimator, frame)
    if forest.float32_inputs:
        x_sk = x_sk.astype(np.float32).astype(np.float64)
    x_onnx = _tree_tensor(conversion, frame, onnx_splits.input_name)
    if x_sk.shape != x_onnx.shape:
        raise ConversionError(f"tree inputs differ in shape: {x_sk.shape} vs {x_onnx.shape}")
    rows = x_sk.shape[0]
    best_gap = np.full(rows, np.inf)
    best_tree = np.full(rows, -1, dtype=np.int64)
    best_node = np.zeros(rows, dtype=np.int64)
    parted_trees = np.zeros(rows, dtype=np.int64)
    for k, tree in enumerate(forest.trees):
        sk_split = (tree.threshold, tree.missing_left)
        ox_split = (onnx_splits.threshold[k], onnx_splits.missing_left[k])
        node = walk_divergence(tree, x_sk, sk_split, x_onnx, ox_split)
        parted = np.nonzero(node >= 0)[0]
        if not parted.size:
            continue
        nodes = node[parted]
        parted_trees[parted] += 1
        with np.errstate(invalid="ignore"):
            gap = np.abs(x_sk[parted, tree.feature[nodes]] - tree.threshold[nodes])
        gap = np.nan_to_num(gap, nan=np.inf)
        nearer = (gap < best_gap[parted]) | (best_tree[parted] < 0)
        chosen = parted[nearer]
        best_gap[chosen] = gap[nearer]
        best_tree[chosen] = k
        best_node[chosen] = nodes[nearer]
    causes: list[dict[str, Any] | None] = []
    for r in range(rows):
        k, n = int(best_tree[r]), int(best_node[r])
        if k < 0:
            causes.append(None)
            continue
        tree = forest.trees[k]
        feature = int(tree.feature[n])
        name = names[feature] if feature < len(names) else f"x{feature}"
        cause = {
            "feature": name,
            "threshold": float(tree.threshold[n]),
            "onnx_threshold": float(onnx_splits.threshold[k][n]),
            "sklearn_value": _float(x_sk[r, feature]),
            "onnx_value": _float(x_onnx[r, feature]),
            "rule": forest.rule,
            "tree": k,
            "node": n,
            "trees_parted": int(parted_trees[r]),
        }
        raw = _raw_input(frame, r, name)
        if raw is not None:
            cause["input"] = raw
        causes.append(cause)
    return causes


def _classifier_rows(
    schema: dict[str, Any],
    expected: dict[str, Any],
    got: dict[str, np.ndarray],
    result: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    classes = schema["classes"]
    sk_proba = np.asarray(expected["proba"], dtype=np.float64)
    ox_proba = np.asarray(got[schema["probability_output"]], dtype=np.float64)
    sk_labels = normalise_labels(expected["labels"], classes)
    ox_labels = normalise_labels(got[schema["label_output"]], classes)
    per_row = parity_mod.classifier_rows(
        sk_proba,
        sk_labels,
        ox_proba,
        ox_labels,
        abs_tolerance=result["abs_tolerance"],
        near_tie=result["near_tie"],
    )
    entries = []
    for r in range(len(sk_labels)):
        k = int(np.nanargmax(np.abs(sk_proba[r] - ox_proba[r]))) if sk_proba.shape[1] else 0
        entries.append(
            {
                "class": _label(classes[k]),
                "sklearn": _float(sk_proba[r, k]),
                "onnx": _float(ox_proba[r, k]),
                "sklearn_label": _label(sk_labels[r]),
                "onnx_label": _label(ox_labels[r]),
                "sklearn_proba": [_float(v) for v in sk_proba[r]],
                "onnx_proba": [_float(v) for v in ox_proba[r]],
            }
        )
    return per_row["diff"], per_row["failing"], entries


def _regressor_rows(
    schema: dict[str, Any],
    expected: dict[str, Any],
    got: dict[str, np.ndarray],
    result: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    sk = np.asarray(expected["values"], dtype=np.float64).ravel()
    ox = np.asarray(got[schema["value_output"]], dtype=np.float64).ravel()
    per_row = parity_mod.regressor_rows(sk, ox, rel_tolerance=result["rel_tolerance"])
    entries = [{"sklearn": _float(a), "onnx": _float(b)} for a, b in zip(sk, ox, strict=True)]
    return per_row["rel"], per_row["failing"], entries


def parity_report(
    estimator: BaseEstimator,
    conversion: Conversion,
    frame: pd.DataFrame,
    expected: dict[str, Any],
    got: dict[str, np.ndarray],
    result: dict[str, Any],
) -> dict[str, Any]:
    """The report stored with a failed parity record (JSON-safe)."""
    schema = conversion.schema
    rows_of = _classifier_rows if schema["task"] == "classification" else _regressor_rows
    diff, failing, entries = rows_of(schema, expected, got, result)
    differing = np.nonzero(failing)[0]
    order = differing[np.argsort(-np.nan_to_num(diff[differing], nan=np.inf), kind="stable")]
    report: dict[str, Any] = {
        "graph": conversion.graph,
        "rows": int(len(diff)),
        "rows_differ": int(differing.size),
        "measure": "max |Δp|" if schema["task"] == "classification" else "relative diff",
        "worst": [],
        "splits": [],
        "explained_rows": 0,
    }
    causes: list[dict[str, Any] | None] = [None] * differing.size
    forest = forest_of(estimator)
    if forest is not None and differing.size:
        try:
            causes = _split_causes(forest, conversion, estimator, frame.iloc[differing])
        except Exception as exc:  # the explanation is best effort: never hide the failure itself
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            report["explanation_error"] = f"the tree paths could not be replayed: {reason}"
    cause_of = dict(zip(differing.tolist(), causes, strict=True))
    for r in order[:WORST_ROWS]:
        r = int(r)
        entry = {"row": _label(frame.index[r]), "diff": _float(diff[r]), **entries[r]}
        report["worst"].append({**entry, "split": cause_of[r]})
    groups: dict[tuple[str, float], int] = {}
    features: dict[str, int] = {}
    for cause in causes:
        if cause is not None:
            key = (cause["feature"], cause["threshold"])
            groups[key] = groups.get(key, 0) + 1
            features[cause["feature"]] = features.get(cause["feature"], 0) + 1
    report["explained_rows"] = sum(groups.values())
    report["features"] = [
        {"feature": name, "rows": count}
        for name, count in sorted(features.items(), key=lambda item: (-item[1], item[0]))
    ]
    ranked = sorted(groups.items(), key=lambda item: (-item[1], item[0][0], item[0][1]))
    report["splits"] = [
        {"feature": feature, "threshold": threshold, "rows": count}
        for (feature, threshold), count in ranked[:SPLIT_GROUPS]
    ]
    report["split_groups"] = len(groups)
    return report
