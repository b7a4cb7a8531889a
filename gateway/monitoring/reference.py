"""Typed, validated view of a version's stored reference distributions.

``Reference.from_dict`` reads the JSON layout of docs/contracts.md ("Reference
distributions") once per loaded version and lays the numerical features out as the padded
arrays the numba kernels want (see ``psi_numba``). A malformed reference raises
``ValueError`` with the offending feature named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OTHER_CATEGORY = "__other__"


@dataclass(frozen=True, slots=True)
class NumericReference:
    name: str
    edges: np.ndarray  # inner cut points, strictly increasing
    proportions: np.ndarray  # len(edges) + 1 values
    sample: np.ndarray  # sorted reference values for KS (may be empty)


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    name: str
    categories: tuple[Any, ...]
    frequencies: np.ndarray  # one per category

    @property
    def other_code(self) -> int:
        return other_code(self.categories)


def other_code(categories: Sequence[Any]) -> int:
    """Code for values the reference never saw: its lumped tail category when it has one
    (converters store rare categories as ``__other__``), else the reserved ``len(categories)``
    slot, whose reference frequency is 0."""
    return categories.index(OTHER_CATEGORY) if OTHER_CATEGORY in categories else len(categories)


@dataclass(frozen=True, slots=True)
class Reference:
    n_rows: int
    numerical: tuple[NumericReference, ...]
    categorical: tuple[CategoricalReference, ...]
    # "classes", "values" or None when nothing was captured
    prediction_kind: str | None
    prediction_classes: tuple[Any, ...]
    prediction_edges: np.ndarray
    prediction_proportions: np.ndarray
    confidence_edges: np.ndarray | None
    confidence_proportions: np.ndarray | None
    # kernel layout of the numerical features (see psi_numba)
    edges: np.ndarray  # float64 [f, E], NaN padding
    expected: np.ndarray  # float64 [f, E + 1], zero padding

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Reference:
        data = data or {}
        numerical = tuple(
            _numeric(name, spec) for name, spec in (data.get("numerical") or {}).items()
        )
        categorical = tuple(
            _categorical(name, spec) for name, spec in (data.get("categorical") or {}).items()
        )
        prediction = data.get("prediction") or {}
        kind = prediction.get("kind")
        classes: tuple[Any, ...] = ()
        pred_edges = np.empty(0)
        if kind == "classes":
            classes = tuple(prediction.get("classes") or ())
            pred_props = _proportions("prediction", prediction.get("proportions"), len(classes))
        elif kind == "values":
            pred_edges = _edges("prediction", prediction.get("edges"))
            pred_props = _proportions(
                "prediction", prediction.get("proportions"), pred_edges.size + 1
            )
        elif kind is None:
            pred_props = np.empty(0)
        else:
            raise ValueError(
                f"reference prediction kind must be 'classes' or 'values', got {kind!r}"
            )
        conf = data.get("confidence")
        conf_edges = conf_props = None
        if conf:
            conf_edges = _edges("confidence", conf.get("edges"))
            conf_props = _proportions("confidence", conf.get("proportions"), conf_edges.size + 1)
        edges, expected = _kernel_layout(numerical)
        return cls(
            n_rows=int(data.get("n_rows") or 0),
            numerical=numerical,
            categorical=categorical,
            prediction_kind=kind,
            prediction_classes=classes,
            prediction_edges=pred_edges,
            prediction_proportions=pred_props,
            confidence_edges=conf_edges,
            confidence_proportions=conf_props,
            edges=edges,
            expected=expected,
        )

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.numerical)

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.categorical)


def _numeric(name: str, spec: dict[str, Any]) -> NumericReference:
    edges = _edges(name, spec.get("edges"))
    props = _proportions(name, spec.get("proportions"), edges.size + 1)
    sample = np.asarray(spec.get("sample") or [], dtype=np.float64)
    sample = np.sort(sample[~np.isnan(sample)])
    return NumericReference(name, edges, props, sample)


def _categorical(name: str, spec: dict[str, Any]) -> CategoricalReference:
    categories = tuple(spec.get("categories") or ())
    if len(set(categories)) != len(categories):
        raise ValueError(f"reference categories of {name!r} repeat a value")
    freqs = _proportions(name, spec.get("frequencies"), len(categories))
    return CategoricalReference(name, categories, freqs)


def _edges(name: str, raw: Any) -> np.ndarray:
    edges = np.asarray(raw if raw is not None else [], dtype=np.float64)
    if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"reference edges of {name!r} must be finite and strictly increasing")
    return edges


def _proportions(name: str, raw: Any, size: int) -> np.ndarray:
    props = np.asarray(raw if raw is not None else [], dtype=np.float64)
    if props.shape != (size,):
        raise ValueError(f"reference of {name!r} needs {size} proportions, got {props.size}")
    if np.any(props < 0) or (size and abs(props.sum() - 1.0) > 1e-6):
        raise ValueError(f"reference proportions of {name!r} must be >= 0 and sum to 1")
    return props


def _kernel_layout(features: tuple[NumericReference, ...]) -> tuple[np.ndarray, np.ndarray]:
    # see psi_numba: edges NaN-padded to the widest feature, expected zero-padded
    width = max((f.edges.size for f in features), default=0)
    edges = np.full((len(features), width), np.nan)
    expected = np.zeros((len(features), width + 1))
    for j, feature in enumerate(features):
        edges[j, : feature.edges.size] = feature.edges
        expected[j, : feature.edges.size + 1] = feature.proportions
    return edges, expected
