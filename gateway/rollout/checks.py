"""Automated canary analysis: pure checks comparing a canary with its champion over one interval.

The inputs are two ``VariantIntervalStats`` (``gateway.rollout.interval_stats``). Every
check returns a ``CheckResult`` whose ``status`` is one of

* ``pass``          the canary is no worse than the champion by more than the threshold;
* ``fail``          it is, with enough data to say so;
* ``insufficient``  too little data to decide: NOT a pass (``passed`` is None);
* ``skipped``       the signal does not exist for this model (no classes for a regressor,
                    no label feedback, no shadow comparison, no feature reference, no
                    latency measured): it neither passes nor blocks.

Every check first needs ``min_requests`` answered requests on each side over the interval
(else ``insufficient``), then its own signal. What the rollout controller does with an
``insufficient`` verdict is its business (see ``gateway.rollout.controller``): it waits
while the step's interval runs and counts it as a failed analysis once it has expired.

Noise. The controller looks at a running interval on every tick and fails the analysis as
soon as a check fails, so a bare threshold would fail good canaries on the noise of a few
dozen requests (4 low-confidence answers out of 45 against 6 out of 219 is already +6
points). The tested checks (error rate, low confidence, accuracy, prediction drift) fail
only when the canary is beyond the threshold AND the data show it beyond noise
(``gateway.rollout.significance``): p < ``significance`` (0.01) for the look at
the interval's end (``final``), p < ``early_significance`` (1e-4) for the looks before it.
A broken canary still fails early: 30 % errors over 50 requests against none is p ~ 4e-6.
The untested checks (p99 latency, shadow agreement, feature PSI) are only decided at the
end: before it, a breach reads ``insufficient``. A caller that looks once (tests, reports)
keeps ``final=True``.

The checks (thresholds in ``CanaryThresholds``):

==================  =========================================================================
error_rate          canary error rate > champion's + ``max_error_rate_increase`` (tested)
p99_latency         canary p99 > champion's x ``max_p99_latency_factor`` and more than
                    ``p99_latency_slack_ms`` above it (keeps sub-ms models off timer noise)
low_confidence      canary low-confidence rate > champion's + ``max_low_confidence_increase``
                    (tested)
prediction_drift    PSI of the canary's predicted-class distribution against the champion's
                    > ``max_prediction_psi`` (same inputs, so the classes should match;
                    tested: chi-squared homogeneity of the two class counts)
accuracy            live-label accuracy: champion's - canary's > ``max_accuracy_drop``
                    (tested); needs ``min_labels`` labelled rows on each side once labels flow
shadow_agreement    share of mirrored rows where the canary agreed with the champion <
                    ``min_shadow_agreement`` (needs ``min_shadow_compared`` compared rows)
feature_psi         canary's max feature PSI (against its own training reference) >
                    ``max_feature_psi`` and above the champion's (if both drift alike, the
                    traffic moved, not the candidate)
==================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gateway.monitoring.stats import psi
from gateway.rollout.interval_stats import VariantIntervalStats
from gateway.rollout.significance import excess_p_value, homogeneity_p_value
from gateway.rollout.types import (
    FAIL,
    INSUFFICIENT,
    PASS,
    SKIPPED,
    CanaryThresholds,
    CheckResult,
)

__all__ = [
    "CHECKS",
    "FAIL",
    "INSUFFICIENT",
    "PASS",
    "SKIPPED",
    "CanaryThresholds",
    "CheckResult",
    "VariantIntervalStats",
    "check_accuracy",
    "check_error_rate",
    "check_feature_psi",
    "check_low_confidence",
    "check_p99_latency",
    "check_prediction_drift",
    "check_shadow_agreement",
    "class_distribution_psi",
    "run_checks",
    "summarize",
    "verdict",
]

CHECKS = (
    "error_rate",
    "p99_latency",
    "low_confidence",
    "prediction_drift",
    "accuracy",
    "shadow_agreement",
    "feature_psi",
)
Stats = VariantIntervalStats


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _data_gate(name: str, champion: Stats, canary: Stats, min_requests: int) -> CheckResult | None:
    if canary.requests < min_requests or champion.requests < min_requests:
        return CheckResult(
            name,
            INSUFFICIENT,
            detail=f"requests: canary {canary.requests}, champion {champion.requests} "
            f"(need {min_requests} each)",
        )
    return None


def _tested(
    name: str,
    value: float,
    limit: float,
    baseline: float,
    beyond: bool,
    p_value: float,
    t: CanaryThresholds,
    final: bool,
    head: str,
) -> CheckResult:
    """Fail only when beyond the limit and significant at the look's level."""
    alpha = t.alpha(final)
    worse = beyond and p_value < alpha
    if worse:
        detail = f"{head} (beyond limit {limit:.4g}, p = {p_value:.2g})"
    elif beyond:
        detail = (
            f"{head} (beyond limit {limit:.4g} but not significant: p = {p_value:.2g} >= {alpha:g})"
        )
    else:
        detail = f"{head} (within limit {limit:.4g})"
    return CheckResult(name, FAIL if worse else PASS, value, limit, baseline, detail, p_value)


