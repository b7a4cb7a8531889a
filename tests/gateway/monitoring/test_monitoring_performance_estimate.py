"""Estimated classifier performance without labels: calibration at registration (converters),
estimate on a window (serving), against the realized accuracy of generated streams."""

from __future__ import annotations

import numpy as np

from converters.reference import _roc_auc, calibration_model
from gateway.monitoring.performance_estimate import Calibration, expected_roc_auc

WEIGHTS = np.array([2.0, 1.0])


def sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-t))


def stream(rng: np.random.Generator, n: int, shift: tuple[float, float], concept: float = 1.0):
    """Rows x, labels y ~ Bernoulli(sigmoid(concept * w.x)) and the model's probabilities:
    the right ranking, overconfident (3 w.x), so the raw scores are miscalibrated."""
    x = rng.normal(size=(n, 2)) + np.asarray(shift)
    y = (rng.random(n) < sigmoid(concept * (x @ WEIGHTS))).astype(np.int64)
    p1 = sigmoid(3.0 * (x @ WEIGHTS))
    return np.column_stack([1.0 - p1, p1]), y


def window(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the drift window keeps: the predicted class index and its probability."""
    return probs.argmax(axis=1).astype(np.float64), probs.max(axis=1)


def calibrated(seed: int) -> tuple[np.random.Generator, Calibration]:
    rng = np.random.default_rng(seed)
    probs, y = stream(rng, 5000, (0.0, 0.0))
    spec = calibration_model(probs, y)
    assert spec is not None and spec["kind"] == "binary"
    cal = Calibration.from_reference({"calibration": spec})
    assert cal is not None
    return rng, cal


def test_estimated_accuracy_tracks_realized_under_covariate_shift() -> None:
    rng, cal = calibrated(5)
    probs, y = stream(rng, 5000, (1.0, -0.5))  # P(y | x) unchanged: calibration still holds
    realized = float((probs.argmax(axis=1) == y).mean())
    est = cal.estimate(*window(probs), min_samples=200)
    assert est.accuracy is not None and est.roc_auc is not None
    assert abs(est.accuracy.value - realized) <= 0.03, (est.accuracy, realized)
    assert est.accuracy.lower <= realized <= est.accuracy.upper
    realized_auc = _roc_auc(y.astype(np.float64), probs[:, 1])
    assert realized_auc is not None
    assert abs(est.roc_auc.value - realized_auc) <= 0.03, (est.roc_auc, realized_auc)
    # raw (uncalibrated) scores would have overstated it well beyond 3 points
    assert float(probs.max(axis=1).mean()) - realized > 0.03


def test_concept_shift_breaks_the_estimate_and_the_test_says_so() -> None:
    rng, cal = calibrated(6)
    # P(y | x) changes (the relation weakens to a third): the inputs and the scores look
    # the same as before, so no label-free estimate can follow the realized accuracy
    probs, y = stream(rng, 5000, (0.0, 0.0), concept=1.0 / 3.0)
    realized = float((probs.argmax(axis=1) == y).mean())
    est = cal.estimate(*window(probs), min_samples=200)
    assert est.accuracy is not None
    gap = est.accuracy.value - realized
    assert gap > 0.03, f"expected CBPE to miss a concept shift, gap {gap:.3f}"
    assert not est.accuracy.lower <= realized <= est.accuracy.upper


def test_multiclass_top_label_estimate() -> None:
    rng = np.random.default_rng(9)

    def multi(n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 3)) + shift
        logits = 2.0 * x
        true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = (rng.random((n, 1)) > true.cumsum(axis=1)).sum(axis=1)
        sharp = np.exp(3.0 * logits)
        return sharp / sharp.sum(axis=1, keepdims=True), y

    spec = calibration_model(*multi(6000, 0.0))
    assert spec is not None and spec["kind"] == "top_label" and spec["roc_auc_std"] is None
    cal = Calibration.from_reference({"calibration": spec})
    assert cal is not None
    probs, y = multi(5000, 0.0)
    est = cal.estimate(*window(probs), min_samples=200)
    realized = float((probs.argmax(axis=1) == y).mean())
    assert est.accuracy is not None and est.roc_auc is None
    assert abs(est.accuracy.value - realized) <= 0.03


def test_expected_roc_auc_matches_realized_on_calibrated_scores() -> None:
    rng = np.random.default_rng(2)
    q = rng.beta(2.0, 2.0, size=20000)
    y = (rng.random(q.size) < q).astype(np.float64)
    expected, realized = expected_roc_auc(q), _roc_auc(y, q)
    assert expected is not None and realized is not None
    assert abs(expected - realized) < 0.01
    assert expected_roc_auc(np.ones(10)) is None


def test_missing_calibration_and_small_windows() -> None:
    assert Calibration.from_reference({"n_rows": 10}) is None
    assert Calibration.from_reference(None) is None
    _, cal = calibrated(1)
    est = cal.estimate(np.zeros(50), np.full(50, 0.9), min_samples=200)
    assert (est.accuracy, est.reason) == (None, "insufficient samples")
