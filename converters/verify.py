"""Parity glue: run scikit-learn and the ONNX graph on held-out sample rows and compare."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from converters import parity as parity_mod
from converters.errors import ConversionError
from converters.runner import run
from converters.schema import normalise_labels
from converters.sklearn_onnx import Conversion


def parity_rows(
    frame: pd.DataFrame, max_rows: int = parity_mod.MAX_ROWS, seed: int = 0
) -> pd.DataFrame:
    """At most ``max_rows`` rows of the sample (a seeded subset, original order kept)."""
    if len(frame) <= max_rows:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[picked]


def _sklearn_input(estimator: BaseEstimator, frame: pd.DataFrame) -> Any:
    # an estimator fitted on a bare array warns when given named columns
    if getattr(estimator, "feature_names_in_", None) is None:
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return frame


def _sklearn_outputs(estimator: BaseEstimator, frame: pd.DataFrame, task: str) -> dict[str, Any]:
    data = _sklearn_input(estimator, frame)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if task == "classification":
                return {"proba": estimator.predict_proba(data), "labels": estimator.predict(data)}
            return {"values": estimator.predict(data)}
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConversionError(f"the estimator fails on the sample: {reason}") from None


def check_parity(
    estimator: BaseEstimator,
    conversion: Conversion,
    frame: pd.DataFrame,
    *,
    force: bool = False,
    abs_tolerance: float = parity_mod.ABS_TOLERANCE,
    rel_tolerance: float = parity_mod.REL_TOLERANCE,
) -> dict[str, Any]:
    """The parity record for ``frame`` (aligned feature columns); ParityError unless it passes
    or ``force`` is set."""
    schema = conversion.schema
    # scikit-learn sees the sample as given, ONNX sees it as served (rounded to float32): the
    # comparison covers what a client gets back for the values it sends
    rows = parity_rows(frame)
    expected = _sklearn_outputs(estimator, rows, schema["task"])
    got = run(conversion.onnx_bytes, schema, rows)
    if schema["task"] == "classification":
        classes = schema["classes"]
        result = parity_mod.compare_classifier(
            expected["proba"],
            normalise_labels(expected["labels"], classes),
            got[schema["probability_output"]],
            normalise_labels(got[schema["label_output"]], classes),
            abs_tolerance=abs_tolerance,
        )
    else:
        result = parity_mod.compare_regressor(
            expected["values"], got[schema["value_output"]], rel_tolerance=rel_tolerance
        )
    return parity_mod.enforce(result, force=force)
