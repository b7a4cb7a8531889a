"""Group fairness of a classifier's decisions, one sensitive column at a time.

"Positive" is one class of the model: for a binary model the class at index 1 of the
schema's ``classes`` (scikit-learn's ``pos_label`` convention) unless chosen; for a
multiclass model the chosen class (default: the last class), every other class being the
negative outcome. Per group (one value of the column; missing values form the group
``<missing>``):

* positive_rate = P(pred = positive)             (selection rate)
* true_positive_rate = P(pred = positive | y = positive)   null without positives
* false_positive_rate = P(pred = positive | y != positive) null without negatives
* precision = P(y = positive | pred = positive)             null without predicted positives
* accuracy = P(pred = y) over all classes; base_rate = P(y = positive)

Across groups: demographic parity difference = max - min positive_rate; equal opportunity
difference = max - min true_positive_rate (over groups where it is defined); disparate
impact ratio = min / max positive_rate (null when no group gets a positive prediction),
flagged by the four-fifths rule when below 0.8. Regressors get per-group error metrics
(count, MAE, RMSE, mean prediction) and the MAE spread instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FOUR_FIFTHS = 0.8
MISSING_GROUP = "<missing>"


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    n = int(within.sum())
    return float(np.sum(mask & within) / n) if n else None


def _spread(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(max(defined) - min(defined)) if defined else None


def group_stats(y_true: np.ndarray, y_pred: np.ndarray, positive: Any) -> dict[str, Any]:
    actual = y_true == positive
    predicted = y_pred == positive
    everyone = np.ones(len(y_true), dtype=bool)
    return {
        "count": len(y_true),
        "base_rate": _rate(actual, everyone),
        "positive_rate": _rate(predicted, everyone),
        "true_positive_rate": _rate(predicted, actual),
        "false_positive_rate": _rate(predicted, ~actual),
        "precision": _rate(actual, predicted),
        "accuracy": float(np.mean(y_true == y_pred)),
    }


def classification_fairness(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, positive: Any
) -> dict[str, Any]:
    names = sorted(set(groups.tolist()))
    rows = []
    for name in names:
        mask = groups == name
        rows.append({"group": name, **group_stats(y_true[mask], y_pred[mask], positive)})
    rates = [r["positive_rate"] for r in rows]
    high = max(rates)
    ratio = float(min(rates) / high) if high > 0 else None
    return {
        "groups": rows,
        "demographic_parity_difference": _spread(rates),
        "equal_opportunity_difference": _spread([r["true_positive_rate"] for r in rows]),
        "disparate_impact_ratio": ratio,
        "four_fifths_rule_violated": None if ratio is None else ratio < FOUR_FIFTHS,
    }


def regression_fairness(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, Any]:
    rows = []
    for name in sorted(set(groups.tolist())):
        mask = groups == name
        err = y_pred[mask] - y_true[mask]
        rows.append(
            {
                "group": name,
                "count": int(mask.sum()),
                "mae": float(np.mean(np.abs(err))),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "mean_prediction": float(np.mean(y_pred[mask])),
            }
        )
    return {"groups": rows, "mae_difference": _spread([r["mae"] for r in rows])}
