"""Model health (docs/lifecycle.md, "Health"): ``ModelHealthMetrics`` from a window snapshot.

Thresholds default to docs/contracts.md ("Statistics semantics"), all configurable. A metric that
cannot be measured (no confidence for a regressor, no drift verdict yet, empty window) is
NaN and never raises an issue; ``to_dict`` renders it as null.

Latency percentiles are over predictions (every row of a batch carries its batch's
latency), matching what a client of each row experienced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from gateway.monitoring.drift import DriftReport
from gateway.monitoring.reconstruction import MultivariateDrift
from gateway.monitoring.stats import entropy, percentile_ms
from gateway.monitoring.window import WindowSnapshot


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    low_confidence: float = 0.6  # a prediction below this top probability is "low confidence"
    max_low_confidence_rate: float = 0.15
    max_p95_latency_ms: float = 100.0
    max_error_rate: float = 0.01
    max_drift_score: float = 0.3
    max_drifted_features: int = 5

    def __post_init__(self) -> None:
        for name in ("low_confidence", "max_low_confidence_rate", "max_error_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.max_drift_score <= 1.0:
            raise ValueError(f"max_drift_score must be within [0, 1], got {self.max_drift_score}")
        if self.max_p95_latency_ms <= 0 or self.max_drifted_features < 0:
            raise ValueError("max_p95_latency_ms must be > 0 and max_drifted_features >= 0")


@dataclass(frozen=True, slots=True)
class ModelHealthMetrics:
    time_window: timedelta
    total_predictions: int
    avg_confidence: float
    low_confidence_rate: float  # share of predictions below thresholds.low_confidence
    prediction_distribution: dict[str, int]  # class -> count (empty for regressors)
    prediction_entropy: float  # nats
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    error_rate: float
    feature_drift_score: float  # 0-1, share of drifted features
    drifted_features: list[str]
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    # the multivariate check's result (``MultivariateDrift.to_dict``); None: not available
    multivariate_drift: dict[str, Any] | None = None

    @classmethod
    def from_window(
        cls,
        snapshot: WindowSnapshot,
        *,
        drift: DriftReport | None = None,
        errors: int = 0,
        requests: int | None = None,
        classes: Sequence[Any] | None = None,
        thresholds: HealthThresholds | None = None,
        multivariate: MultivariateDrift | None = None,
    ) -> ModelHealthMetrics:
        """``errors`` failed requests over the same period; ``requests`` defaults to
        predictions + errors. ``classes`` labels the predicted class indices (None for a
        regressor)."""
        limits = thresholds or HealthThresholds()
        conf = snapshot.confidence[~np.isnan(snapshot.confidence)]
        distribution: dict[str, int] = {}
        spread = math.nan
        if classes is not None:
            codes = snapshot.predictions[~np.isnan(snapshot.predictions)].astype(np.int64)
            other = len(classes)
            codes[(codes < 0) | (codes > other)] = other
            counts = np.bincount(codes, minlength=other + 1)
            labels = [str(c) for c in classes] + ["other"]
            distribution = {labels[i]: int(c) for i, c in enumerate(counts) if c or i < other}
            spread = entropy(counts)
        total = snapshot.size
        attempted = total + errors if requests is None else requests
        score = math.nan
        if drift is not None and drift.drift_score is not None:
            score = drift.drift_score
        return cls(
            time_window=timedelta(seconds=snapshot.time_span_s),
            total_predictions=total,
            avg_confidence=float(conf.mean()) if conf.size else math.nan,
            low_confidence_rate=(
                float(np.count_nonzero(conf < limits.low_confidence) / conf.size)
                if conf.size
                else math.nan
            ),
            prediction_distribution=distribution,
            prediction_entropy=spread,
            p50_latency_ms=percentile_ms(snapshot.latency_s, 50),
            p95_latency_ms=percentile_ms(snapshot.latency_s, 95),
            p99_latency_ms=percentile_ms(snapshot.latency_s, 99),
            error_rate=errors / attempted if attempted > 0 else 0.0,
            feature_drift_score=score,
            drifted_features=list(drift.drifted_features) if drift is not None else [],
            thresholds=limits,
            multivariate_drift=None if multivariate is None else multivariate.to_dict(),
        )

    def is_healthy(self) -> tuple[bool, list[str]]:
        """(healthy, issues), issues worded as in docs/lifecycle.md ("Health")."""
        t = self.thresholds
        issues = []
        if self.low_confidence_rate > t.max_low_confidence_rate:
            issues.append(f"High low-confidence rate: {self.low_confidence_rate:.2%}")
        if self.p95_latency_ms > t.max_p95_latency_ms:
            issues.append(f"High p95 latency: {self.p95_latency_ms:.1f}ms")
        if self.error_rate > t.max_error_rate:
            issues.append(f"High error rate: {self.error_rate:.2%}")
        if self.feature_drift_score > t.max_drift_score:
            issues.append(f"Significant feature drift: {self.feature_drift_score:.2f}")
        if len(self.drifted_features) > t.max_drifted_features:
            issues.append(f"{len(self.drifted_features)} features show drift")
        mv = self.multivariate_drift
        if mv is not None and mv.get("drifted"):
            issues.append(
                f"Multivariate drift: reconstruction error {mv['error']:.3f} outside "
                f"[{mv['lower']:.3f}, {mv['upper']:.3f}]"
            )
        return len(issues) == 0, issues

    def to_dict(self) -> dict[str, Any]:
        healthy, issues = self.is_healthy()
        out: dict[str, Any] = {
            "healthy": healthy,
            "issues": issues,
            "time_window_s": self.time_window.total_seconds(),
        }
        for name in self.__slots__:
            if name not in ("time_window", "thresholds"):
                value = getattr(self, name)
                if isinstance(value, float) and not math.isfinite(value):
                    value = None
                out[name] = value
        out["thresholds"] = {k: getattr(self.thresholds, k) for k in self.thresholds.__slots__}
        return out
