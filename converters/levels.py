"""The levels a fitted estimator knows for each string column, read from its encoders.

A OneHotEncoder / OrdinalEncoder (or any encoder with ``categories_``) inside a
ColumnTransformer, alone or as the first step of a Pipeline, names the levels it saw when
fitted. They go into the input schema (``schema["levels"]``) so that the next version can
tell a client-visible change of levels (``registry.schema_diff``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from converters.estimator import iter_steps

MAX_LEVELS = 1000  # a column with more levels is left out (the schema is loaded per version)


def _encoder(transformer: Any) -> Any | None:
    """The step holding ``categories_``: the transformer, or the first such pipeline step."""
    if hasattr(transformer, "categories_"):
        return transformer
    if isinstance(transformer, Pipeline):
        for _, step in transformer.steps:
            if hasattr(step, "categories_"):
                return step
    return None


def _level(value: Any) -> str:
    # a missing category is served as "" (converters.runner), so it is recorded as ""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _column_names(columns: Any, order: list[str]) -> list[str] | None:
    """Column names a ColumnTransformer entry selects, when given as names or positions."""
    if isinstance(columns, str):
        return [columns]
    try:
        items = list(columns)
    except TypeError:  # a callable or a selector: not resolvable without data
        return None
    if all(isinstance(c, str) for c in items):
        return items
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in items):
        return [order[int(c)] for c in items if 0 <= int(c) < len(order)]
    return None


def _pairs(estimator: Any, order: list[str]) -> list[tuple[list[str], Any]]:
    """(column names, encoder) for every encoder whose input columns are known."""
    pairs = []
    for _, step in iter_steps(estimator):
        if isinstance(step, ColumnTransformer):
            for _, transformer, columns in getattr(step, "transformers_", []):
                encoder = _encoder(transformer)
                names = _column_names(columns, order)
                if encoder is not None and names is not None:
                    pairs.append((names, encoder))
    if isinstance(estimator, Pipeline):
        first = _encoder(estimator.steps[0][1])
        names = getattr(first, "feature_names_in_", None)
        if first is not None and not isinstance(estimator.steps[0][1], ColumnTransformer):
            pairs.append(([str(n) for n in names] if names is not None else order, first))
    return pairs


def categorical_levels(estimator: Any, features: list[dict[str, str]]) -> dict[str, list[str]]:
    """Sorted known levels per categorical feature; columns without an encoder are absent."""
    order = [f["name"] for f in features]
    categorical = {f["name"] for f in features if f["kind"] == "categorical"}
    levels: dict[str, list[str]] = {}
    for names, encoder in _pairs(estimator, order):
        categories = list(getattr(encoder, "categories_", []))
        if len(categories) != len(names):
            continue
        for name, values in zip(names, categories, strict=True):
            if name in categorical and len(values) <= MAX_LEVELS:
                levels[name] = sorted({_level(v) for v in values})
    return levels
