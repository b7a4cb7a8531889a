"""Regression set: every supported estimator kind behind a StandardScaler and behind a
ColumnTransformer with string categories, registered with its training rows and with
held-out rows, passes parity without --force.

The data repeats rounded values, so training rows sit exactly on split thresholds: the
float32 graph of a tree model often fails here, and the exact-double graph must then be the
one registered (lineage "conversion" says which and why).
"""

from __future__ import annotations

import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from converters import prepare

TRAIN, HELD_OUT = 600, 300
NUMERIC = ["tenure", "charges", "usage"]
STRINGS = ["plan", "region"]

CLASSIFIERS = {
    "random_forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "decision_tree": lambda: DecisionTreeClassifier(max_depth=8, random_state=0),
    "logistic_regression": lambda: LogisticRegression(max_iter=500),
}
REGRESSORS = {
    "random_forest": lambda: RandomForestRegressor(n_estimators=10, random_state=0),
    "extra_trees": lambda: ExtraTreesRegressor(n_estimators=10, random_state=0),
    "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=20, random_state=0),
    "decision_tree": lambda: DecisionTreeRegressor(random_state=0),
    "linear_regression": LinearRegression,
    "ridge": Ridge,
}
CASES = [("classifier", name) for name in CLASSIFIERS] + [
    ("regressor", name) for name in REGRESSORS
]
TREES = {"random_forest", "extra_trees", "gradient_boosting", "hist_gradient_boosting"}
TREES |= {"decision_tree"}
# measured (scikit-learn 1.9, skl2onnx 1.20, onnxruntime 1.32): these fail parity with the
# float32 graph on both samples, so the exact-double graph must be the one registered
FLOAT32_FAILS = {
    ("classifier", "random_forest", "scaler"),
    ("classifier", "hist_gradient_boosting", "columns"),
    ("regressor", "random_forest", "scaler"),
    ("regressor", "random_forest", "columns"),
    ("regressor", "hist_gradient_boosting", "scaler"),
    ("regressor", "hist_gradient_boosting", "columns"),
}


def _wrapped(model, wrapper: str) -> tuple[Pipeline, list[str]]:
    if wrapper == "scaler":
        return Pipeline([("scale", StandardScaler()), ("model", model)]), NUMERIC
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)]), NUMERIC + STRINGS


def _assert_conversion_record(lineage: dict, parity: dict) -> None:
    conversion = lineage["conversion"]
    attempts = conversion["attempts"]
    assert conversion["graph"] == parity["graph"] == attempts[-1]["graph"]
    assert attempts[-1]["passed"] is True and attempts[-1]["rows_differ"] == 0
    if conversion["graph"] == "float32":
        assert len(attempts) == 1
    else:  # the float32 graph was tried first and refused
        assert [a["graph"] for a in attempts] == ["float32", "exact-double"]
        assert attempts[0]["passed"] is False and attempts[0]["rows_differ"] > 0


@pytest.mark.parametrize("wrapper", ["scaler", "columns"])
@pytest.mark.parametrize(("task", "name"), CASES, ids=[f"{t}-{n}" for t, n in CASES])
def test_parity_without_force_on_training_and_held_out_rows(
    task, name, wrapper, churn_data, fit_quiet
):
    X, y, target = churn_data(TRAIN + HELD_OUT)
    labels = y if task == "classifier" else target
    factory = CLASSIFIERS[name] if task == "classifier" else REGRESSORS[name]
    estimator, columns = _wrapped(factory(), wrapper)
    fit_quiet(estimator, X[columns].iloc[:TRAIN], labels[:TRAIN])
    samples = {
        "training": X[columns].iloc[:TRAIN].assign(label=labels[:TRAIN]),
        "held_out": X[columns].iloc[TRAIN:].assign(label=labels[TRAIN:]),
    }
    graphs = {}
    for which, sample in samples.items():
        prepared = prepare(estimator, sample, "label")
        parity = prepared.parity
        assert parity["passed"] is True and parity["forced"] is False, which
        assert parity["rows"] == len(sample) and parity["rows_differ"] == 0, which
        if task == "classifier":
            assert parity["max_abs_diff"] <= 1e-6 and parity["label_agreement"] == 1.0, which
        else:
            assert parity["max_rel_diff"] <= 5e-6, which
        _assert_conversion_record(prepared.lineage, parity)
        graphs[which] = parity["graph"]
        numeric = "FP64" if parity["graph"] == "exact-double" else "FP32"
        datatypes = {i["datatype"] for i in prepared.schema["inputs"]}
        assert datatypes == ({numeric} if wrapper == "scaler" else {numeric, "BYTES"})
    if (task, name, wrapper) in FLOAT32_FAILS:
        assert graphs == {"training": "exact-double", "held_out": "exact-double"}
    if name not in TREES:
        # linear models have no split to land on: their float32 graph always passes
        assert graphs == {"training": "float32", "held_out": "float32"}
