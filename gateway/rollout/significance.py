"""Significance tests of the canary checks: pure functions of counts, no scipy.

* ``excess_p_value``: one-sided test that the canary's rate exceeds the champion's by more
  than a margin (H0: p_canary - p_champion <= margin; Wald z with unpooled variances).
  It is a non-inferiority test read the other way round: a small p-value means the data
  show, beyond noise, that the canary is worse by more than the threshold allows.
* ``homogeneity_p_value``: chi-squared test that two count vectors (predicted classes of
  the champion and of the canary) come from one distribution (2 x k contingency table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gateway.monitoring.special_functions import chi2_sf


def excess_p_value(
    canary_hits: float, canary_n: float, base_hits: float, base_n: float, margin: float
) -> float:
    """P-value of "the canary's hit rate is more than ``margin`` above the baseline's"."""
    if canary_n <= 0 or base_n <= 0:
        return 1.0
    c, b = canary_hits / canary_n, base_hits / base_n
    excess = c - b - margin
    variance = c * (1.0 - c) / canary_n + b * (1.0 - b) / base_n
    if variance <= 0:  # both rates are 0 or 1: the difference is exact
        return 0.0 if excess > 0 else 1.0
    return 0.5 * math.erfc(excess / math.sqrt(variance) / math.sqrt(2.0))


def homogeneity_p_value(first: Mapping[str, float], second: Mapping[str, float]) -> float:
    """Chi-squared test of homogeneity of two count vectors over the union of their keys."""
    keys = [k for k in set(first) | set(second) if first.get(k, 0) + second.get(k, 0) > 0]
    n1, n2 = sum(first.get(k, 0) for k in keys), sum(second.get(k, 0) for k in keys)
    if len(keys) < 2 or n1 <= 0 or n2 <= 0:
        return 1.0
    total = n1 + n2
    statistic = 0.0
    for k in keys:
        column = first.get(k, 0) + second.get(k, 0)
        for observed, row in ((first.get(k, 0), n1), (second.get(k, 0), n2)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    return chi2_sf(statistic, len(keys) - 1)
