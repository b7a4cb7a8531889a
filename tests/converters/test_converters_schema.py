from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import KNNImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from converters import ConversionError, convert
from converters.schema import align_sample, allow_missing, classes_of, infer_features


def test_numeric_model_has_one_input_named_input(numeric_data, fit_quiet):
    X, y = numeric_data(rows=200, n_features=4)
    estimator = fit_quiet(make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    schema = convert(estimator, X).schema
    assert schema["task"] == "classification"
    assert schema["features"] == [
        {"name": f"x{i}", "dtype": "float32", "kind": "numerical"} for i in range(4)
    ]
    assert schema["inputs"] == [
        {
            "name": "input",
            "datatype": "FP32",
            "shape": [-1, 4],
            "features": ["x0", "x1", "x2", "x3"],
        }
    ]
    outputs = {o["name"]: o for o in schema["outputs"]}
    assert outputs[schema["label_output"]] == {"name": "label", "datatype": "INT64", "shape": [-1]}
    assert outputs[schema["probability_output"]]["shape"] == [-1, 2]
    assert outputs[schema["probability_output"]]["datatype"] == "FP32"
    assert schema["value_output"] is None
    assert schema["classes"] == [0, 1]
    assert schema["allow_missing"] is False


def test_regressor_schema(numeric_data, fit_quiet):
    X, _ = numeric_data(rows=200, n_features=3)
    estimator = fit_quiet(Ridge(), X, X["x0"] * 2)
    schema = convert(estimator, X).schema
    assert schema["task"] == "regression" and schema["classes"] is None
    assert schema["label_output"] is None and schema["probability_output"] is None
    value = next(o for o in schema["outputs"] if o["name"] == schema["value_output"])
    assert value["datatype"] == "FP32" and value["shape"] == [-1, 1]


def test_column_transformer_gets_one_input_per_column(mixed_data, fit_quiet):
    X, y = mixed_data(rows=200)
    prep = ColumnTransformer(
        [
            ("num", "passthrough", ["tenure", "charges"]),
            ("cat", OneHotEncoder(), ["plan", "region"]),
        ]
    )
    estimator = fit_quiet(Pipeline([("prep", prep), ("model", RandomForestClassifier(5))]), X, y)
    schema = convert(estimator, X).schema
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    assert kinds == {
        "tenure": "numerical",
        "charges": "numerical",
        "plan": "categorical",
        "region": "categorical",
    }
    assert [(i["name"], i["datatype"], i["shape"]) for i in schema["inputs"]] == [
        ("tenure", "FP32", [-1, 1]),
        ("charges", "FP32", [-1, 1]),
        ("plan", "BYTES", [-1, 1]),
        ("region", "BYTES", [-1, 1]),
    ]


def test_object_and_category_columns_are_categorical():
    frame = pd.DataFrame(
        {
            "a": [1, 2],
            "b": [0.5, 1.5],
            "c": pd.Series(["x", "y"], dtype=object),
            "d": pd.Categorical(["u", "v"]),
            "e": [True, False],
        }
    )
    kinds = [f["kind"] for f in infer_features(frame)]
    assert kinds == ["numerical", "numerical", "categorical", "categorical", "numerical"]


def test_sample_is_reordered_to_training_order(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100, n_features=3)
    estimator = fit_quiet(LogisticRegression(), X, y)
    aligned = align_sample(estimator, X[["x2", "x0", "x1"]])
    assert list(aligned.columns) == ["x0", "x1", "x2"]


def test_missing_and_extra_columns_are_named(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100, n_features=3)
    estimator = fit_quiet(LogisticRegression(), X, y)
    bad = X.drop(columns=["x1"]).assign(extra=1.0, other=2.0)
    with pytest.raises(ConversionError) as info:
        align_sample(estimator, bad)
    message = str(info.value)
    assert "missing x1" in message and "unexpected extra, other" in message


def test_column_count_is_checked_without_feature_names(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100, n_features=3)
    estimator = fit_quiet(LogisticRegression(), X.to_numpy(), y)
    with pytest.raises(
        ConversionError, match="sample has 2 feature columns, the estimator expects 3"
    ):
        align_sample(estimator, X.iloc[:, :2])
    assert list(align_sample(estimator, X).columns) == ["x0", "x1", "x2"]


def test_estimator_fitted_on_arrays_takes_numbered_sample(numeric_data, fit_quiet):
    from converters import prepare

    X, y = numeric_data(rows=300, n_features=3)
    estimator = fit_quiet(LogisticRegression(), X.to_numpy()[:200], y[:200])
    sample = pd.DataFrame(X.to_numpy()[200:], columns=["f0", "f1", "f2"])
    prepared = prepare(estimator, sample)
    assert prepared.parity["passed"]
    assert prepared.schema["inputs"][0]["features"] == ["f0", "f1", "f2"]


def test_allow_missing_detection(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100, n_features=3)
    assert allow_missing(make_pipeline(KNNImputer(), LogisticRegression()))
    assert allow_missing(HistGradientBoostingRegressor())
    nested = ColumnTransformer([("num", make_pipeline(KNNImputer(), StandardScaler()), ["x0"])])
    assert allow_missing(Pipeline([("prep", nested), ("model", LogisticRegression())]))
    assert not allow_missing(make_pipeline(StandardScaler(), LogisticRegression()))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (np.array([3, 7, 3, 7]), [3, 7]),
        (np.array([True, False, True, False]), [0, 1]),
        (np.array([0.0, 1.0, 0.0, 1.0]), [0, 1]),
        (np.array(["no", "yes", "no", "yes"]), ["no", "yes"]),
    ],
)
def test_classes_as_json_ints_or_strings(labels, expected, fit_quiet):
    X = np.array([[0.0], [1.0], [0.1], [0.9]])
    assert classes_of(fit_quiet(LogisticRegression(), X, labels)) == expected
