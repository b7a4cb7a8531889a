"""Canary analysis checks: each check's pass / fail / insufficient / skipped, and the verdict."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gateway.monitoring.stats import psi
from gateway.monitoring.window import PredictionWindow
from gateway.rollout.checks import (
    CHECKS,
    FAIL,
    INSUFFICIENT,
    PASS,
    SKIPPED,
    CanaryThresholds,
    CheckResult,
    VariantIntervalStats,
    check_accuracy,
    check_error_rate,
    check_feature_psi,
    check_low_confidence,
    check_p99_latency,
    check_prediction_drift,
    check_shadow_agreement,
    class_distribution_psi,
    run_checks,
    summarize,
    verdict,
)
from gateway.rollout.interval_stats import stats_from_window

T = CanaryThresholds()


def stats(**overrides: object) -> VariantIntervalStats:
    values: dict[str, object] = {
        "requests": 1000,
        "errors": 2,
        "p99_latency_ms": 4.0,
        "low_confidence_rate": 0.05,
        "class_counts": {"no": 700, "yes": 300},
        "live_accuracy": 0.9,
        "labelled": 200,
        "max_feature_psi": 0.05,
    }
    values.update(overrides)
    return VariantIntervalStats(**values)  # type: ignore[arg-type]


def test_identical_variants_pass_every_applicable_check() -> None:
    results = run_checks(stats(), stats(), T, min_requests=100)
    assert [r.name for r in results] == list(CHECKS)
    by_name = {r.name: r.status for r in results}
    assert by_name.pop("shadow_agreement") == SKIPPED  # no shadow comparison given
    assert set(by_name.values()) == {PASS}
    assert verdict(results) == PASS


def test_too_little_data_is_not_a_pass() -> None:
    results = run_checks(stats(), stats(requests=99, errors=0), T, min_requests=100)
    assert {r.status for r in results} == {INSUFFICIENT}
    assert all(r.passed is None for r in results)
    assert verdict(results) == INSUFFICIENT
    assert "canary 99" in results[0].detail and "need 100" in results[0].detail
    # the champion's side counts too
    assert verdict(run_checks(stats(requests=10), stats(), T, min_requests=100)) == INSUFFICIENT


def test_a_failure_outweighs_missing_data() -> None:
    results = [
        CheckResult("a", INSUFFICIENT),
        CheckResult("b", FAIL, 1.0, 0.5),
        CheckResult("c", PASS, 0.1, 0.5),
    ]
    assert verdict(results) == FAIL
    assert verdict([CheckResult("a", SKIPPED)]) == PASS


def test_error_rate_compares_with_the_champion_plus_margin() -> None:
    champion = stats(errors=10)  # 1 %
    ok = check_error_rate(champion, stats(errors=20), T, 100)  # 2 % = 1 % + 0.01: at the limit
    assert ok.status == PASS and ok.baseline == pytest.approx(0.01)
    bad = check_error_rate(champion, stats(errors=150), T, 100)
    assert bad.status == FAIL and bad.passed is False
    assert bad.value == pytest.approx(0.15) and bad.threshold == pytest.approx(0.02)


def test_p99_latency_needs_both_the_factor_and_the_slack() -> None:
    champion = stats(p99_latency_ms=0.2)
    # 3x slower but only 0.4 ms more: timer noise on a sub-ms model, not a regression
    assert check_p99_latency(champion, stats(p99_latency_ms=0.6), T, 100).status == PASS
    assert check_p99_latency(champion, stats(p99_latency_ms=1.5), T, 100).status == FAIL
    slow = stats(p99_latency_ms=40.0)
    assert check_p99_latency(stats(p99_latency_ms=20.0), slow, T, 100).status == FAIL
    assert check_p99_latency(stats(p99_latency_ms=30.0), slow, T, 100).status == PASS
    missing = check_p99_latency(champion, stats(p99_latency_ms=None), T, 100)
    assert missing.status == INSUFFICIENT


def test_low_confidence_rate_and_regressors() -> None:
    assert check_low_confidence(stats(), stats(low_confidence_rate=0.2), T, 100).status == FAIL
    assert check_low_confidence(stats(), stats(low_confidence_rate=0.09), T, 100).status == PASS
    regressor = stats(low_confidence_rate=None)
    assert check_low_confidence(regressor, regressor, T, 100).status == SKIPPED


def test_prediction_drift_is_psi_between_the_class_distributions() -> None:
    champion = stats(class_counts={"no": 700, "yes": 300})
    shifted = stats(class_counts={"no": 300, "yes": 700})
    result = check_prediction_drift(champion, shifted, T, 100)
    expected = psi(np.array([0.7, 0.3]), np.array([0.3, 0.7]))
    assert result.status == FAIL and result.value == pytest.approx(expected)
    # a class the champion never predicted counts with the empty-bin epsilon, not infinity
    new_class = class_distribution_psi({"no": 10}, {"no": 5, "maybe": 5})
    assert math.isfinite(new_class) and new_class > 0.2
    close = stats(class_counts={"no": 690, "yes": 310})
    assert check_prediction_drift(champion, close, T, 100).status == PASS
    regressor = stats(class_counts={})
    assert check_prediction_drift(regressor, regressor, T, 100).status == SKIPPED


def test_live_accuracy_where_labels_flow() -> None:
    wrong = stats(live_accuracy=0.55)
    result = check_accuracy(stats(), wrong, T, 100)
    assert result.status == FAIL and result.baseline == 0.9
    assert result.threshold == pytest.approx(0.88)
    assert check_accuracy(stats(), stats(live_accuracy=0.89), T, 100).status == PASS
    few = check_accuracy(stats(), stats(labelled=5, live_accuracy=0.2), T, 100)
    assert few.status == INSUFFICIENT and "need 30" in few.detail
    unlabelled = stats(labelled=0, live_accuracy=None)
    assert check_accuracy(unlabelled, unlabelled, T, 100).status == SKIPPED


def test_shadow_agreement_when_available() -> None:
    agree = stats(shadow_agreement=0.97, shadow_compared=500)
    assert check_shadow_agreement(stats(), agree, T, 100).status == PASS
    disagree = stats(shadow_agreement=0.6, shadow_compared=500)
    assert check_shadow_agreement(stats(), disagree, T, 100).status == FAIL
    few = stats(shadow_agreement=0.6, shadow_compared=10)
    assert check_shadow_agreement(stats(), few, T, 100).status == INSUFFICIENT


def test_feature_psi_blames_the_candidate_only_when_it_drifts_more() -> None:
    drifted = stats(max_feature_psi=0.5)
    assert check_feature_psi(stats(), drifted, T, 100).status == FAIL
    # live traffic moved for both versions alike: not the candidate's fault
    assert check_feature_psi(stats(max_feature_psi=0.6), drifted, T, 100).status == PASS
    assert check_feature_psi(stats(), stats(max_feature_psi=None), T, 100).status == SKIPPED


def test_thresholds_parse_and_reject_bad_values() -> None:
    t = CanaryThresholds.from_dict({"max_error_rate_increase": 0.05, "min_labels": 10})
    assert t.max_error_rate_increase == 0.05 and t.min_labels == 10
    with pytest.raises(ValueError, match="unknown canary threshold 'max_errors'"):
        CanaryThresholds.from_dict({"max_errors": 1})
    with pytest.raises(ValueError, match=">= 0"):
        CanaryThresholds.from_dict({"max_prediction_psi": -1})
    with pytest.raises(ValueError, match="integer"):
        CanaryThresholds.from_dict({"min_labels": 2.5})
    with pytest.raises(ValueError, match="number"):
        CanaryThresholds.from_dict({"max_prediction_psi": True})


def test_summary_and_json_forms() -> None:
    results = run_checks(stats(), stats(errors=500), T, 100)
    line = summarize(results)
    assert "error_rate fail 0.5" in line and "shadow_agreement" not in line
    as_dict = results[0].to_dict()
    assert as_dict["passed"] is False and as_dict["name"] == "error_rate"
    again = VariantIntervalStats.from_dict(stats().to_dict())
    assert again == stats()


def test_stats_from_window_keeps_only_the_interval() -> None:
    now = [100.0]
    window = PredictionWindow(None, capacity=64, clock=lambda: now[0])
    # before the interval: 4 confident "no" rows, slow
    window.record(None, None, np.zeros(4), np.full(4, 0.95), 0.5)
    now[0] = 110.0
    window.record(None, None, np.array([1.0, 1.0, 0.0]), np.array([0.55, 0.9, 0.8]), 0.002)
    snapshot = window.snapshot()
    # wall clock = monotonic + 1000 at the snapshot; the interval starts at monotonic 105
    snapshot = dataclasses.replace(snapshot, taken_at_wall=snapshot.taken_at + 1000)
    result = stats_from_window(
        snapshot, 1105.0, requests=3, errors=0, classes=["no", "yes"], live_accuracy=0.5
    )
    assert result.class_counts == {"no": 1, "yes": 2}
    assert result.low_confidence_rate == pytest.approx(1 / 3)
    assert result.p99_latency_ms == pytest.approx(2.0)
    assert result.requests == 3 and result.live_accuracy == 0.5
    empty = stats_from_window(snapshot, 5000.0, requests=0, errors=0, classes=None)
    assert empty.p99_latency_ms is None and empty.class_counts == {}
