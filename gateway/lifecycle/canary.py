"""Automated canary analysis: pure checks comparing a canary with its champion over one interval.

The inputs are two ``VariantIntervalStats`` (``gateway.lifecycle.canary_stats``). Every
check returns a ``CheckResult`` whose ``status`` is one of

* ``pass``          the canary is no worse than the champion by more than the threshold;
* ``fail``          it is, with enough data to say so;
* ``insufficient``  too little data to decide: NOT a pass (``passed`` is None);
* ``skipped``       the signal does not exist for this model (no classes for a regressor,
                    no label feedback, no shadow comparison, no feature reference): it
                    neither passes nor blocks.

Every check first needs ``min_requests`` answered requests on each side over the interval
(else ``insufficient``), then its own signal. What the rollout controller does with an
``insufficient`` verdict is its business (see ``gateway.controlplane.rollout``): it waits
while the step's interval runs and counts it as a failed analysis once it has expired.

The checks (thresholds in ``CanaryThresholds``):

==================  =========================================================================
error_rate          canary error rate > champion's + ``max_error_rate_increase``
p99_latency         canary p99 > champion's x ``max_p99_latency_factor`` and more than
                    ``p99_latency_slack_ms`` above it (keeps sub-ms models off timer noise)
low_confidence      canary low-confidence rate > champion's + ``max_low_confidence_increase``
prediction_drift    PSI of the canary's predicted-class distribution against the champion's
                    > ``max_prediction_psi`` (same inputs, so the classes should match)
accuracy            live-label accuracy: champion's - canary's > ``max_accuracy_drop``;
                    needs ``min_labels`` labelled rows on each side once labels flow
shadow_agreement    share of mirrored rows where the canary agreed with the champion <
                    ``min_shadow_agreement`` (needs ``min_shadow_compared`` compared rows)
feature_psi         canary's max feature PSI (against its own training reference) >
                    ``max_feature_psi`` and above the champion's (if both drift alike, the
                    traffic moved, not the candidate)
==================  =========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from gateway.lifecycle.canary_stats import VariantIntervalStats
from gateway.monitoring.stats import psi

PASS, FAIL, INSUFFICIENT, SKIPPED = "pass", "fail", "insufficient", "skipped"
CHECKS = (
    "error_rate",
    "p99_latency",
    "low_confidence",
    "prediction_drift",
    "accuracy",
    "shadow_agreement",
    "feature_psi",
)


@dataclass(frozen=True, slots=True)
class CanaryThresholds:
    max_error_rate_increase: float = 0.01
    max_p99_latency_factor: float = 1.5
    p99_latency_slack_ms: float = 1.0
    max_low_confidence_increase: float = 0.05
    max_prediction_psi: float = 0.2
    max_accuracy_drop: float = 0.02
    min_labels: int = 30
    min_shadow_agreement: float = 0.9
    min_shadow_compared: int = 100
    max_feature_psi: float = 0.2

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> CanaryThresholds:
        """Defaults overridden by ``values``; unknown names or bad numbers raise ValueError."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown canary threshold {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            integral = name in ("min_labels", "min_shadow_compared")
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise ValueError(f"canary threshold {name} must be a number >= 0, got {value!r}")
            if integral and int(value) != value:
                raise ValueError(f"canary threshold {name} must be an integer, got {value!r}")
            parsed[name] = int(value) if integral else float(value)
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # pass | fail | insufficient | skipped
    value: float | None = None  # the canary's measurement
    threshold: float | None = None  # the limit it was held to
    baseline: float | None = None  # the champion's measurement
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        """True / False; None when there was no verdict (insufficient or skipped)."""
        return True if self.status == PASS else False if self.status == FAIL else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("value", "threshold", "baseline"):
            if isinstance(out[key], float) and not math.isfinite(out[key]):
                out[key] = None
        out["passed"] = self.passed
        return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _data_gate(
    name: str, champion: VariantIntervalStats, canary: VariantIntervalStats, min_requests: int
) -> CheckResult | None:
    if canary.requests < min_requests or champion.requests < min_requests:
        return CheckResult(
            name,
            INSUFFICIENT,
            detail=f"requests: canary {canary.requests}, champion {champion.requests} "
            f"(need {min_requests} each)",
        )
    return None


