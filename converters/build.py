"""Everything registration needs, without the registry: convert, prove parity, capture
reference distributions, assemble lineage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator

from converters.data import dataset_fingerprint, split_label
from converters.errors import ConversionError
from converters.estimator import check_estimator
from converters.lineage import build_lineage
from converters.metrics import sample_performance
from converters.parity import ABS_TOLERANCE, REL_TOLERANCE
from converters.reference import build_reference
from converters.runner import run
from converters.schema import align_sample
from converters.verify import convert_verified


@dataclass(frozen=True, slots=True)
class Prepared:
    onnx_bytes: bytes
    schema: dict[str, Any]
    lineage: dict[str, Any]
    reference: dict[str, Any]
    parity: dict[str, Any]


def prepare(
    estimator: BaseEstimator,
    sample: pd.DataFrame,
    label: str | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
    git_commit: str | None = None,
    abs_tolerance: float = ABS_TOLERANCE,
    rel_tolerance: float = REL_TOLERANCE,
) -> Prepared:
    """``sample`` holds held-out rows (features, plus the ``label`` column when given).

    ``abs_tolerance`` bounds classifier probability differences, ``rel_tolerance`` regressor
    relative differences (see converters.parity).
    """
    if not (abs_tolerance >= 0 and rel_tolerance >= 0):
        raise ConversionError("parity tolerances must be >= 0")
    check_estimator(estimator)
    features, y = split_label(sample, label)
    features = align_sample(estimator, features)
    verified = convert_verified(
        estimator,
        features,
        force=force,
        abs_tolerance=abs_tolerance,
        rel_tolerance=rel_tolerance,
    )
    conversion, parity = verified.conversion, verified.parity
    schema = conversion.schema
    outputs = run(conversion.onnx_bytes, schema, features)
    lineage = build_lineage(
        estimator,
        schema,
        fingerprint=dataset_fingerprint(sample),
        sample_rows=len(sample),
        onnx_info=conversion.onnx_info,
        conversion=verified.choice,
        performance=sample_performance(schema, y, outputs) if y is not None else None,
        metadata=metadata,
        git_commit=git_commit,
    )
    return Prepared(
        onnx_bytes=conversion.onnx_bytes,
        schema=schema,
        lineage=lineage,
        reference=build_reference(schema, features, outputs, labels=y),
        parity=parity,
    )
