"""The pure parity rules (table-driven) and refusals on real graphs (tampered, zero tolerance)."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from converters import ParityError, convert, prepare
from converters.parity import compare_classifier, compare_regressor, enforce
from converters.verify import check_parity

P = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
LABELS = np.array([0, 1, 0])


def test_identical_outputs_pass():
    result = compare_classifier(P, LABELS, P.astype(np.float32), LABELS)
    assert result["passed"] and result["max_abs_diff"] < 1e-7
    assert result["label_agreement"] == 1.0 and result["flipped_near_ties"] == 0
    assert result["abs_tolerance"] == 1e-4 and result["rel_tolerance"] is None


def test_probability_difference_beyond_tolerance_fails():
    shifted = P + np.array([[2e-4, -2e-4], [0, 0], [0, 0]])
    result = compare_classifier(P, LABELS, shifted, LABELS)
    assert not result["passed"] and result["max_abs_diff"] == pytest.approx(2e-4)
    assert compare_classifier(P, LABELS, shifted, LABELS, abs_tolerance=3e-4)["passed"]


def test_a_label_flip_on_an_exact_tie_is_tolerated_and_counted():
    flipped = np.array([0, 1, 1])  # row 2 is 0.5 / 0.5
    result = compare_classifier(P, LABELS, P, flipped)
    assert result["passed"]
    assert result["flipped_near_ties"] == 1
    assert result["label_agreement"] == pytest.approx(2 / 3)


def test_a_label_flip_away_from_a_tie_fails_even_with_equal_probabilities():
    result = compare_classifier(P, LABELS, P, np.array([1, 1, 0]))
    assert not result["passed"] and result["flipped_near_ties"] == 0


def test_near_tie_threshold_is_on_the_sklearn_top_two():
    probs = np.array([[0.2, 0.399996, 0.400004]])  # top two 8e-6 apart
    assert compare_classifier(probs, np.array([2]), probs, np.array([1]))["passed"]
    wider = np.array([[0.2, 0.39, 0.41]])
    assert not compare_classifier(wider, np.array([2]), wider, np.array([1]))["passed"]


def test_nan_on_one_side_fails_and_on_both_sides_is_equal():
    a = np.array([[0.5, np.nan]])
    assert not compare_classifier(a, [0], np.array([[0.5, 0.5]]), [0])["passed"]
    assert compare_classifier(a, [0], a.copy(), [0])["max_abs_diff"] == 0.0
    assert not compare_regressor([1.0, 2.0], [1.0, np.nan])["passed"]


def test_string_labels_compare_by_value():
    labels = np.array(["yes", "no", "yes"], dtype=object)
    assert compare_classifier(P, labels, P, labels.copy())["passed"]


@pytest.mark.parametrize(
    ("reference", "candidate", "passed"),
    [
        ([100.0, 200.0], [100.001, 200.0], True),  # 1e-5 relative
        ([100.0, 200.0], [100.05, 200.0], False),  # 5e-4 relative
        # a prediction of exactly 0 is judged against 1 % of the mean magnitude (0.75)
        ([0.0, 150.0], [5e-5, 150.0], True),
        ([0.0, 150.0], [1e-3, 150.0], False),
        ([-3.0, -3.0], [-3.0001, -3.0], True),
    ],
)
def test_regressor_relative_rule(reference, candidate, passed):
    result = compare_regressor(np.array(reference), np.array(candidate).reshape(-1, 1))
    assert result["passed"] is passed
    assert result["label_agreement"] is None and result["rel_tolerance"] == 1e-4
    assert result["max_abs_diff"] == pytest.approx(
        np.max(np.abs(np.subtract(reference, candidate)))
    )


def test_regressor_floor_for_all_zero_predictions():
    result = compare_regressor(np.zeros(3), np.zeros(3))
    assert result["passed"] and result["rel_floor"] == 1e-6


def test_enforce_refuses_with_the_numbers_and_records_force():
    failing = compare_classifier(P, LABELS, P + 0.01, LABELS)
    with pytest.raises(ParityError) as info:
        enforce(failing)
    message = str(info.value)
    assert "max |Δp| 0.01" in message and "3 rows" in message and "--force" in message
    assert "\n" not in message
    assert info.value.parity["passed"] is False
    forced = enforce(failing, force=True)
    assert forced["forced"] is True and forced["passed"] is False
    passing = compare_classifier(P, LABELS, P, LABELS)
    assert enforce(passing, force=True)["forced"] is False


def _fit_lr(numeric_data, fit_quiet):
    X, y = numeric_data(rows=500)
    return X, y, fit_quiet(LogisticRegression(), X.iloc[:300], y[:300])


def _tamper(conversion):
    """Add 0.5 to every coefficient of the linear classifier in the graph."""
    model = onnx.load_from_string(conversion.onnx_bytes)
    nodes = [n for n in model.graph.node if n.op_type == "LinearClassifier"]
    assert nodes, [n.op_type for n in model.graph.node]
    for attr in nodes[0].attribute:
        if attr.name == "coefficients":
            values = list(attr.floats)
            del attr.floats[:]
            attr.floats.extend(v + 0.5 for v in values)
    for init in model.graph.initializer:  # (opset variants keep them as initializers)
        if "coef" in init.name.lower():
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.5, init.name))
    return dataclasses.replace(conversion, onnx_bytes=model.SerializeToString())


def test_a_tampered_graph_is_refused_and_accepted_only_with_force(numeric_data, fit_quiet):
    X, _, estimator = _fit_lr(numeric_data, fit_quiet)
    held_out = X.iloc[300:]
    tampered = _tamper(convert(estimator, held_out))
    with pytest.raises(ParityError) as info:
        check_parity(estimator, tampered, held_out)
    assert info.value.parity["max_abs_diff"] > 0.01
    forced = check_parity(estimator, tampered, held_out, force=True)
    assert forced["forced"] is True and forced["passed"] is False
    assert check_parity(estimator, convert(estimator, held_out), held_out)["passed"]


def test_zero_tolerance_exposes_float32_rounding(numeric_data, fit_quiet):
    X, y = numeric_data(rows=500, n_classes=3)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0)
    estimator = fit_quiet(mlp, X.iloc[:300], y[:300])
    sample = X.iloc[300:].assign(y=y[300:])
    with pytest.raises(ParityError):
        prepare(estimator, sample, "y", abs_tolerance=0.0)
    forced = prepare(estimator, sample, "y", abs_tolerance=0.0, force=True)
    assert forced.parity["forced"] is True and forced.parity["abs_tolerance"] == 0.0
    assert 0 < forced.parity["max_abs_diff"] < 1e-4
