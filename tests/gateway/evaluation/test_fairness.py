"""Fairness metrics on a small table whose expected numbers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.evaluation.fairness import classification_fairness, regression_fairness

# group a: y = 1 1 0 0 1, pred = 1 0 0 1 1
# group b: y = 1 0 0 0 1, pred = 0 0 0 1 1
# group c: y = 0 0,       pred = 1 0          (no actual positives: TPR undefined)
GROUPS = np.array(list("aaaaa") + list("bbbbb") + list("cc"))
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
Y_PRED = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0])


def _by_group(result: dict) -> dict:
    return {row["group"]: row for row in result["groups"]}


def test_per_group_rates_by_hand() -> None:
    result = classification_fairness(Y_TRUE, Y_PRED, GROUPS, positive=1)
    rows = _by_group(result)
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert a["count"] == 5 and b["count"] == 5 and c["count"] == 2
    # a: predicted positive 3/5; TPR 2 of 3 positives; FPR 1 of 2 negatives;
    #    precision 2 of 3 predicted positives; accuracy 3/5; base rate 3/5
    assert a["positive_rate"] == pytest.approx(0.6)
    assert a["true_positive_rate"] == pytest.approx(2 / 3)
    assert a["false_positive_rate"] == pytest.approx(0.5)
    assert a["precision"] == pytest.approx(2 / 3)
    assert a["accuracy"] == pytest.approx(0.6)
    assert a["base_rate"] == pytest.approx(0.6)
    # b: predicted positive 2/5; TPR 1/2; FPR 1/3; precision 1/2; accuracy 3/5
    assert b["positive_rate"] == pytest.approx(0.4)
    assert b["true_positive_rate"] == pytest.approx(0.5)
    assert b["false_positive_rate"] == pytest.approx(1 / 3)
    assert b["precision"] == pytest.approx(0.5)
    assert b["accuracy"] == pytest.approx(0.6)
    # c: predicted positive 1/2; no positives -> TPR null; FPR 1/2; precision 0/1
    assert c["positive_rate"] == pytest.approx(0.5)
    assert c["true_positive_rate"] is None
    assert c["false_positive_rate"] == pytest.approx(0.5)
    assert c["precision"] == 0.0


def test_gaps_by_hand() -> None:
    result = classification_fairness(Y_TRUE, Y_PRED, GROUPS, positive=1)
    # positive rates 0.6 / 0.4 / 0.5 -> DP = 0.2, DI = 0.4 / 0.6 = 2/3 (< 0.8: flagged)
    assert result["demographic_parity_difference"] == pytest.approx(0.2)
    assert result["disparate_impact_ratio"] == pytest.approx(2 / 3)
    assert result["four_fifths_rule_violated"] is True
    # TPR defined for a (2/3) and b (1/2) only -> EO = 1/6
    assert result["equal_opportunity_difference"] == pytest.approx(1 / 6)


def test_positive_class_zero_flips_the_outcome() -> None:
    result = classification_fairness(Y_TRUE, Y_PRED, GROUPS, positive=0)
    rows = _by_group(result)
    # a predicts 0 for 2 of 5, b for 3 of 5, c for 1 of 2
    assert [rows[g]["positive_rate"] for g in "abc"] == pytest.approx([0.4, 0.6, 0.5])
    assert result["disparate_impact_ratio"] == pytest.approx(0.4 / 0.6)


def test_equal_rates_pass_the_four_fifths_rule() -> None:
    groups = np.array(["x", "x", "y", "y"])
    y = np.array([1, 0, 1, 0])
    result = classification_fairness(y, y, groups, positive=1)
    assert result["demographic_parity_difference"] == 0.0
    assert result["equal_opportunity_difference"] == 0.0
    assert result["disparate_impact_ratio"] == 1.0
    assert result["four_fifths_rule_violated"] is False


def test_nobody_selected_leaves_disparate_impact_undefined() -> None:
    groups = np.array(["x", "y"])
    result = classification_fairness(np.array([1, 0]), np.array([0, 0]), groups, positive=1)
    assert result["disparate_impact_ratio"] is None
    assert result["four_fifths_rule_violated"] is None
    assert result["demographic_parity_difference"] == 0.0


def test_multiclass_with_a_chosen_positive_class() -> None:
    groups = np.array(["m", "m", "m", "f", "f", "f"])
    y_true = np.array(["hi", "lo", "mid", "hi", "hi", "lo"])
    y_pred = np.array(["hi", "hi", "mid", "lo", "hi", "lo"])
    rows = _by_group(classification_fairness(y_true, y_pred, groups, positive="hi"))
    # m: predicted "hi" 2/3, TPR 1/1, FPR 1/2; f: predicted "hi" 1/3, TPR 1/2, FPR 0/1
    assert rows["m"]["positive_rate"] == pytest.approx(2 / 3)
    assert rows["m"]["true_positive_rate"] == 1.0
    assert rows["m"]["false_positive_rate"] == pytest.approx(0.5)
    assert rows["f"]["positive_rate"] == pytest.approx(1 / 3)
    assert rows["f"]["true_positive_rate"] == pytest.approx(0.5)
    assert rows["f"]["false_positive_rate"] == 0.0
    # accuracy is over all classes: m right on hi, mid (2/3); f right on hi, lo (2/3)
    assert rows["m"]["accuracy"] == pytest.approx(2 / 3)
    assert rows["f"]["accuracy"] == pytest.approx(2 / 3)


def test_regression_groups_by_hand() -> None:
    groups = np.array(["a", "a", "b", "b"])
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 1.5, 3.0, 6.0])
    result = regression_fairness(y_true, y_pred, groups)
    rows = _by_group(result)
    assert rows["a"]["mae"] == pytest.approx(0.5)
    assert rows["a"]["rmse"] == pytest.approx(0.5)
    assert rows["b"]["mae"] == pytest.approx(1.0)
    assert rows["b"]["rmse"] == pytest.approx(np.sqrt(2.0))
    assert result["mae_difference"] == pytest.approx(0.5)
