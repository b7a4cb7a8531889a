"""Classification / regression / calibration metrics against scikit-learn and hand values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from gateway.evaluation.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    reliability_bins,
)
from gateway.evaluation.classification import (
    average_precision,
    classification_metrics,
    roc_auc,
    roc_curve,
)
from gateway.evaluation.regression import regression_metrics

TOL = 1e-9


def _probabilities(rng: np.random.Generator, n: int, k: int, ties: bool) -> np.ndarray:
    raw = rng.random((n, k)) + 0.05
    if ties:  # coarse scores create many tied thresholds
        raw = np.round(raw, 1) + 0.05
    return raw / raw.sum(axis=1, keepdims=True)


def _noisy_labels(rng: np.random.Generator, proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    # labels correlated with the scores, so metrics are far from trivial
    picks = np.array([rng.choice(len(classes), p=row) for row in proba])
    return classes[picks]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_binary_metrics_equal_sklearn(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array([0, 1])
    proba = _probabilities(rng, 400, 2, ties)
    y_true = _noisy_labels(rng, proba, classes)
    y_pred = classes[np.argmax(proba, axis=1)]
    y_pred[:7] = 1 - y_pred[:7]  # labels need not be the argmax
    block = classification_metrics(y_true, y_pred, proba, [0, 1], positive=1)

    assert block["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=TOL)
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=0
        )
        assert block[f"precision_{avg}"] == pytest.approx(p, abs=TOL)
        assert block[f"recall_{avg}"] == pytest.approx(r, abs=TOL)
        assert block[f"f1_{avg}"] == pytest.approx(f, abs=TOL)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, row in enumerate(block["per_class"]):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (p[i], r[i], f[i]), abs=TOL
        )
        assert row["support"] == s[i]
    assert block["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba[:, 1]), abs=TOL)
    assert block["pr_auc"] == pytest.approx(
        skm.average_precision_score(y_true, proba[:, 1]), abs=TOL
    )
    assert block["confusion_matrix"]["matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()


def test_binary_positive_class_zero_scores_its_own_column() -> None:
    rng = np.random.default_rng(5)
    proba = _probabilities(rng, 300, 2, ties=False)
    y_true = _noisy_labels(rng, proba, np.array([0, 1]))
    block = classification_metrics(y_true, y_true, proba, [0, 1], positive=0)
    expected = skm.average_precision_score(y_true, proba[:, 0], pos_label=0)
    assert block["pr_auc"] == pytest.approx(expected, abs=TOL)
    assert block["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba[:, 1]), abs=TOL)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_metrics_equal_sklearn(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array(["ant", "bee", "cat", "dog"])
    proba = _probabilities(rng, 500, 4, ties)
    y_true = _noisy_labels(rng, proba, classes)
    y_pred = classes[np.argmax(proba, axis=1)]
    y_pred[::11] = "bee"
    block = classification_metrics(y_true, y_pred, proba, classes.tolist(), positive="dog")

    assert block["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=TOL)
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=0
        )
        assert (block[f"precision_{avg}"], block[f"recall_{avg}"], block[f"f1_{avg}"]) == (
            pytest.approx((p, r, f), abs=TOL)
        )
    assert block["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes),
        abs=TOL,
    )
    assert block["pr_auc"] == pytest.approx(
        skm.average_precision_score(y_true, proba, average="macro"), abs=TOL
    )
    assert block["confusion_matrix"]["labels"] == classes.tolist()
    assert block["confusion_matrix"]["matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()
    assert [c["class"] for c in block["roc_curves"]] == classes.tolist()


def test_labels_outside_the_model_classes_follow_sklearn_label_set() -> None:
    y_true = np.array([0, 1, 2, 2, 1, 0, 2])
    y_pred = np.array([0, 1, 1, 1, 1, 0, 0])
    block = classification_metrics(y_true, y_pred, None, [0, 1], positive=1)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    assert (block["precision_macro"], block["recall_macro"], block["f1_macro"]) == pytest.approx(
        (p, r, f), abs=TOL
    )
    assert block["confusion_matrix"]["labels"] == [0, 1, 2]
    assert block["roc_auc"] is None


def test_roc_curve_matches_sklearn_points() -> None:
    rng = np.random.default_rng(3)
    score = np.round(rng.random(200), 2)
    positive = rng.random(200) < score
    fpr, tpr = roc_curve(positive, score)
    sk_fpr, sk_tpr, _ = skm.roc_curve(positive, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=TOL)
    np.testing.assert_allclose(tpr, sk_tpr, atol=TOL)


def test_ranking_metrics_undefined_with_one_class() -> None:
    positive = np.zeros(10, dtype=bool)
    score = np.linspace(0, 1, 10)
    assert roc_auc(positive, score) is None
    assert average_precision(positive, score) is None
    assert roc_auc(~positive, score) is None
    assert average_precision(~positive, score) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(10, 3, 300)
    y_pred = y_true + rng.normal(0, 1.5, 300)
    block = regression_metrics(y_true, y_pred)
    assert block["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), abs=TOL)
    assert block["rmse"] == pytest.approx(skm.root_mean_squared_error(y_true, y_pred), abs=TOL)
    assert block["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), abs=TOL)
    assert sum(block["residual_histogram"]["counts"]) == 300


def test_r2_constant_target_follows_sklearn() -> None:
    y = np.full(5, 2.0)
    assert regression_metrics(y, y)["r2"] == skm.r2_score(y, y) == 1.0
    assert regression_metrics(y, y + 1)["r2"] == skm.r2_score(y, y + 1) == 0.0


@pytest.mark.parametrize("k", [2, 3])
def test_brier_equals_sklearn(k: int) -> None:
    rng = np.random.default_rng(k)
    classes = np.arange(k)
    proba = _probabilities(rng, 300, k, ties=False)
    y_true = _noisy_labels(rng, proba, classes)
    expected = (
        skm.brier_score_loss(y_true, proba[:, 1])
        if k == 2
        else skm.brier_score_loss(y_true, proba, labels=classes)
    )
    assert brier_score(y_true, proba, classes.tolist()) == pytest.approx(expected, abs=TOL)


def test_reliability_bins_and_ece_by_hand() -> None:
    # confidences 0.95 (x2: one right, one wrong), 0.65 (x2: both right), 1.0 (right),
    # 0.7 lands in bin [0.7, 0.8) and is wrong
    confidence = np.array([0.95, 0.95, 0.65, 0.65, 1.0, 0.7])
    correct = np.array([True, False, True, True, True, False])
    bins = reliability_bins(confidence, correct)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 0, 2, 1, 0, 3]
    assert bins[6]["mean_confidence"] == pytest.approx(0.65)
    assert bins[6]["accuracy"] == 1.0
    assert bins[7]["accuracy"] == 0.0
    assert bins[9]["mean_confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3)
    assert bins[9]["accuracy"] == pytest.approx(2 / 3)
    assert bins[0]["mean_confidence"] is None and bins[0]["accuracy"] is None
    # ECE = 2/6*|1-0.65| + 1/6*|0-0.7| + 3/6*|2/3-0.9667|
    expected = 2 / 6 * 0.35 + 1 / 6 * 0.7 + 3 / 6 * abs(2 / 3 - 2.9 / 3)
    assert expected_calibration_error(bins) == pytest.approx(expected, abs=1e-12)


def test_perfectly_calibrated_scores_have_zero_ece() -> None:
    # 10 rows at confidence 0.8 with 8 right; 10 rows at 0.6 with 6 right
    proba = np.array([[0.2, 0.8]] * 10 + [[0.6, 0.4]] * 10)
    y_true = np.array([1] * 8 + [0] * 2 + [0] * 6 + [1] * 4)
    block = calibration_metrics(y_true, proba, [0, 1])
    assert block["ece"] == pytest.approx(0.0, abs=1e-12)
    assert block["mean_confidence"] == pytest.approx(0.7)
    assert block["reliability"][8]["count"] == 10 and block["reliability"][6]["count"] == 10
    assert "binary" in block["brier_definition"]
