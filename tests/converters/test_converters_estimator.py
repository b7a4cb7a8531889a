"""Loading estimator files and refusing what cannot be converted, with one-line messages."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC

from converters import ConversionError, EstimatorError, convert, load_estimator


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 400
    return message


def test_loads_a_fitted_pipeline(tmp_path, numeric_data, fit_quiet):
    X, y = numeric_data(rows=100)
    estimator = fit_quiet(make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    joblib.dump(estimator, tmp_path / "m.joblib")
    loaded = load_estimator(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    with open(tmp_path / "m.pkl", "wb") as handle:
        pickle.dump(estimator, handle)
    assert isinstance(load_estimator(tmp_path / "m.pkl"), Pipeline)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a pickle", "not a joblib/pickle file"),
        (b"cmodelgate_no_such_module\nThing\n.", "cannot unpickle: No module named"),
        (b"", "not a joblib/pickle file"),
    ],
    ids=["garbage", "missing-module", "empty"],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.joblib"
    path.write_bytes(content)
    with pytest.raises(EstimatorError, match=message) as info:
        load_estimator(path)
    _one_line(info)


def test_missing_file(tmp_path):
    with pytest.raises(EstimatorError, match="no such file"):
        load_estimator(tmp_path / "absent.joblib")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"weights": [1, 2]}, "holds a builtins.dict, not a scikit-learn estimator"),
        (np.arange(3), "not a scikit-learn estimator"),
        (LogisticRegression(), "LogisticRegression is not fitted"),
        (make_pipeline(StandardScaler(), LogisticRegression()), "Pipeline is not fitted"),
    ],
    ids=["dict", "array", "unfitted", "unfitted-pipeline"],
)
def test_refused_objects(tmp_path, obj, message):
    joblib.dump(obj, tmp_path / "x.joblib")
    with pytest.raises(EstimatorError, match=message) as info:
        load_estimator(tmp_path / "x.joblib")
    _one_line(info)


def test_a_transformer_is_not_a_model(tmp_path, numeric_data):
    X, _ = numeric_data(rows=50)
    joblib.dump(StandardScaler().fit(X), tmp_path / "s.joblib")
    with pytest.raises(EstimatorError, match="neither a classifier nor a regressor"):
        load_estimator(tmp_path / "s.joblib")


def test_an_estimator_without_a_converter_names_its_step(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100)
    estimator = fit_quiet(
        Pipeline([("scale", StandardScaler()), ("model", NearestCentroid())]), X, y
    )
    with pytest.raises(ConversionError) as info:
        convert(estimator, X)
    message = _one_line(info)
    assert message.startswith("cannot convert step 'model' (NearestCentroid): ")


def test_a_nested_unsupported_transformer_names_its_path(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100)
    prep = ColumnTransformer([("kernel", RBFSampler(n_components=5, random_state=0), ["x0", "x1"])])
    estimator = fit_quiet(Pipeline([("prep", prep), ("model", LogisticRegression())]), X, y)
    with pytest.raises(ConversionError) as info:
        convert(estimator, X)
    assert _one_line(info).startswith("cannot convert step 'prep/kernel' (RBFSampler): ")


def test_a_skl2onnx_failure_names_the_step_without_a_traceback(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100)
    estimator = fit_quiet(
        Pipeline([("log", FunctionTransformer(np.abs)), ("model", LogisticRegression())]), X, y
    )
    with pytest.raises(ConversionError) as info:
        convert(estimator, X)
    assert _one_line(info).startswith("cannot convert step 'log' (FunctionTransformer): ")


def test_a_classifier_without_probabilities_is_refused(numeric_data, fit_quiet):
    X, y = numeric_data(rows=100)
    estimator = fit_quiet(Pipeline([("model", LinearSVC())]), X, y)
    with pytest.raises(ConversionError, match=r"step 'model' \(LinearSVC\): .*predict_proba"):
        convert(estimator, X)
