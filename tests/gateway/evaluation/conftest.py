"""Small real models (scikit-learn -> ONNX through the converters) and their labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from converters.sklearn_onnx import convert  # noqa: E402


@dataclass
class Case:
    estimator: BaseEstimator
    onnx_bytes: bytes
    schema: dict[str, Any]
    data: pd.DataFrame  # features + label + group columns
    features: list[str]
    label: str


def _case(estimator: BaseEstimator, data: pd.DataFrame, features: list[str], label: str) -> Case:
    estimator.fit(data[features], data[label])
    conversion = convert(estimator, data[features])
    return Case(estimator, conversion.onnx_bytes, conversion.schema, data, features, label)


def binary_data(seed: int = 0, n: int = 600, signal: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["tenure", "spend", "calls", "age"])
    gender = rng.choice(["f", "m"], n)
    logit = signal * (1.5 * frame["tenure"] - frame["calls"]) + 0.4 * (gender == "m")
    frame["gender"] = gender
    frame["region"] = rng.choice(["north", "south", "east"], n)
    frame["churned"] = (logit + rng.logistic(size=n) > 0).astype(int)
    return frame


@pytest.fixture(scope="session")
def binary_case() -> Case:
    data = binary_data()
    return _case(LogisticRegression(), data, ["tenure", "spend", "calls", "age"], "churned")


@pytest.fixture(scope="session")
def weak_binary_case() -> Case:
    """Same data as binary_case, trained on an uninformative feature only."""
    data = binary_data()
    case = _case(LogisticRegression(), data, ["spend", "age"], "churned")
    return case


@pytest.fixture(scope="session")
def multiclass_case() -> Case:
    rng = np.random.default_rng(1)
    n = 500
    data = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "plan": rng.choice(["basic", "pro", "max"], n),
        }
    )
    noise = rng.normal(scale=0.6, size=n)
    data["outcome"] = np.where(
        data["a"] + (data["plan"] == "pro") + noise > 0.7,
        "churn",
        np.where(data["b"] + noise > 0, "stay", "maybe"),
    )
    data["segment"] = rng.choice(["s1", "s2"], n)
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    estimator = make_pipeline(columns, LogisticRegression(max_iter=500))
    return _case(estimator, data, ["a", "b", "plan"], "outcome")


@pytest.fixture(scope="session")
def regression_case() -> Case:
    rng = np.random.default_rng(2)
    n = 400
    data = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x1", "x2", "x3"])
    data["price"] = 3 * data["x1"] - 2 * data["x2"] + rng.normal(scale=0.5, size=n) + 10
    data["store"] = rng.choice(["A", "B"], n)
    return _case(Ridge(alpha=1.0), data, ["x1", "x2", "x3"], "price")