def _compare(
    name: str, value: float, limit: float, baseline: float, worse: bool, what: str
) -> CheckResult:
    verb = "above" if worse else "within"
    detail = f"{what} {value:.4g} vs champion {baseline:.4g} ({verb} limit {limit:.4g})"
    return CheckResult(name, FAIL if worse else PASS, value, limit, baseline, detail)


def check_error_rate(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
) -> CheckResult:
    gate = _data_gate("error_rate", champion, canary, min_requests)
    if gate is not None:
        return gate
    limit = champion.error_rate + t.max_error_rate_increase
    return _compare(
        "error_rate",
        canary.error_rate,
        limit,
        champion.error_rate,
        canary.error_rate > limit + 1e-12,
        "error rate",
    )


def check_p99_latency(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
) -> CheckResult:
    gate = _data_gate("p99_latency", champion, canary, min_requests)
    if gate is not None:
        return gate
    c, p = canary.p99_latency_ms, champion.p99_latency_ms
    if c is None or p is None or math.isnan(c) or math.isnan(p):
        return CheckResult("p99_latency", INSUFFICIENT, detail="no latency measured")
    limit = max(p * t.max_p99_latency_factor, p + t.p99_latency_slack_ms)
    return _compare("p99_latency", c, limit, p, c > limit, "p99 latency (ms)")


def check_low_confidence(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
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
    return _compare("low_confidence", c, limit, p, c > limit + 1e-12, "low-confidence rate")


def class_distribution_psi(expected: Mapping[str, int], actual: Mapping[str, int]) -> float:
    """PSI of ``actual`` class counts against ``expected`` over the union of classes."""
    classes = sorted(set(expected) | set(actual))
    e = np.array([expected.get(k, 0) for k in classes], dtype=np.float64)
    a = np.array([actual.get(k, 0) for k in classes], dtype=np.float64)
    return psi(e / e.sum(), a / a.sum())


def check_prediction_drift(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
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
    worse = value > t.max_prediction_psi
    return CheckResult(
        name,
        FAIL if worse else PASS,
        value,
        t.max_prediction_psi,
        0.0,
        f"PSI of predicted classes vs champion {value:.4g} (limit {t.max_prediction_psi:.4g})",
    )


def check_accuracy(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
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
    worse = c < limit - 1e-12
    verb = "below" if worse else "within"
    return CheckResult(
        name,
        FAIL if worse else PASS,
        c,
        limit,
        p,
        f"live accuracy {c:.4g} vs champion {p:.4g} ({verb} limit {limit:.4g})",
    )


def check_shadow_agreement(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
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
    value = canary.shadow_agreement
    worse = value < t.min_shadow_agreement
    return CheckResult(
        name,
        FAIL if worse else PASS,
        value,
        t.min_shadow_agreement,
        1.0,
        f"agreement with champion {value:.4g} (minimum {t.min_shadow_agreement:.4g})",
    )


def check_feature_psi(
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    t: CanaryThresholds,
    min_requests: int,
) -> CheckResult:
    name = "feature_psi"
    gate = _data_gate(name, champion, canary, min_requests)
    if gate is not None:
        return gate
    if canary.max_feature_psi is None:
        return CheckResult(name, SKIPPED, detail="no feature PSI for the canary")
    value, base = canary.max_feature_psi, champion.max_feature_psi
    worse = value > t.max_feature_psi and (base is None or value > base)
    return CheckResult(
        name,
        FAIL if worse else PASS,
        value,
        t.max_feature_psi,
        base,
        f"max feature PSI {value:.4g} vs champion {_fmt(base)} (limit {t.max_feature_psi:.4g})",
    )


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
    champion: VariantIntervalStats,
    canary: VariantIntervalStats,
    thresholds: CanaryThresholds | None = None,
    min_requests: int = 1,
) -> list[CheckResult]:
    t = thresholds or CanaryThresholds()
    return [check(champion, canary, t, min_requests) for check in _CHECK_FUNCTIONS]


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
