"""Classifier performance estimated without labels (confidence-based, as NannyML's CBPE).

Registration (``converters.reference.calibration_model``) fits an isotonic map of the
model's scores on the labelled sample and stores its step points. On a window:

* binary: ``q = calibrated P(class 1)`` from the probability of class 1 (the window keeps
  the predicted class and its probability, so ``p1 = conf`` if class 1 was predicted, else
  ``1 - conf``); expected accuracy is ``mean(q if predicted 1 else 1 - q)``; expected ROC
  AUC follows NannyML: rows by decreasing ``q``, expected true and false positives are the
  running sums of ``q`` and ``1 - q``, and the AUC is the trapezoid area under their rates;
* multiclass: ``q = calibrated P(correct)`` from the top-class probability (top-label
  calibration); expected accuracy is ``mean(q)``. ROC AUC (models registered with at most
  ``converters.reference.MAX_CLASS_MAPS`` classes, whose window keeps every row's
  probability vector): per class ``q_k = calibrated P(class k)`` from the probability of
  class k through that class's one-vs-rest map, the binary expected ROC AUC of ``q_k``,
  and their mean (scikit-learn's ``multi_class="ovr", average="macro"``), as NannyML's
  CBPE, except that ``q_k`` is not renormalised to sum to 1 over the classes: each
  one-vs-rest map already gives the expected positives of its own ranking, and the
  renormalisation mixes the other classes' maps in (measured on generated 3-class streams:
  it added 0.1 to 0.4 points of bias).

The interval is ``estimate ± SIGMAS * std * sqrt(chunk_rows / n)``: ``std`` is the spread
of the realized metric over bootstrap chunks of ``chunk_rows`` sample rows, scaled to the
window's ``n`` rows (NannyML's sampling error). It holds only while the calibration does:
under covariate shift P(y | x) is unchanged and the estimate follows the realized accuracy;
under concept shift it does not (only labels can show that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.monitoring.window import WindowSnapshot

SIGMAS = 3.0


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class PerformanceEstimate:
    n: int
    accuracy: Estimate | None
    roc_auc: Estimate | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "roc_auc": None if self.roc_auc is None else self.roc_auc.to_dict(),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    kind: str  # "binary" or "top_label"
    x: np.ndarray  # increasing scores
    y: np.ndarray  # calibrated probabilities at x
    chunk_rows: int
    accuracy_std: float
    roc_auc_std: float | None
    # multiclass: (x, y) one-vs-rest map per class, in class-index order; () when not stored
    class_maps: tuple[tuple[np.ndarray, np.ndarray], ...] = ()

    @property
    def probability_columns(self) -> int:
        """Width of the probability vectors the window must keep for the ROC AUC (0: none)."""
        return len(self.class_maps)

    @classmethod
    def from_reference(cls, data: Mapping[str, Any] | None) -> Calibration | None:
        """The stored map (``reference["calibration"]``); None when absent (a regressor, a
        sample without labels, a version registered before calibration existed)."""
        spec = (data or {}).get("calibration")
        if not spec:
            return None
        kind = spec.get("kind")
        if kind not in ("binary", "top_label"):
            raise ValueError(f"calibration kind must be binary or top_label, got {kind!r}")
        x, y = _step_map(spec)
        class_maps = tuple(_step_map(m) for m in spec.get("classes") or ())
        classes = ((data or {}).get("prediction") or {}).get("classes")
        if class_maps and (
            kind != "top_label"
            or len(class_maps) < 3
            or (classes is not None and len(classes) != len(class_maps))
        ):
            raise ValueError("per-class calibration maps must be one per class of a multiclass")
        auc_std = spec.get("roc_auc_std")
        return cls(
            kind=kind,
            x=x,
            y=y,
            chunk_rows=int(spec["chunk_rows"]),
            accuracy_std=float(spec["accuracy_std"]),
            roc_auc_std=None if auc_std is None else float(auc_std),
            class_maps=class_maps,
        )

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)

    def estimate(
        self,
        predictions: np.ndarray,
        confidence: np.ndarray,
        *,
        min_samples: int,
        probabilities: np.ndarray | None = None,
    ) -> PerformanceEstimate:
        """Expected accuracy and ROC AUC of rows given their predicted class index and
        top-class probability, and (multiclass ROC AUC) their probability vectors [n, k]."""
        keep = ~(np.isnan(predictions) | np.isnan(confidence))
        predicted, top = predictions[keep].astype(np.int64), confidence[keep]
        n = int(top.size)
        if n < min_samples:
            return PerformanceEstimate(n, None, None, "insufficient samples")
        auc: float | None = None
        auc_rows = n
        if self.kind == "binary":
            q = self.calibrate(np.where(predicted == 1, top, 1.0 - top))
            accuracy = float(np.where(predicted == 1, q, 1.0 - q).mean())
            auc = expected_roc_auc(q)
        else:
            accuracy = float(self.calibrate(top).mean())
            if probabilities is not None and probabilities.shape[1:] == (len(self.class_maps),):
                vectors = probabilities[~np.isnan(probabilities).any(axis=1)]
                auc_rows = int(vectors.shape[0])
                if self.class_maps and auc_rows >= min_samples:
                    auc = self.macro_roc_auc(vectors)
        acc = _interval(accuracy, SIGMAS * self.accuracy_std * math.sqrt(self.chunk_rows / n))
        roc = None
        if auc is not None and self.roc_auc_std is not None:
            roc = _interval(auc, SIGMAS * self.roc_auc_std * math.sqrt(self.chunk_rows / auc_rows))
        return PerformanceEstimate(n, acc, roc, None)

    def macro_roc_auc(self, probabilities: np.ndarray) -> float | None:
        """Mean over classes of the expected one-vs-rest ROC AUC of each class's calibrated
        probability; None when a class has no expected positive or negative."""
        aucs = []
        columns = probabilities.T.astype(np.float64)  # one pass; each class contiguous
        for column, (x, y) in zip(columns, self.class_maps, strict=True):
            auc = expected_roc_auc(np.interp(column, x, y))
            if auc is None:
                return None
            aucs.append(auc)
        return float(np.mean(aucs))

    def check(self, snap: WindowSnapshot, *, min_samples: int) -> PerformanceEstimate:
        return self.estimate(
            snap.predictions,
            snap.confidence,
            min_samples=min_samples,
            probabilities=snap.probabilities,
        )


def expected_roc_auc(q: np.ndarray) -> float | None:
    """NannyML's expected ROC AUC of calibrated P(class 1): None when the expected counts
    of either class are zero."""
    q = np.sort(q)[::-1]  # only the values matter: tied rows enter the curve together
    positives, negatives = float(q.sum()), float((1.0 - q).sum())
    if positives <= 0 or negatives <= 0:
        return None
    # one threshold per distinct score
    last = np.append(np.flatnonzero(np.diff(q)), q.size - 1)
    tpr = np.concatenate(([0.0], np.cumsum(q)[last] / positives))
    fpr = np.concatenate(([0.0], np.cumsum(1.0 - q)[last] / negatives))
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def _step_map(spec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(spec.get("x"), dtype=np.float64)
    y = np.asarray(spec.get("y"), dtype=np.float64)
    if (
        x.ndim != 1
        or x.shape != y.shape
        or x.size == 0
        or np.any(np.diff(x) < 0)
        or np.any((y < 0) | (y > 1))
    ):
        raise ValueError("calibration map must be increasing x with y in [0, 1]")
    return x, y


def _interval(value: float, half: float) -> Estimate:
    return Estimate(value, max(0.0, value - half), min(1.0, value + half))