def _untested(
    name: str,
    value: float,
    limit: float,
    baseline: float | None,
    worse: bool,
    final: bool,
    detail: str,
) -> CheckResult:
    """A breach counts at the interval's end; before it, it only says "wait"."""
    if worse and not final:
        return CheckResult(
            name, INSUFFICIENT, value, limit, baseline, f"{detail}; decided when the interval ends"
        )
    return CheckResult(name, FAIL if worse else PASS, value, limit, baseline, detail)


def check_error_rate(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    gate = _data_gate("error_rate", champion, canary, min_requests)
    if gate is not None:
        return gate
    c, p = canary.error_rate, champion.error_rate
    limit = p + t.max_error_rate_increase
    p_value = excess_p_value(
        canary.errors,
        canary.requests,
        champion.errors,
        champion.requests,
        t.max_error_rate_increase,
    )
    head = f"error rate {c:.4g} vs champion {p:.4g}"
    return _tested("error_rate", c, limit, p, c > limit + 1e-12, p_value, t, final, head)


def check_p99_latency(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    gate = _data_gate("p99_latency", champion, canary, min_requests)
    if gate is not None:
        return gate
    c, p = canary.p99_latency_ms, champion.p99_latency_ms
    if c is None and p is None:  # the stats source measures no latency at all
        return CheckResult("p99_latency", SKIPPED, detail="no latency measured")
    if c is None or p is None or np.isnan(c) or np.isnan(p):
        return CheckResult("p99_latency", INSUFFICIENT, detail="latency missing on one side")
    limit = max(p * t.max_p99_latency_factor, p + t.p99_latency_slack_ms)
    detail = f"p99 latency (ms) {c:.4g} vs champion {p:.4g} (limit {limit:.4g})"
    return _untested("p99_latency", c, limit, p, c > limit, final, detail)


def check_low_confidence(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    gate = _data_gate("low_confidence", champion, canary, min_requests)
    if gate is not None:
        return gate
    c, p = canary.low_confidence_rate, champion.low_confidence_rate
    if c is None and p is None:
        return CheckResult("low_confidence", SKIPPED, detail="no confidence (regressor)")
    if c is None or p is None:
        return CheckResult("low_confidence", INSUFFICIENT, detail="confidence missing on one side")
    limit = p + t.max_low_confidence_increase
    n_c, n_p = canary.confidence_rows, champion.confidence_rows
    p_value = excess_p_value(c * n_c, n_c, p * n_p, n_p, t.max_low_confidence_increase)
    head = f"low-confidence rate {c:.4g} vs champion {p:.4g}"
    return _tested("low_confidence", c, limit, p, c > limit + 1e-12, p_value, t, final, head)


def class_distribution_psi(expected: Mapping[str, int], actual: Mapping[str, int]) -> float:
    """PSI of ``actual`` class counts against ``expected`` over the union of classes."""
    classes = sorted(set(expected) | set(actual))
    e = np.array([expected.get(k, 0) for k in classes], dtype=np.float64)
    a = np.array([actual.get(k, 0) for k in classes], dtype=np.float64)
    return psi(e / e.sum(), a / a.sum())


def check_prediction_drift(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    name = "prediction_drift"
    gate = _data_gate(name, champion, canary, min_requests)
    if gate is not None:
        return gate
    c_total, p_total = sum(canary.class_counts.values()), sum(champion.class_counts.values())
    if not canary.class_counts and not champion.class_counts:
        return CheckResult(name, SKIPPED, detail="no predicted classes (regressor)")
    if c_total <= 0 or p_total <= 0:
        return CheckResult(name, INSUFFICIENT, detail="no predictions on one side")
    value = class_distribution_psi(champion.class_counts, canary.class_counts)
    p_value = homogeneity_p_value(champion.class_counts, canary.class_counts)
    head = f"PSI of predicted classes vs champion {value:.4g}"
    beyond = value > t.max_prediction_psi
    return _tested(name, value, t.max_prediction_psi, 0.0, beyond, p_value, t, final, head)


def check_accuracy(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    name = "accuracy"
    gate = _data_gate(name, champion, canary, min_requests)
    if gate is not None:
        return gate
    if canary.labelled <= 0 and champion.labelled <= 0:
        return CheckResult(name, SKIPPED, detail="no label feedback")
    c, p = canary.live_accuracy, champion.live_accuracy
    if canary.labelled < t.min_labels or champion.labelled < t.min_labels or c is None or p is None:
        return CheckResult(
            name,
            INSUFFICIENT,
            detail=f"labelled rows: canary {canary.labelled}, champion {champion.labelled} "
            f"(need {t.min_labels} each)",
        )
    limit = p - t.max_accuracy_drop
    n_c, n_p = canary.labelled, champion.labelled
    # tested on the wrong answers: the canary's error rate above the champion's + the drop
    p_value = excess_p_value((1.0 - c) * n_c, n_c, (1.0 - p) * n_p, n_p, t.max_accuracy_drop)
    head = f"live accuracy {c:.4g} vs champion {p:.4g}"
    return _tested(name, c, limit, p, c < limit - 1e-12, p_value, t, final, head)


def check_shadow_agreement(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    name = "shadow_agreement"
    gate = _data_gate(name, champion, canary, min_requests)
    if gate is not None:
        return gate
    if canary.shadow_agreement is None or canary.shadow_compared <= 0:
        return CheckResult(name, SKIPPED, detail="no shadow comparison")
    if canary.shadow_compared < t.min_shadow_compared:
        return CheckResult(
            name,
            INSUFFICIENT,
            detail=f"compared rows {canary.shadow_compared} (need {t.min_shadow_compared})",
        )
    value, limit = canary.shadow_agreement, t.min_shadow_agreement
    detail = f"agreement with champion {value:.4g} (minimum {limit:.4g})"
    return _untested(name, value, limit, 1.0, value < limit, final, detail)


def check_feature_psi(
    champion: Stats, canary: Stats, t: CanaryThresholds, min_requests: int, final: bool = True
) -> CheckResult:
    name = "feature_psi"
    gate = _data_gate(name, champion, canary, min_requests)
    if gate is not None:
        return gate
    if canary.max_feature_psi is None:
        return CheckResult(name, SKIPPED, detail="no feature PSI for the canary")
    value, base = canary.max_feature_psi, champion.max_feature_psi
    worse = value > t.max_feature_psi and (base is None or value > base)
    detail = f"max feature PSI {value:.4g} vs champion {_fmt(base)} (limit {t.max_feature_psi:.4g})"
    return _untested(name, value, t.max_feature_psi, base, worse, final, detail)


_CHECK_FUNCTIONS = (
    check_error_rate,
    check_p99_latency,
    check_low_confidence,
    check_prediction_drift,
    check_accuracy,
    check_shadow_agreement,
    check_feature_psi,
)


def run_checks(
    champion: Stats,
    canary: Stats,
    thresholds: CanaryThresholds | None = None,
    min_requests: int = 1,
    *,
    final: bool = True,
) -> list[CheckResult]:
    """Every check; ``final`` False for a look before the interval's end (see above)."""
    t = thresholds or CanaryThresholds()
    return [check(champion, canary, t, min_requests, final) for check in _CHECK_FUNCTIONS]


def verdict(results: Sequence[CheckResult]) -> str:
    """``fail`` if any check failed, else ``insufficient`` if any lacked data, else ``pass``."""
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return FAIL
    if INSUFFICIENT in statuses:
        return INSUFFICIENT
    return PASS


def summarize(results: Sequence[CheckResult]) -> str:
    """One line for an audit reason: every check that was not skipped."""
    parts = []
    for r in results:
        if r.status == SKIPPED:
            continue
        if r.status == INSUFFICIENT:
            parts.append(f"{r.name} insufficient data ({r.detail})")
        else:
            parts.append(f"{r.name} {r.status} {_fmt(r.value)} (limit {_fmt(r.threshold)})")
    return "; ".join(parts) or "no applicable checks"
