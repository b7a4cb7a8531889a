"""Retraining policy (docs/lifecycle.md, "When to retrain"): pure decision, reasons named.

The six reasons and their defaults (docs/contracts.md, "Statistics semantics"):

=======================  ======================================  =====================
reason                   fires when                              default threshold
=======================  ======================================  =====================
performance_degradation  live accuracy < min_accuracy_threshold  0.85
data_drift               drift score (max PSI) > max_psi         0.2
low_confidence           low-confidence rate > max rate          0.15
scheduled                days since training >= interval         30 days
new_data_available       new labelled samples >= minimum         10,000
estimated_accuracy       accuracy estimated without labels       0.85
                         < min_estimated_accuracy
=======================  ======================================  =====================

``estimated_accuracy`` is the confidence-based estimate of the drift window
(``gateway.monitoring.performance_estimate``): it can fire before any label arrives, and
stays a separate reason because it is only as good as the calibration (blind to concept
shift), while ``performance_degradation`` rests on labels.

Unlike a check of the training-time (baseline) accuracy, performance degradation
uses the LIVE accuracy measured from label feedback: the training-time accuracy never
changes, so it cannot reveal degradation. An input that is unknown (None: no feedback yet,
no drift window, no training date) never fires its reason; its entry has ``value: null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime
from typing import Any

REASONS = (
    "performance_degradation",
    "data_drift",
    "low_confidence",
    "scheduled",
    "new_data_available",
    "estimated_accuracy",
)


@dataclass(frozen=True, slots=True)
class RetrainingPolicy:
    min_accuracy_threshold: float = 0.85
    max_psi_threshold: float = 0.2
    max_low_confidence_rate: float = 0.15
    retraining_interval_days: int = 30
    min_new_samples_for_retrain: int = 10000
    min_estimated_accuracy: float = 0.85

    def with_overrides(self, values: Mapping[str, Any]) -> RetrainingPolicy:
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown retraining policy fields: {', '.join(unknown)}")
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            cast = (
                int
                if name in ("retraining_interval_days", "min_new_samples_for_retrain")
                else float
            )
            try:
                parsed[name] = cast(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"retraining policy {name} must be a number, got {value!r}"
                ) from None
            if parsed[name] < 0:
                raise ValueError(f"retraining policy {name} must be >= 0")
        return replace(self, **parsed)

    @classmethod
    def for_model(cls, model: str, config: Mapping[str, Any] | None = None) -> RetrainingPolicy:
        """Defaults, then the config's top-level fields, then ``config["models"][model]``.

        ``{"max_psi_threshold": 0.25, "models": {"churn": {"retraining_interval_days": 7}}}``
        """
        config = dict(config or {})
        per_model = config.pop("models", None) or {}
        if not isinstance(per_model, Mapping):
            raise ValueError("retraining policy 'models' must map model names to overrides")
        return cls().with_overrides(config).with_overrides(per_model.get(model) or {})


@dataclass(frozen=True, slots=True)
class RetrainingInputs:
    live_accuracy: float | None = None  # from label feedback; None until labels arrive
    drift_score: float | None = None  # max feature PSI over the current window
    low_confidence_rate: float | None = None  # share of predictions with confidence < 0.6
    trained_at: datetime | None = None  # lineage training.date (see training_date)
    new_labelled_samples: int = 0  # labels received since training
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    estimated_accuracy: float | None = None  # from calibrated confidence; None: unavailable


@dataclass(frozen=True, slots=True)
class RetrainingDecision:
    retrain: bool
    reasons: list[dict[str, Any]]

    @property
    def triggered(self) -> list[str]:
        return [r["reason"] for r in self.reasons if r["triggered"]]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "triggered": self.triggered}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def training_date(lineage: Mapping[str, Any] | None) -> datetime | None:
    """``lineage["training"]["date"]`` (ISO date or datetime) as an aware datetime, or None."""
    raw = ((lineage or {}).get("training") or {}).get("date")
    if not raw:
        return None
    if isinstance(raw, datetime):
        return _aware(raw)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    try:
        return _aware(datetime.fromisoformat(str(raw)))
    except ValueError:
        return None


def _entry(reason: str, value: Any, threshold: Any, triggered: bool) -> dict[str, Any]:
    return {"reason": reason, "value": value, "threshold": threshold, "triggered": triggered}


def should_retrain(
    inputs: RetrainingInputs, policy: RetrainingPolicy | None = None
) -> RetrainingDecision:
    p = policy or RetrainingPolicy()
    days = None
    if inputs.trained_at is not None:
        days = (_aware(inputs.now) - _aware(inputs.trained_at)).total_seconds() / 86400.0
    acc, psi, low = inputs.live_accuracy, inputs.drift_score, inputs.low_confidence_rate
    est = inputs.estimated_accuracy
    reasons = [
        _entry(
            "performance_degradation",
            acc,
            p.min_accuracy_threshold,
            acc is not None and acc < p.min_accuracy_threshold,
        ),
        _entry(
            "data_drift", psi, p.max_psi_threshold, psi is not None and psi > p.max_psi_threshold
        ),
        _entry(
            "low_confidence",
            low,
            p.max_low_confidence_rate,
            low is not None and low > p.max_low_confidence_rate,
        ),
        _entry(
            "scheduled",
            days,
            p.retraining_interval_days,
            days is not None and days >= p.retraining_interval_days,
        ),
        _entry(
            "new_data_available",
            inputs.new_labelled_samples,
            p.min_new_samples_for_retrain,
            inputs.new_labelled_samples >= p.min_new_samples_for_retrain,
        ),
        _entry(
            "estimated_accuracy",
            est,
            p.min_estimated_accuracy,
            est is not None and est < p.min_estimated_accuracy,
        ),
    ]
    return RetrainingDecision(any(r["triggered"] for r in reasons), reasons)
