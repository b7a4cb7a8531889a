"""Retraining policy: each of the five reasons fires on data built for it, and only then."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.retraining.policy import (
    REASONS,
    RetrainingInputs,
    RetrainingPolicy,
    should_retrain,
    training_date,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEALTHY = RetrainingInputs(
    live_accuracy=0.93,
    drift_score=0.05,
    low_confidence_rate=0.04,
    trained_at=NOW - timedelta(days=3),
    new_labelled_samples=120,
    now=NOW,
)


def test_healthy_model_does_not_retrain_and_lists_every_reason() -> None:
    decision = should_retrain(HEALTHY)
    assert decision.retrain is False
    assert [r["reason"] for r in decision.reasons] == list(REASONS)
    assert not any(r["triggered"] for r in decision.reasons)
    assert decision.triggered == []


@pytest.mark.parametrize(
    "change,reason,value,threshold",
    [
        ({"live_accuracy": 0.80}, "performance_degradation", 0.80, 0.85),
        ({"drift_score": 0.31}, "data_drift", 0.31, 0.2),
        ({"low_confidence_rate": 0.22}, "low_confidence", 0.22, 0.15),
        ({"trained_at": NOW - timedelta(days=45)}, "scheduled", 45.0, 30),
        ({"new_labelled_samples": 12_000}, "new_data_available", 12_000, 10_000),
    ],
)
def test_each_reason_fires_alone(change: dict, reason: str, value: float, threshold: float) -> None:
    decision = should_retrain(replace(HEALTHY, **change))
    assert decision.retrain is True
    assert decision.triggered == [reason]
    entry = next(r for r in decision.reasons if r["reason"] == reason)
    assert entry["value"] == pytest.approx(value)
    assert entry["threshold"] == threshold


def test_boundaries() -> None:
    at_limits = replace(
        HEALTHY,
        live_accuracy=0.85,  # not below
        drift_score=0.2,  # not above
        low_confidence_rate=0.15,  # not above
        trained_at=NOW - timedelta(days=29, hours=23),
        new_labelled_samples=9_999,
    )
    assert should_retrain(at_limits).retrain is False
    due = replace(at_limits, trained_at=NOW - timedelta(days=30), new_labelled_samples=10_000)
    assert should_retrain(due).triggered == ["scheduled", "new_data_available"]


def test_unknown_inputs_never_fire() -> None:
    decision = should_retrain(RetrainingInputs(now=NOW))
    assert decision.retrain is False
    values = {r["reason"]: r["value"] for r in decision.reasons}
    assert values == {
        "performance_degradation": None,
        "data_drift": None,
        "low_confidence": None,
        "scheduled": None,
        "new_data_available": 0,
        "estimated_accuracy": None,
    }


def test_all_reasons_together() -> None:
    bad = RetrainingInputs(0.5, 0.9, 0.5, NOW - timedelta(days=400), 50_000, NOW, 0.5)
    assert should_retrain(bad).triggered == list(REASONS)
    assert should_retrain(bad).to_dict()["retrain"] is True


def test_policy_overrides_per_model() -> None:
    config = {
        "max_psi_threshold": 0.3,
        "models": {"churn": {"retraining_interval_days": 7, "min_accuracy_threshold": 0.9}},
    }
    churn = RetrainingPolicy.for_model("churn", config)
    other = RetrainingPolicy.for_model("fraud", config)
    assert (churn.max_psi_threshold, churn.retraining_interval_days) == (0.3, 7)
    assert churn.min_accuracy_threshold == 0.9
    assert other == RetrainingPolicy(max_psi_threshold=0.3)
    week_old = replace(HEALTHY, trained_at=NOW - timedelta(days=8), live_accuracy=0.88)
    assert should_retrain(week_old, churn).triggered == ["performance_degradation", "scheduled"]
    assert should_retrain(week_old, other).retrain is False
    assert RetrainingPolicy.for_model("x") == RetrainingPolicy()


def test_policy_rejects_unknown_or_bad_fields() -> None:
    with pytest.raises(ValueError, match="unknown retraining policy fields: max_psi"):
        RetrainingPolicy.for_model("m", {"max_psi": 0.1})
    with pytest.raises(ValueError, match="must be a number"):
        RetrainingPolicy.for_model("m", {"models": {"m": {"max_psi_threshold": "high"}}})


def test_training_date_from_lineage() -> None:
    assert training_date({"training": {"date": "2026-10-28"}}) == datetime(2026, 10, 28, tzinfo=UTC)
    assert training_date({"training": {"date": "2026-10-28T10:00:00+02:00"}}) == datetime(
        2026, 10, 28, 8, tzinfo=UTC
    )
    assert training_date({}) is None
    assert training_date({"training": {"date": "last week"}}) is None
    lineage = {"training": {"date": "2026-10-28"}}
    inputs = replace(HEALTHY, trained_at=training_date(lineage))
    assert should_retrain(inputs).triggered == ["scheduled"]  # 30.5 days before NOW
