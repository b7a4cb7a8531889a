from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from gateway.monitoring.drift import DriftReport, compute_drift
from gateway.monitoring.health import HealthThresholds, ModelHealthMetrics
from gateway.monitoring.reference import Reference
from gateway.monitoring.window import PredictionWindow, WindowSnapshot

CLASSES = ["no", "yes"]


def _snapshot(
    clock,
    *,
    n: int = 1000,
    low_confidence_share: float = 0.05,
    slow_share: float = 0.0,
    slow_s: float = 0.2,
) -> WindowSnapshot:
    """Predictions with a chosen share of low-confidence rows and of slow rows."""
    window = PredictionWindow(None, capacity=n, clock=clock)
    low = round(n * low_confidence_share)
    slow = round(n * slow_share)
    for i in range(n):
        clock.now = 1000.0 + i * 0.01
        confidence = np.array([0.55 if i < low else 0.9])
        latency = slow_s if i >= n - slow else 0.004
        window.record(None, None, np.array([float(i % 2)]), confidence, latency)
    return window.snapshot()


def _drift(clock, make_reference, features: int, drifted: int) -> DriftReport:
    rng = np.random.default_rng(features * 100 + drifted)
    ref = Reference.from_dict(make_reference(rng.normal(size=(5000, features))))
    window = PredictionWindow(ref, capacity=1000, clock=clock)
    rows = rng.normal(size=(1000, features))
    rows[:, :drifted] += 2.0
    window.record(rows, None, np.zeros(1000), None, 0.001)
    report = compute_drift(window.snapshot(), ref)
    assert len(report.drifted_features) == drifted
    return report


def test_healthy_model_has_no_issues(clock) -> None:
    metrics = ModelHealthMetrics.from_window(_snapshot(clock), errors=0, classes=CLASSES)
    assert metrics.is_healthy() == (True, [])
    assert metrics.total_predictions == 1000
    assert metrics.time_window == timedelta(seconds=9.99)
    assert metrics.prediction_distribution == {"no": 500, "yes": 500}
    assert metrics.prediction_entropy == pytest.approx(np.log(2))
    assert metrics.avg_confidence == pytest.approx(0.05 * 0.55 + 0.95 * 0.9)
    assert metrics.p50_latency_ms == pytest.approx(4.0)


def test_low_confidence_rate(clock) -> None:
    fires = ModelHealthMetrics.from_window(_snapshot(clock, low_confidence_share=0.2))
    assert fires.low_confidence_rate == pytest.approx(0.2)
    assert fires.is_healthy() == (False, ["High low-confidence rate: 20.00%"])
    quiet = ModelHealthMetrics.from_window(_snapshot(clock, low_confidence_share=0.15))
    assert quiet.is_healthy() == (True, [])  # 15 % is not above 15 %


def test_p95_latency(clock) -> None:
    fires = ModelHealthMetrics.from_window(_snapshot(clock, slow_share=0.06))
    assert fires.p95_latency_ms == pytest.approx(200.0)
    assert fires.is_healthy() == (False, ["High p95 latency: 200.0ms"])
    quiet = ModelHealthMetrics.from_window(_snapshot(clock, slow_share=0.04))
    assert quiet.p95_latency_ms == pytest.approx(4.0) and quiet.p99_latency_ms == pytest.approx(
        200.0
    )
    assert quiet.is_healthy() == (True, [])


def test_error_rate(clock) -> None:
    snap = _snapshot(clock)
    fires = ModelHealthMetrics.from_window(snap, errors=20)  # 20 of 1020 requests
    assert fires.is_healthy() == (False, ["High error rate: 1.96%"])
    quiet = ModelHealthMetrics.from_window(snap, errors=10)
    assert quiet.is_healthy() == (True, [])
    explicit = ModelHealthMetrics.from_window(snap, errors=10, requests=500)
    assert explicit.error_rate == 0.02 and not explicit.is_healthy()[0]


def test_drift_score(clock, make_reference) -> None:
    snap = _snapshot(clock)
    fires = ModelHealthMetrics.from_window(snap, drift=_drift(clock, make_reference, 10, 4))
    assert fires.feature_drift_score == pytest.approx(0.4)
    assert fires.is_healthy() == (False, ["Significant feature drift: 0.40"])
    quiet = ModelHealthMetrics.from_window(snap, drift=_drift(clock, make_reference, 10, 3))
    assert quiet.is_healthy() == (True, [])


