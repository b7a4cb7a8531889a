"""Sample-ratio mismatch: a chi-squared test of assignment counts against configured weights.

A mismatch (p below 0.001 by default, the usual industry threshold) means the assignment
or the outcome logging is broken, so no verdict on the metrics can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.monitoring.special_functions import chi2_sf

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SrmResult:
    """The goodness-of-fit statistic, its p-value and whether it blocks a verdict."""

    statistic: float
    dof: int
    p_value: float
    mismatch: bool


def srm_test(
    counts: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Chi-squared goodness of fit of ``counts`` (variant -> rows) to ``weights``."""
    if len(weights) < 2 or any(not (math.isfinite(w) and w >= 0) for w in weights.values()):
        raise ValueError("weights must name at least two variants with non-negative shares")
    unknown = set(counts) - set(weights)
    if unknown:
        raise ValueError(f"assignment counts for variants without a weight: {sorted(unknown)}")
    if any(c < 0 for c in counts.values()):
        raise ValueError("assignment counts must be >= 0")
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        raise ValueError("the weights must not all be zero")
    total = sum(counts.get(v, 0) for v in weights)
    if total == 0:
        return SrmResult(0.0, len(weights) - 1, 1.0, False)
    statistic = 0.0
    live = 0
    for variant, weight in weights.items():
        observed = counts.get(variant, 0)
        if weight == 0:
            if observed > 0:  # rows where none may go: a mismatch whatever the sizes
                return SrmResult(math.inf, len(weights) - 1, 0.0, True)
            continue
        expected = total * weight / weight_sum
        statistic += (observed - expected) ** 2 / expected
        live += 1
    dof = live - 1
    p = chi2_sf(statistic, dof) if dof >= 1 else 1.0
    return SrmResult(statistic, dof, p, p < threshold)
