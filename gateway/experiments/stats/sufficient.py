"""Sufficient statistics of one (variant, metric) and the two-sample differences built on them.

``Moments`` (count, sum, sum of squares) merges by addition, so every worker keeps its own and
the shell adds them up. A binary metric is the same with 0/1 outcomes (sum = successes).
``welch_difference``: difference of means, Welch's t interval and p-value.
``proportion_difference``: difference of rates, Wald interval (unpooled) and the pooled
two-proportion z-test p-value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gateway.experiments.stats.distributions import norm_ppf, norm_sf, t_isf, t_sf


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of one variant's outcomes for one metric."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float] | np.ndarray) -> Moments:
        """The moments of a batch of outcomes (NaN is rejected: a missing outcome is no row)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size and not np.isfinite(arr).all():
            raise ValueError("outcomes must be finite numbers")
        return cls(int(arr.size), float(arr.sum()), float(np.dot(arr, arr)))

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of outcomes together."""
        return Moments(
            self.count + other.count, self.total + other.total, self.total_sq + other.total_sq
        )

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count > 0 else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 denominator); NaN below two rows."""
        if self.count < 2:
            return math.nan
        centred = self.total_sq - self.total * self.total / self.count
        return max(0.0, centred / (self.count - 1))


@dataclass(frozen=True, slots=True)
class Difference:
    """Treatment minus control: estimate, standard error, two-sided interval and p-value."""

    estimate: float
    std_error: float
    lower: float
    upper: float
    p_value: float
    alpha: float
    dof: float = math.inf  # Welch-Satterthwaite degrees of freedom; inf for a z interval

    def excludes_zero(self) -> bool:
        return self.lower > 0.0 or self.upper < 0.0


def welch_difference(treatment: Moments, control: Moments, alpha: float = 0.05) -> Difference:
    """Welch's unequal-variance t interval and test for mean(treatment) - mean(control)."""
    _check(treatment, control, alpha)
    vt, vc = treatment.variance / treatment.count, control.variance / control.count
    estimate = treatment.mean - control.mean
    se2 = vt + vc
    if se2 <= 0.0:
        return _exact(estimate, alpha)
    dof = se2 * se2 / (vt * vt / (treatment.count - 1) + vc * vc / (control.count - 1))
    se = math.sqrt(se2)
    half = t_isf(alpha / 2.0, dof) * se
    p = min(1.0, 2.0 * t_sf(abs(estimate) / se, dof))
    return Difference(estimate, se, estimate - half, estimate + half, p, alpha, dof)


def z_difference(treatment: Moments, control: Moments, alpha: float = 0.05) -> Difference:
    """The large-sample z interval and test for mean(treatment) - mean(control)."""
    _check(treatment, control, alpha)
    se2 = treatment.variance / treatment.count + control.variance / control.count
    estimate = treatment.mean - control.mean
    if se2 <= 0.0:
        return _exact(estimate, alpha)
    se = math.sqrt(se2)
    half = -norm_ppf(alpha / 2.0) * se
    p = min(1.0, 2.0 * norm_sf(abs(estimate) / se))
    return Difference(estimate, se, estimate - half, estimate + half, p, alpha)


def proportion_difference(treatment: Moments, control: Moments, alpha: float = 0.05) -> Difference:
    """Rate(treatment) - rate(control): Wald interval, pooled two-proportion z-test p-value."""
    _check(treatment, control, alpha, minimum=1)
    nt, nc = treatment.count, control.count
    pt, pc = treatment.mean, control.mean
    if not (0.0 <= pt <= 1.0 and 0.0 <= pc <= 1.0):
        raise ValueError("a binary metric's outcomes must be 0 or 1")
    estimate = pt - pc
    se = math.sqrt(pt * (1.0 - pt) / nt + pc * (1.0 - pc) / nc)
    half = -norm_ppf(alpha / 2.0) * se
    pooled = (treatment.total + control.total) / (nt + nc)
    se_pooled = math.sqrt(pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc))
    if se_pooled > 0.0:
        p = min(1.0, 2.0 * norm_sf(abs(estimate) / se_pooled))
    else:  # both rates 0 or both 1: no difference at all
        p = 1.0
    return Difference(estimate, se, estimate - half, estimate + half, p, alpha)


def _exact(estimate: float, alpha: float) -> Difference:
    # no variance in either variant: the difference is known exactly
    return Difference(estimate, 0.0, estimate, estimate, 0.0 if estimate else 1.0, alpha)


def _check(treatment: Moments, control: Moments, alpha: float, minimum: int = 2) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if treatment.count < minimum or control.count < minimum:
        raise ValueError(f"each variant needs at least {minimum} rows")
