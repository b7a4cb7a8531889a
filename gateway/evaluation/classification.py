"""Classification metrics in numpy, with scikit-learn's definitions (tests compare to 1e-9).

* Per-class precision / recall / F1 over the labels present in ``y_true`` or ``y_pred``
  (sklearn's default label set, sorted); an undefined ratio (0/0) counts as 0, like
  ``zero_division=0``. Macro = unweighted mean over those labels, weighted = mean weighted
  by support (true count).
* ROC AUC: trapezoidal area under the ROC curve with tied scores grouped (``roc_auc_score``).
  Multiclass: one-vs-rest per model class, macro mean over the classes that have both
  positives and negatives in ``y_true`` (others are listed as undefined).
* PR AUC: average precision, ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds
  (``average_precision_score``, no interpolation); multiclass one-vs-rest, macro mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def label_set(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([y_true, y_pred]))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows: true label, columns: predicted label, both in ``labels`` order (sorted)."""
    k = len(labels)
    t = np.searchsorted(labels, y_true)
    p = np.searchsorted(labels, y_pred)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    return {
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, support),
        "f1": _ratio(2 * tp, support + predicted),
        "support": support,
    }


def roc_points(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true/false positive counts at each distinct threshold, highest first."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s = score[order]
    y = positive[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[last]
    fps = 1 + last - tps
    return tps, fps


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(fpr, tpr) starting at (0, 0); None when ``positive`` is all-true or all-false."""
    tps, fps = roc_points(positive, score)
    if tps[-1] == 0 or fps[-1] == 0:
        return None
    return np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    curve = roc_curve(positive, score)
    if curve is None:
        return None
    fpr, tpr = curve
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(positive: np.ndarray, score: np.ndarray) -> float | None:
    tps, fps = roc_points(positive, score)
    if tps[-1] == 0:
        return None
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(max(0.0, np.sum(np.diff(np.r_[0.0, recall]) * precision)))


def one_vs_rest(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> dict[str, Any]:
    """Per-class ROC AUC / AP and their macro means over the classes where they are defined."""
    aucs: list[float | None] = []
    aps: list[float | None] = []
    for j, cls in enumerate(classes):
        positive = y_true == cls
        aucs.append(roc_auc(positive, proba[:, j]))
        aps.append(average_precision(positive, proba[:, j]))
    defined_auc = [a for a in aucs if a is not None]
    defined_ap = [a for a in aps if a is not None]
    return {
        "roc_auc": float(np.mean(defined_auc)) if defined_auc else None,
        "pr_auc": float(np.mean(defined_ap)) if defined_ap else None,
        "per_class_roc_auc": aucs,
        "per_class_pr_auc": aps,
        "undefined_classes": [c for c, a in zip(classes, aucs, strict=True) if a is None],
    }


def downsample_curve(fpr: np.ndarray, tpr: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """At most ``points`` points of a curve for plotting; keeps both end points."""
    if fpr.size > points:
        idx = np.unique(np.linspace(0, fpr.size - 1, points).round().astype(np.int64))
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    positive: Any,
) -> dict[str, Any]:
    """The classification block of an evaluation report.

    Binary ROC AUC / PR AUC score the ``positive`` class's probability column; multiclass
    ones are one-vs-rest macro means (see the module docstring).
    """
    labels = label_set(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred, labels)
    prf = precision_recall_f1(cm)
    weights = prf["support"] / prf["support"].sum()
    block: dict[str, Any] = {
        "accuracy": float(np.mean(y_true == y_pred)),
        **{f"{m}_macro": float(np.mean(prf[m])) for m in ("precision", "recall", "f1")},
        **{f"{m}_weighted": float(np.sum(prf[m] * weights)) for m in ("precision", "recall", "f1")},
        "per_class": [
            {
                "class": label,
                "precision": prf["precision"][i],
                "recall": prf["recall"][i],
                "f1": prf["f1"][i],
                "support": int(prf["support"][i]),
            }
            for i, label in enumerate(labels)
        ],
        "confusion_matrix": {"labels": labels.tolist(), "matrix": cm.tolist()},
        "roc_auc": None,
        "pr_auc": None,
        "roc_curves": [],
    }
    if proba is None:
        return block
    classes = list(classes)
    scored = [positive] if len(classes) == 2 else classes
    if len(classes) == 2:
        positive_mask = y_true == positive
        score = proba[:, classes.index(positive)]
        block["roc_auc"] = roc_auc(positive_mask, score)
        block["pr_auc"] = average_precision(positive_mask, score)
        block["averaging"] = "binary, positive class scores"
    else:
        ovr = one_vs_rest(y_true, proba, classes)
        block.update(ovr)
        block["averaging"] = "one-vs-rest, macro over classes"
    for cls in scored[:20]:
        curve = roc_curve(y_true == cls, proba[:, classes.index(cls)])
        if curve is not None:
            auc = roc_auc(y_true == cls, proba[:, classes.index(cls)])
            block["roc_curves"].append({"class": cls, "auc": auc, **downsample_curve(*curve)})
    return block
