"""The canary checks hold out for evidence: significance tests against scipy, early looks
stricter than the final one, untested checks decided at the interval's end only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from gateway.rollout.checks import (
    FAIL,
    INSUFFICIENT,
    PASS,
    SKIPPED,
    CanaryThresholds,
    VariantIntervalStats,
    check_accuracy,
    check_error_rate,
    check_feature_psi,
    check_low_confidence,
    check_p99_latency,
    check_prediction_drift,
    run_checks,
    verdict,
)
from gateway.rollout.significance import excess_p_value, homogeneity_p_value

T = CanaryThresholds()


def side(**values: object) -> VariantIntervalStats:
    return VariantIntervalStats(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("c_hits", "c_n", "b_hits", "b_n", "margin"),
    [(6, 20, 0, 80, 0.01), (4, 45, 6, 219, 0.05), (30, 1000, 10, 1000, 0.01), (1, 50, 0, 200, 0.0)],
)
def test_excess_p_value_is_the_one_sided_wald_test(
    c_hits: int, c_n: int, b_hits: int, b_n: int, margin: float
) -> None:
    c, b = c_hits / c_n, b_hits / b_n
    se = math.sqrt(c * (1 - c) / c_n + b * (1 - b) / b_n)
    expected = sp.norm.sf((c - b - margin) / se)
    assert excess_p_value(c_hits, c_n, b_hits, b_n, margin) == pytest.approx(expected, rel=1e-9)


def test_excess_p_value_edges() -> None:
    assert excess_p_value(0, 0, 0, 10, 0.01) == 1.0  # no rows: no evidence
    assert excess_p_value(0, 50, 0, 50, 0.01) == 1.0  # no hits anywhere
    assert excess_p_value(50, 50, 0, 50, 0.01) == 0.0  # every canary row is a hit


def test_homogeneity_matches_scipy_contingency() -> None:
    first, second = {"no": 700, "yes": 300}, {"no": 640, "yes": 340, "maybe": 20}
    keys = ["no", "yes", "maybe"]
    table = np.array([[first.get(k, 0) for k in keys], [second.get(k, 0) for k in keys]])
    _, expected, dof, _ = sp.chi2_contingency(table, correction=False)
    assert dof == 2
    assert homogeneity_p_value(first, second) == pytest.approx(expected, rel=1e-6)
    assert homogeneity_p_value({"no": 10}, {"no": 3}) == 1.0  # one class: nothing to test


def test_noise_of_a_few_dozen_requests_does_not_fail_a_good_canary() -> None:
    # 4 low-confidence answers out of 45 against 6 out of 219: +6 points, beyond the
    # 0.05 increase, but well within noise
    champion = side(requests=219, low_confidence_rate=6 / 219, confidence_count=219)
    canary = side(requests=45, low_confidence_rate=4 / 45, confidence_count=45)
    result = check_low_confidence(champion, canary, T, 20)
    assert result.status == PASS and result.p_value > 0.05
    assert "not significant" in result.detail
    # the same rates over 200x the rows show the canary beyond the margin
    big_champion = side(requests=43800, low_confidence_rate=6 / 219, confidence_count=43800)
    big_canary = side(requests=9000, low_confidence_rate=4 / 45, confidence_count=9000)
    assert check_low_confidence(big_champion, big_canary, T, 20).status == FAIL


def test_a_broken_canary_fails_at_an_early_look() -> None:
    champion = side(requests=150, errors=0)
    broken = side(requests=50, errors=15)  # 30 % errors
    early = check_error_rate(champion, broken, T, 20, final=False)
    assert early.status == FAIL and early.p_value < T.early_significance
    # after 20 requests the evidence is only enough for the final look
    young = side(requests=20, errors=6)
    assert check_error_rate(champion, young, T, 20, final=False).status == PASS
    assert check_error_rate(champion, young, T, 20, final=True).status == FAIL


def test_accuracy_is_tested_on_the_wrong_answers() -> None:
    champion = side(requests=500, live_accuracy=0.95, labelled=200)
    wrong = side(requests=100, live_accuracy=0.1, labelled=40)
    result = check_accuracy(champion, wrong, T, 20, final=False)
    assert result.status == FAIL and result.baseline == 0.95
    slightly = side(requests=100, live_accuracy=0.9, labelled=40)  # -5 points over 40 labels
    assert check_accuracy(champion, slightly, T, 20).status == PASS


def test_prediction_drift_needs_both_psi_and_evidence() -> None:
    champion = side(requests=400, class_counts={"no": 280, "yes": 120})
    few = side(requests=20, class_counts={"no": 9, "yes": 11})  # PSI > 0.2 on 20 rows
    result = check_prediction_drift(champion, few, T, 20, final=False)
    assert result.value > 0.2 and result.status == PASS
    many = side(requests=400, class_counts={"no": 180, "yes": 220})
    assert check_prediction_drift(champion, many, T, 20, final=False).status == FAIL


def test_untested_checks_wait_for_the_end_of_the_interval() -> None:
    champion = side(requests=100, p99_latency_ms=2.0, max_feature_psi=0.01)
    slow = side(requests=100, p99_latency_ms=40.0, max_feature_psi=0.5)
    for check in (check_p99_latency, check_feature_psi):
        early = check(champion, slow, T, 20, final=False)
        assert early.status == INSUFFICIENT and "decided when the interval ends" in early.detail
        assert check(champion, slow, T, 20, final=True).status == FAIL
    results = run_checks(champion, slow, T, 20, final=False)
    assert verdict(results) == INSUFFICIENT  # keep collecting, do not fail yet
    assert verdict(run_checks(champion, slow, T, 20)) == FAIL


def test_no_latency_at_all_is_skipped_not_insufficient() -> None:
    counters = side(requests=100, errors=0)  # a source that counts requests only
    assert check_p99_latency(counters, counters, T, 20).status == SKIPPED
    one_sided = check_p99_latency(side(requests=100, p99_latency_ms=3.0), counters, T, 20)
    assert one_sided.status == INSUFFICIENT


def test_significance_thresholds_parse() -> None:
    t = CanaryThresholds.from_dict({"significance": 0.05, "early_significance": 0.001})
    assert t.alpha(True) == 0.05 and t.alpha(False) == 0.001
    assert CanaryThresholds.from_dict({"significance": 1}).alpha(True) == 1.0
    with pytest.raises(ValueError, match="within"):
        CanaryThresholds.from_dict({"significance": 2})
    # an early level looser than the final one is capped at the final one
    assert CanaryThresholds.from_dict({"early_significance": 0.5}).alpha(False) == 0.01