def test_more_than_five_drifted_features(clock, make_reference) -> None:
    snap = _snapshot(clock)
    fires = ModelHealthMetrics.from_window(snap, drift=_drift(clock, make_reference, 30, 6))
    assert fires.feature_drift_score == pytest.approx(0.2)  # the score alone is fine
    assert fires.is_healthy() == (False, ["6 features show drift"])
    quiet = ModelHealthMetrics.from_window(snap, drift=_drift(clock, make_reference, 30, 5))
    assert quiet.is_healthy() == (True, [])


def test_every_issue_at_once_in_the_guides_order(clock, make_reference) -> None:
    snap = _snapshot(clock, low_confidence_share=0.5, slow_share=0.5)
    metrics = ModelHealthMetrics.from_window(
        snap, errors=100, drift=_drift(clock, make_reference, 10, 7), classes=CLASSES
    )
    healthy, issues = metrics.is_healthy()
    assert not healthy
    assert [issue.split(":")[0] for issue in issues] == [
        "High low-confidence rate",
        "High p95 latency",
        "High error rate",
        "Significant feature drift",
        "7 features show drift",
    ]


def test_thresholds_are_configurable(clock) -> None:
    snap = _snapshot(clock, low_confidence_share=0.2, slow_share=0.06)
    loose = HealthThresholds(max_low_confidence_rate=0.25, max_p95_latency_ms=250.0)
    assert ModelHealthMetrics.from_window(snap, thresholds=loose).is_healthy() == (True, [])
    # moving the confidence cut below 0.55 makes the "low" rows ordinary
    lower_cut = HealthThresholds(low_confidence=0.5, max_p95_latency_ms=250.0)
    assert ModelHealthMetrics.from_window(snap, thresholds=lower_cut).low_confidence_rate == 0.0
    strict = HealthThresholds(max_error_rate=0.0)
    assert (
        "High error rate: 0.10%"
        in ModelHealthMetrics.from_window(
            _snapshot(clock), errors=1, thresholds=strict
        ).is_healthy()[1]
    )
    with pytest.raises(ValueError, match="max_error_rate"):
        HealthThresholds(max_error_rate=1.5)
    with pytest.raises(ValueError, match="max_p95_latency_ms"):
        HealthThresholds(max_p95_latency_ms=0)


def test_unmeasurable_metrics_never_raise_an_issue(clock) -> None:
    # a regressor (no confidence) on an empty window with no drift verdict yet
    snap = PredictionWindow(None, capacity=10, clock=clock).snapshot()
    metrics = ModelHealthMetrics.from_window(snap)
    assert metrics.is_healthy() == (True, [])
    payload = metrics.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["avg_confidence"] is None and payload["p95_latency_ms"] is None
    assert payload["feature_drift_score"] is None and payload["prediction_distribution"] == {}
    assert payload["healthy"] is True and payload["total_predictions"] == 0


def test_to_dict_carries_the_guides_fields_and_the_verdict(clock) -> None:
    metrics = ModelHealthMetrics.from_window(
        _snapshot(clock, low_confidence_share=0.3), errors=0, classes=CLASSES
    )
    payload = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert payload["healthy"] is False and payload["issues"] == ["High low-confidence rate: 30.00%"]
    assert payload["time_window_s"] == pytest.approx(9.99)
    for field in ("total_predictions", "avg_confidence", "low_confidence_rate",
                  "prediction_distribution", "prediction_entropy", "p50_latency_ms",
                  "p95_latency_ms", "p99_latency_ms", "error_rate", "feature_drift_score",
                  "drifted_features"):  # fmt: skip
        assert field in payload
    assert payload["thresholds"]["max_drifted_features"] == 5


def test_predicted_classes_outside_the_list_are_counted_as_other(clock) -> None:
    window = PredictionWindow(None, capacity=10, clock=clock)
    window.record(None, None, np.array([0.0, 1.0, 5.0, -1.0]), np.full(4, 0.9), 0.001)
    metrics = ModelHealthMetrics.from_window(window.snapshot(), classes=CLASSES)
    assert metrics.prediction_distribution == {"no": 1, "yes": 1, "other": 2}
