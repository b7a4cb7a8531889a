"""Reference distributions (docs/contracts.md#reference-distributions) captured at registration.

Binning follows design.md "Statistics semantics": inner edges are the quantiles at
1/bins .. (bins-1)/bins, deduplicated; a value lands in ``np.searchsorted(edges, x,
side="right")``, so the outer bins are open and out-of-range values are still counted.
Numerical values are rounded through float32 first when the graph takes float32 (an exact
graph takes float64): that is what the served model receives, so a value sitting exactly on
an edge falls in the same bin online and here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BINS = 10
MAX_SAMPLE = 5000
MAX_CATEGORIES = 100
OTHER = "__other__"


def quantile_edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Strictly increasing inner cut points (at most bins-1) of the non-NaN values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0 or bins < 2:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of non-NaN values per bin (len(edges)+1 bins, outer bins open)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    counts = np.bincount(
        np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1
    ).astype(np.float64)
    if values.size == 0:
        counts[-1] = 1.0  # no data: one full open bin keeps "sums to 1" true
        return counts
    return counts / values.size


def _sample(values: np.ndarray, max_sample: int, rng: np.random.Generator) -> list[float]:
    if values.size > max_sample:
        values = values[np.sort(rng.choice(values.size, size=max_sample, replace=False))]
    return values.tolist()


def numerical_reference(
    values: np.ndarray,
    *,
    bins: int = BINS,
    max_sample: int = MAX_SAMPLE,
    seed: int = 0,
    served: type = np.float32,
) -> dict[str, Any]:
    """``served``: the float type the graph receives (float64 for an exact graph)."""
    raw = np.asarray(values, dtype=np.float64)
    values = raw.astype(served).astype(np.float64)
    present = values[~np.isnan(values)]
    edges = quantile_edges(present, bins)
    return {
        "edges": edges.tolist(),
        "proportions": bin_proportions(present, edges).tolist(),
        "sample": _sample(present, max_sample, np.random.default_rng(seed)),
        "missing": float(1.0 - present.size / raw.size) if raw.size else 0.0,
    }


def categorical_reference(
    column: pd.Series, *, max_categories: int = MAX_CATEGORIES
) -> dict[str, Any]:
    """Category frequencies, most frequent first; the tail beyond ``max_categories`` is
    lumped into ``__other__``."""
    present = column[column.notna()].astype(str)
    counts = present.value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    if len(counts) > max_categories:
        head = counts.iloc[: max_categories - 1]
        counts = pd.concat([head, pd.Series({OTHER: counts.iloc[max_categories - 1 :].sum()})])
    total = float(counts.sum())
    return {
        "categories": [str(c) for c in counts.index],
        "frequencies": [float(c) / total for c in counts.to_numpy()] if total else [],
        "missing": float(1.0 - len(present) / len(column)) if len(column) else 0.0,
    }


def build_reference(
    schema: dict[str, Any],
    frame: pd.DataFrame,
    outputs: dict[str, np.ndarray],
    *,
    bins: int = BINS,
    max_sample: int = MAX_SAMPLE,
    seed: int = 0,
) -> dict[str, Any]:
    """Baselines from the sample's feature columns and the ONNX outputs on those rows."""
    numerical: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for index, feature in enumerate(schema["features"]):
        name = feature["name"]
        if feature["kind"] == "numerical":
            values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            numerical[name] = numerical_reference(
                values,
                bins=bins,
                max_sample=max_sample,
                seed=seed + index,
                served=np.float64 if feature.get("dtype") == "float64" else np.float32,
            )
        else:
            categorical[name] = categorical_reference(frame[name])
    reference: dict[str, Any] = {
        "n_rows": len(frame),
        "bins": bins,
        "numerical": numerical,
        "categorical": categorical,
    }
    if schema["task"] == "classification":
        classes = schema["classes"]
        labels = np.asarray(outputs[schema["label_output"]]).ravel()
        labels = [v.decode() if isinstance(v, bytes) else v for v in labels.tolist()]
        counts = pd.Series(labels).value_counts()
        reference["prediction"] = {
            "kind": "classes",
            "classes": classes,
            "proportions": [float(counts.get(c, 0)) / len(labels) for c in classes],
        }
        top = np.asarray(outputs[schema["probability_output"]], dtype=np.float64).max(axis=1)
        edges = quantile_edges(top, bins)
        reference["confidence"] = {
            "edges": edges.tolist(),
            "proportions": bin_proportions(top, edges).tolist(),
            "mean": float(top.mean()),
        }
    else:
        values = np.asarray(outputs[schema["value_output"]], dtype=np.float64).ravel()
        edges = quantile_edges(values, bins)
        reference["prediction"] = {
            "kind": "values",
            "edges": edges.tolist(),
            "proportions": bin_proportions(values, edges).tolist(),
            "sample": _sample(values[~np.isnan(values)], max_sample, np.random.default_rng(seed)),
        }
        reference["confidence"] = None
    return reference
