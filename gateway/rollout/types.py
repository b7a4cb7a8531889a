"""The canary analysis's vocabulary: check statuses, thresholds and one check's result.

Re-exported by ``gateway.rollout.checks``, which holds the checks themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

PASS, FAIL, INSUFFICIENT, SKIPPED = "pass", "fail", "insufficient", "skipped"
_INTEGRAL = ("min_labels", "min_shadow_compared")
_PROBABILITIES = ("significance", "early_significance")


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
    # tested checks fail only below this p-value when the interval ends ...
    significance: float = 0.01
    # ... and below this one before (the controller looks at every tick)
    early_significance: float = 0.0001

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
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise ValueError(f"canary threshold {name} must be a number >= 0, got {value!r}")
            if name in _INTEGRAL and int(value) != value:
                raise ValueError(f"canary threshold {name} must be an integer, got {value!r}")
            if name in _PROBABILITIES and value > 1:
                raise ValueError(f"canary threshold {name} must be within [0, 1], got {value!r}")
            parsed[name] = int(value) if name in _INTEGRAL else float(value)
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alpha(self, final: bool) -> float:
        """The p-value a tested check must beat: at the interval's end or before it."""
        return self.significance if final else min(self.significance, self.early_significance)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # pass | fail | insufficient | skipped
    value: float | None = None  # the canary's measurement
    threshold: float | None = None  # the limit it was held to
    baseline: float | None = None  # the champion's measurement
    detail: str = ""
    p_value: float | None = None  # tested checks: the evidence that the canary is worse

    @property
    def passed(self) -> bool | None:
        """True / False; None when there was no verdict (insufficient or skipped)."""
        return True if self.status == PASS else False if self.status == FAIL else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("value", "threshold", "baseline", "p_value"):
            if isinstance(out[key], float) and not math.isfinite(out[key]):
                out[key] = None
        out["passed"] = self.passed
        return out
