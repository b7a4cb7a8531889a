from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from converters import prepare
from converters.reference import (
    bin_proportions,
    categorical_reference,
    numerical_reference,
    quantile_edges,
)


def test_edges_are_inner_deduplicated_quantiles():
    values = np.arange(1, 101, dtype=float)
    edges = quantile_edges(values)
    assert len(edges) == 9 and np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(edges, np.quantile(values, np.arange(1, 10) / 10))
    assert quantile_edges(np.array([1.0] * 50 + [2.0] * 50)).tolist() == [1.0, 1.5, 2.0]
    assert quantile_edges(np.full(20, 3.0)).tolist() == [3.0]


def test_proportions_follow_searchsorted_right():
    edges = np.array([1.0, 2.0, 3.0])
    # bin i holds edges[i-1] <= x < edges[i]: a value equal to an edge goes right
    values = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 3.5])
    assert bin_proportions(values, edges).tolist() == pytest.approx([1 / 6, 2 / 6, 1 / 6, 2 / 6])


def test_out_of_range_values_land_in_the_open_outer_bins():
    reference = numerical_reference(np.linspace(0, 1, 1000))
    edges = np.array(reference["edges"])
    far = bin_proportions(np.array([-1e9, -5.0, 7.0, 1e12]), edges)
    assert far[0] == 0.5 and far[-1] == 0.5 and far.sum() == 1.0


def test_numerical_reference_semantics():
    rng = np.random.default_rng(0)
    values = rng.normal(size=12000)
    values[:600] = np.nan
    reference = numerical_reference(values, seed=1)
    assert sum(reference["proportions"]) == pytest.approx(1.0)
    assert len(reference["proportions"]) == len(reference["edges"]) + 1
    assert all(p == pytest.approx(0.1, abs=0.002) for p in reference["proportions"])
    assert len(reference["sample"]) == 5000 and not np.isnan(reference["sample"]).any()
    assert reference["missing"] == pytest.approx(0.05)
    assert numerical_reference(values, seed=1)["sample"] == reference["sample"]  # seeded


def test_all_missing_column_keeps_one_open_bin():
    reference = numerical_reference(np.full(5, np.nan))
    assert reference["edges"] == [] and reference["proportions"] == [1.0]
    assert reference["missing"] == 1.0


def test_categorical_frequencies_and_the_other_bucket():
    column = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + [None])
    reference = categorical_reference(column)
    assert reference["categories"] == ["a", "b", "c"]
    assert reference["frequencies"] == pytest.approx([0.5, 0.3, 0.2])
    assert reference["missing"] == pytest.approx(1 / 11)
    many = pd.Series([f"c{i}" for i in range(150)] + ["c0"] * 10)
    capped = categorical_reference(many, max_categories=100)
    assert len(capped["categories"]) == 100 and capped["categories"][-1] == "__other__"
    assert capped["categories"][0] == "c0"
    assert sum(capped["frequencies"]) == pytest.approx(1.0)


def test_classifier_reference_from_onnx_predictions(mixed_data, fit_quiet):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = mixed_data(rows=800)
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "charges"]),
            ("cat", OneHotEncoder(), ["plan", "region"]),
        ]
    )
    estimator = fit_quiet(Pipeline([("prep", prep), ("model", LogisticRegression())]), X, y)
    reference = prepare(estimator, X.iloc[400:]).reference
    assert reference["n_rows"] == 400 and reference["bins"] == 10
    assert set(reference["numerical"]) == {"tenure", "charges"}
    assert set(reference["categorical"]) == {"plan", "region"}
    prediction = reference["prediction"]
    assert prediction["kind"] == "classes" and prediction["classes"] == [0, 1]
    expected = np.bincount(estimator.predict(X.iloc[400:]), minlength=2) / 400
    assert prediction["proportions"] == pytest.approx(expected.tolist())
    confidence = reference["confidence"]
    assert sum(confidence["proportions"]) == pytest.approx(1.0)
    assert all(0.5 <= e <= 1.0 for e in confidence["edges"])


def test_regressor_reference_has_value_bins(numeric_data, fit_quiet):
    X, _ = numeric_data(rows=400)
    estimator = fit_quiet(Ridge(), X, X["x0"] * 10)
    reference = prepare(estimator, X).reference
    assert reference["prediction"]["kind"] == "values"
    assert len(reference["prediction"]["edges"]) == 9
    assert sum(reference["prediction"]["proportions"]) == pytest.approx(1.0)
    assert reference["confidence"] is None


def test_the_calibration_is_fitted_on_the_sample_labels_not_the_predictions(mixed_data, fit_quiet):
    """A labelled sample the model gets half wrong: the stored calibration must say so
    (fitting it on the model's own predictions would claim every row right)."""
    from sklearn.linear_model import LogisticRegression

    X, y = mixed_data(rows=1200)
    numeric = X[["tenure", "charges"]]
    estimator = fit_quiet(LogisticRegression(), numeric, y)
    rng = np.random.default_rng(7)
    noisy = np.where(rng.uniform(size=len(y)) < 0.5, y, 1 - y)  # half the labels flipped
    sample = numeric.assign(churned=noisy)
    calibration = prepare(estimator, sample, "churned").reference["calibration"]
    # P(class 1 | score) of a coin flip is about 0.5 wherever the score is
    assert calibration["kind"] == "binary"
    assert max(abs(v - 0.5) for v in calibration["y"][1:-1]) < 0.25
    truth = (estimator.predict(numeric) == noisy).mean()
    assert abs(truth - 0.5) < 0.05
