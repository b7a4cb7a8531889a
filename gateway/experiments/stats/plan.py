"""Sample size per variant and expected duration of a two-variant experiment.

Binary metric: two-proportion z-test with the pooled variance under both hypotheses,
``n = 2 p(1 - p) (z_{1-alpha/2} + z_{power})^2 / delta^2`` with ``p`` the mean of the two
rates. Continuous metric: two-sample t-test approximated by z with the baseline's standard
deviation, ``n = 2 sigma^2 (z_{1-alpha/2} + z_{power})^2 / delta^2``. Both are statsmodels'
``NormalIndPower`` without its negligible opposite-tail term, rounded up to whole rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.experiments.stats.distributions import norm_ppf

MdeKind = Literal["relative", "absolute"]
MetricKind = Literal["binary", "continuous"]


@dataclass(frozen=True, slots=True)
class MinimumEffect:
    """The smallest difference worth detecting, relative to the baseline or absolute."""

    value: float
    kind: MdeKind

    def absolute(self, baseline: float) -> float:
        """The effect in the metric's own unit (a relative one scales the baseline)."""
        return abs(self.value * baseline) if self.kind == "relative" else abs(self.value)


@dataclass(frozen=True, slots=True)
class SampleSizePlan:
    """Rows needed in EACH variant to detect ``delta`` with the given error rates."""

    metric_kind: MetricKind
    n_per_variant: int
    delta: float  # absolute minimum detectable effect
    alpha: float  # two-sided
    power: float


def parse_mde(spec: Mapping[str, Any]) -> MinimumEffect:
    """Read ``{"mde": x, "mde_kind": "relative" | "absolute"}`` (kind defaults to relative)."""
    if not isinstance(spec, Mapping) or "mde" not in spec:
        raise ValueError('the minimum detectable effect must be {"mde": x, "mde_kind": ...}')
    value, kind = spec["mde"], spec.get("mde_kind", "relative")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"mde must be a number, got {value!r}")
    if kind not in ("relative", "absolute"):
        raise ValueError(f'mde_kind must be "relative" or "absolute", got {kind!r}')
    if not (math.isfinite(value) and value != 0):
        raise ValueError(f"mde must be a finite non-zero number, got {value!r}")
    return MinimumEffect(float(value), kind)


def sample_size_binary(
    baseline_rate: float, effect: MinimumEffect, *, alpha: float = 0.05, power: float = 0.8
) -> SampleSizePlan:
    """Rows per variant for a rate moving from ``baseline_rate`` by ``effect``."""
    _check_errors(alpha, power)
    if not 0.0 < baseline_rate < 1.0:
        raise ValueError(f"baseline_rate must be in (0, 1), got {baseline_rate}")
    delta = effect.absolute(baseline_rate)
    treated = baseline_rate + delta
    if not treated < 1.0:  # an increase past 1 cannot happen; plan the decrease instead
        treated = baseline_rate - delta
    if not 0.0 < treated < 1.0:
        raise ValueError(f"an effect of {delta:g} moves the rate {baseline_rate:g} outside (0, 1)")
    pooled = 0.5 * (baseline_rate + treated)
    n = 2.0 * pooled * (1.0 - pooled) * _z_sum(alpha, power) ** 2 / delta**2
    return SampleSizePlan("binary", _rows(n), delta, alpha, power)


def sample_size_continuous(
    baseline_mean: float,
    baseline_sd: float,
    effect: MinimumEffect,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> SampleSizePlan:
    """Rows per variant for a mean moving from ``baseline_mean`` by ``effect``."""
    _check_errors(alpha, power)
    if not (math.isfinite(baseline_sd) and baseline_sd > 0):
        raise ValueError(f"baseline_sd must be a positive number, got {baseline_sd}")
    if not math.isfinite(baseline_mean):
        raise ValueError(f"baseline_mean must be finite, got {baseline_mean}")
    delta = effect.absolute(baseline_mean)
    if delta == 0.0:
        raise ValueError("a relative effect of a zero baseline mean is zero; state it absolute")
    n = 2.0 * baseline_sd**2 * _z_sum(alpha, power) ** 2 / delta**2
    return SampleSizePlan("continuous", _rows(n), delta, alpha, power)


def duration_days(
    n_per_variant: int, traffic_per_day: float, weights: Mapping[str, float]
) -> float:
    """Days until every variant holds ``n_per_variant`` rows; the lightest one decides."""
    if not (math.isfinite(traffic_per_day) and traffic_per_day > 0):
        raise ValueError(f"traffic_per_day must be positive, got {traffic_per_day}")
    if len(weights) < 2 or any(not (math.isfinite(w) and w > 0) for w in weights.values()):
        raise ValueError("weights must give every variant (at least two) a positive share")
    if n_per_variant < 0:
        raise ValueError(f"n_per_variant must be >= 0, got {n_per_variant}")
    lightest = min(weights.values()) / sum(weights.values())
    return n_per_variant / (traffic_per_day * lightest)


def _z_sum(alpha: float, power: float) -> float:
    return norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power)


def _rows(n: float) -> int:
    # a hair below an integer is that integer (floating noise), not one more row
    return max(2, math.ceil(n - 1e-9))


def _check_errors(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if power <= alpha / 2.0:
        raise ValueError(f"power ({power}) must exceed alpha / 2 ({alpha / 2})")
