"""Parity of every supported estimator family on held-out rows (train on one split, prove on
another), through the whole conversion path (convert -> onnxruntime -> compare)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from converters import prepare

TRAIN = 400

CLASSIFIERS = {
    "logistic_regression": lambda: LogisticRegression(max_iter=500),
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=15, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "svc_probability": lambda: SVC(probability=True, random_state=0),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0),
    "scaler_logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "minmax_mlp": lambda: make_pipeline(
        MinMaxScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)
    ),
}


def _held_out(X: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    sample = X.iloc[TRAIN:].copy()
    sample["y"] = y[TRAIN:]
    return sample


def _assert_passed(parity: dict, rows: int) -> None:
    assert parity["passed"] is True and parity["forced"] is False
    assert parity["rows"] == rows
    assert parity["max_abs_diff"] < 1e-4
    # every disagreement is a documented near tie
    flipped = parity["flipped_near_ties"]
    assert parity["label_agreement"] == pytest.approx(1 - flipped / rows)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # SVC(probability=True) is deprecated in 1.9
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_parity_on_held_out_rows(name, n_classes, numeric_data, fit_quiet):
    X, y = numeric_data(rows=600, n_classes=n_classes)
    estimator = fit_quiet(CLASSIFIERS[name](), X.iloc[:TRAIN], y[:TRAIN])
    prepared = prepare(estimator, _held_out(X, y), "y")
    _assert_passed(prepared.parity, 200)
    schema = prepared.schema
    assert schema["task"] == "classification"
    assert schema["classes"] == list(range(n_classes))
    assert [i["name"] for i in schema["inputs"]] == ["input"]
    assert prepared.reference["prediction"]["classes"] == list(range(n_classes))


REGRESSORS = {
    "ridge": lambda: Ridge(alpha=0.5),
    "random_forest_regressor": lambda: RandomForestRegressor(n_estimators=15, random_state=0),
    "hist_gradient_boosting_regressor": lambda: HistGradientBoostingRegressor(max_iter=20),
    "scaler_ridge": lambda: make_pipeline(StandardScaler(), Ridge()),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_parity_on_held_out_rows(name, numeric_data, fit_quiet):
    X, _ = numeric_data(rows=600)
    target = 3 * X["x0"] - 0.1 * X["x1"] + X["x2"] ** 2 + 40
    estimator = fit_quiet(REGRESSORS[name](), X.iloc[:TRAIN], target.iloc[:TRAIN])
    sample = X.iloc[TRAIN:].assign(y=target.iloc[TRAIN:])
    prepared = prepare(estimator, sample, "y")
    parity = prepared.parity
    assert parity["passed"] is True and parity["rows"] == 200
    assert parity["max_rel_diff"] < 1e-4
    assert parity["label_agreement"] is None and parity["rel_tolerance"] == 1e-4
    assert prepared.schema["value_output"] and prepared.schema["classes"] is None
    assert prepared.lineage["performance"]["test_r2"] > 0.5


def _column_pipeline(model, scale: bool = True) -> Pipeline:
    # trees get raw numbers: a float32 scaler in front of a tree can move a value that sits
    # exactly on a split threshold (an integer feature value absent from a bootstrap sample)
    # to the other side, which parity rightly refuses
    prep = ColumnTransformer(
        [
            ("num", StandardScaler() if scale else "passthrough", ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=15, random_state=0),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_column_transformer_with_strings_and_an_unseen_category(model, mixed_data, fit_quiet):
    X, y = mixed_data(rows=600)
    pipeline = _column_pipeline(model, scale=isinstance(model, LogisticRegression))
    estimator = fit_quiet(pipeline, X.iloc[:TRAIN], y[:TRAIN])
    sample = _held_out(X, y)
    unseen = sample.index[:15]
    sample["plan"] = sample["plan"].astype(object)
    sample.loc[unseen, "plan"] = "enterprise"  # never seen in training
    prepared = prepare(estimator, sample, "y")
    _assert_passed(prepared.parity, 200)
    inputs = {i["name"]: i for i in prepared.schema["inputs"]}
    assert list(inputs) == ["tenure", "charges", "plan", "region"]
    assert inputs["plan"]["datatype"] == "BYTES" and inputs["tenure"]["datatype"] == "FP32"
    assert all(i["shape"] == [-1, 1] for i in inputs.values())
    assert "enterprise" in prepared.reference["categorical"]["plan"]["categories"]


def _with_nan(X: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    X = X.copy()
    mask = np.random.default_rng(seed).random(X.shape) < 0.1
    X[mask] = np.nan
    return X


@pytest.mark.parametrize(
    "factory",
    [
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()),
        lambda: make_pipeline(
            SimpleImputer(strategy="median"), RandomForestClassifier(10, random_state=0)
        ),
        lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),  # NaN natively
    ],
    ids=["imputer_logistic", "imputer_forest", "hgb_native_nan"],
)
def test_missing_values_through_imputers(factory, numeric_data, fit_quiet):
    X, y = numeric_data(rows=600, n_classes=3)
    X = _with_nan(X)
    estimator = fit_quiet(factory(), X.iloc[:TRAIN], y[:TRAIN])
    sample = _held_out(X, y)
    assert sample.drop(columns="y").isna().any().any()
    prepared = prepare(estimator, sample, "y")
    _assert_passed(prepared.parity, 200)
    assert prepared.schema["allow_missing"] is True
    assert prepared.reference["numerical"]["x0"]["missing"] > 0


def test_imputed_regressor_with_nan(numeric_data, fit_quiet):
    X, _ = numeric_data(rows=600)
    target = (2 * X["x0"] + 0.05 * X["x1"]).to_numpy()
    X = _with_nan(X)
    estimator = fit_quiet(make_pipeline(SimpleImputer(), Ridge()), X.iloc[:TRAIN], target[:TRAIN])
    prepared = prepare(estimator, X.iloc[TRAIN:].assign(t=target[TRAIN:]), "t")
    assert prepared.parity["passed"] and prepared.schema["allow_missing"] is True


def test_string_class_labels(mixed_data, fit_quiet):
    X, y = mixed_data(rows=500)
    labels = np.where(y == 1, "churn", "stay")
    estimator = fit_quiet(_column_pipeline(LogisticRegression()), X.iloc[:TRAIN], labels[:TRAIN])
    sample = X.iloc[TRAIN:].assign(outcome=labels[TRAIN:])
    prepared = prepare(estimator, sample, "outcome")
    _assert_passed(prepared.parity, 100)
    schema = prepared.schema
    assert schema["classes"] == ["churn", "stay"]
    label_out = next(o for o in schema["outputs"] if o["name"] == schema["label_output"])
    assert label_out["datatype"] == "BYTES"
    assert sum(prepared.reference["prediction"]["proportions"]) == pytest.approx(1.0)


def test_parity_uses_at_most_2000_rows(numeric_data, fit_quiet):
    X, y = numeric_data(rows=2600)
    estimator = fit_quiet(LogisticRegression(), X.iloc[:TRAIN], y[:TRAIN])
    prepared = prepare(estimator, _held_out(X, y), "y")
    assert prepared.parity["rows"] == 2000
    assert prepared.reference["n_rows"] == 2200  # reference distributions use every row
