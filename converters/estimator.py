"""Loading a fitted scikit-learn estimator and walking its pipeline steps.

Unpickling runs code from the file: load only estimators you trust.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from converters.errors import EstimatorError
from converters.framework_names import LIBRARIES, library_of, missing_extra


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def load_estimator(path: str | Path) -> BaseEstimator:
    """joblib/pickle load; EstimatorError unless it is a fitted scikit-learn model."""
    path = Path(path)
    if not path.is_file():
        raise EstimatorError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # version-mismatch warnings are not errors: parity decides whether it still works
            warnings.simplefilter("ignore")
            estimator = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EstimatorError(f"{path}: not a joblib/pickle file ({_short(exc)})") from None
    except (ImportError, AttributeError) as exc:
        library = (getattr(exc, "name", None) or "").split(".", 1)[0]
        if isinstance(exc, ImportError) and library in LIBRARIES:
            raise missing_extra(f"{path}: loading this {library} model", [library]) from None
        raise EstimatorError(f"{path}: cannot unpickle: {_short(exc)}") from None
    except Exception as exc:  # arbitrary code runs while unpickling
        raise EstimatorError(f"{path}: cannot load: {type(exc).__name__}: {_short(exc)}") from None
    check_estimator(estimator, str(path))
    return estimator


def check_estimator(estimator: Any, where: str = "estimator") -> None:
    """EstimatorError unless ``estimator`` is a fitted classifier or regressor of scikit-learn
    (or of XGBoost / LightGBM through their scikit-learn classes)."""
    module = type(estimator).__module__ or ""
    if not (
        isinstance(estimator, BaseEstimator)
        and (
            module.startswith("sklearn.")
            or isinstance(estimator, Pipeline)
            or library_of(estimator) is not None
        )
    ):
        raise EstimatorError(
            f"{where}: holds a {type(estimator).__module__}.{type(estimator).__name__}, "
            "not a scikit-learn estimator or Pipeline"
        )
    if not (
        hasattr(estimator, "fit")
        and hasattr(estimator, "predict")
        and (is_classifier(estimator) or is_regressor(estimator))
    ):
        raise EstimatorError(
            f"{where}: {type(estimator).__name__} is neither a classifier nor a regressor"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise EstimatorError(f"{where}: {type(estimator).__name__} is not fitted") from None


def final_step(estimator: BaseEstimator) -> tuple[str, BaseEstimator]:
    """The (path, estimator) of the model at the end of (nested) pipelines."""
    path: list[str] = []
    while isinstance(estimator, Pipeline):
        name, estimator = estimator.steps[-1]
        path.append(name)
    return ("/".join(path) or "estimator"), estimator


def iter_steps(estimator: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every estimator inside pipelines / column transformers / unions, with its step path."""
    yield (prefix or "estimator"), estimator
    children: list[tuple[str, Any]] = []
    if isinstance(estimator, Pipeline):
        children = list(estimator.steps)
    elif isinstance(estimator, ColumnTransformer):
        fitted = getattr(estimator, "transformers_", None) or estimator.transformers
        children = [(name, trans) for name, trans, _cols in fitted]
    elif isinstance(estimator, FeatureUnion):
        children = list(estimator.transformer_list)
    for name, child in children:
        if isinstance(child, str):  # "drop" / "passthrough"
            continue
        yield from iter_steps(child, f"{prefix}/{name}" if prefix else name)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def describe(estimator: BaseEstimator) -> str:
    """``sklearn.pipeline.Pipeline[StandardScaler,LogisticRegression]``."""
    cls = type(estimator)
    text = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(estimator, Pipeline):
        inner = ",".join(
            type(step).__name__ for _, step in estimator.steps if not isinstance(step, str)
        )
        text += f"[{inner}]"
    return text
