"""Parity glue: run scikit-learn and the ONNX graph on sample rows, compare, and choose the
graph (float32 when it reproduces scikit-learn, else exact-double; docs/conversion.md)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from converters import parity as parity_mod
from converters.errors import ConversionError
from converters.explain import parity_report
from converters.runner import run
from converters.schema import normalise_labels
from converters.sklearn_onnx import GRAPH_EXACT, GRAPH_FLOAT32, Conversion, convert


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


def compare(
    estimator: BaseEstimator,
    conversion: Conversion,
    rows: pd.DataFrame,
    expected: dict[str, Any],
    *,
    abs_tolerance: float = parity_mod.ABS_TOLERANCE,
    rel_tolerance: float = parity_mod.REL_TOLERANCE,
    explain: bool = True,
) -> dict[str, Any]:
    """The parity record of ``conversion`` on ``rows`` (scikit-learn's outputs given), with
    the graph kind and, when it fails and ``explain`` is set, the report explaining the
    differing rows."""
    schema = conversion.schema
    # scikit-learn sees the sample as given, ONNX sees it as served (float32 for a float32
    # graph, float64 for an exact one): the comparison covers what a client gets back
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
    result["graph"] = conversion.graph
    if explain and not result["passed"]:
        result["report"] = parity_report(estimator, conversion, rows, expected, got, result)
    return result


def _refused(
    estimator: BaseEstimator,
    conversion: Conversion,
    rows: pd.DataFrame,
    expected: dict[str, Any],
    result: dict[str, Any],
    attempts: list[dict[str, Any]],
    *,
    force: bool,
    exact_graph_error: str | None = None,
) -> dict[str, Any]:
    """The failed record of the graph kept, with its report; ParityError unless ``force``."""
    got = run(conversion.onnx_bytes, conversion.schema, rows)
    report = parity_report(estimator, conversion, rows, expected, got, result)
    report["attempts"] = attempts
    if exact_graph_error is not None:
        report["exact_graph_error"] = exact_graph_error
    return parity_mod.enforce({**result, "report": report}, force=force)


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
    rows = parity_rows(frame)
    expected = _sklearn_outputs(estimator, rows, conversion.schema["task"])
    result = compare(
        estimator,
        conversion,
        rows,
        expected,
        abs_tolerance=abs_tolerance,
        rel_tolerance=rel_tolerance,
    )
    return parity_mod.enforce(result, force=force)


@dataclass(frozen=True, slots=True)
class Verified:
    conversion: Conversion
    parity: dict[str, Any]  # the record to store
    choice: dict[str, Any]  # lineage "conversion" section: graph, reason, attempts


def _attempt(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "graph": result["graph"],
        "passed": result["passed"],
        "rows_differ": result["rows_differ"],
        "max_abs_diff": result["max_abs_diff"],
    }


def _differ(result: dict[str, Any]) -> str:
    return (
        f"the {result['graph']} graph differs from scikit-learn on {result['rows_differ']} of "
        f"{result['rows']} sample rows (max |Δ| {result['max_abs_diff']:.3g})"
    )


def convert_verified(
    estimator: BaseEstimator,
    frame: pd.DataFrame,
    *,
    force: bool = False,
    abs_tolerance: float = parity_mod.ABS_TOLERANCE,
    rel_tolerance: float = parity_mod.REL_TOLERANCE,
) -> Verified:
    """Convert ``estimator`` and prove parity on ``frame``: the float32 graph when it
    reproduces scikit-learn, else the exact-double graph when that one does.

    When neither passes, the one with fewer differing rows is kept (the exact one on a tie)
    and ParityError is raised unless ``force``.
    """
    # reports are built for the graph kept only: replaying the trees is not free
    tolerances: dict[str, Any] = {
        "abs_tolerance": abs_tolerance,
        "rel_tolerance": rel_tolerance,
        "explain": False,
    }
    fast = convert(estimator, frame)
    rows = parity_rows(frame)
    expected = _sklearn_outputs(estimator, rows, fast.schema["task"])
    fast_result = compare(estimator, fast, rows, expected, **tolerances)
    attempts = [_attempt(fast_result)]
    if fast_result["passed"]:
        reason = "the float32 graph reproduces scikit-learn on the sample"
        choice = {"graph": GRAPH_FLOAT32, "reason": reason, "attempts": attempts}
        return Verified(fast, parity_mod.enforce(fast_result), choice)
    try:
        exact = convert(estimator, frame, graph=GRAPH_EXACT)
    except ConversionError as exc:
        reason = f"{_differ(fast_result)}; no exact graph: {exc}"
        choice = {"graph": GRAPH_FLOAT32, "reason": reason, "attempts": attempts}
        record = _refused(
            estimator,
            fast,
            rows,
            expected,
            fast_result,
            attempts,
            force=force,
            exact_graph_error=str(exc),
        )
        return Verified(fast, record, choice)
    exact_result = compare(estimator, exact, rows, expected, **tolerances)
    attempts.append(_attempt(exact_result))
    if exact_result["passed"]:
        reason = f"{_differ(fast_result)}; the {GRAPH_EXACT} graph reproduces it"
        choice = {"graph": GRAPH_EXACT, "reason": reason, "attempts": attempts}
        return Verified(exact, exact_result, choice)
    keep_exact = exact_result["rows_differ"] <= fast_result["rows_differ"]
    conversion, result = (exact, exact_result) if keep_exact else (fast, fast_result)
    reason = f"{_differ(fast_result)}; {_differ(exact_result)}; kept the {conversion.graph} graph"
    choice = {"graph": conversion.graph, "reason": reason, "attempts": attempts}
    record = _refused(estimator, conversion, rows, expected, result, attempts, force=force)
    return Verified(conversion, record, choice)
