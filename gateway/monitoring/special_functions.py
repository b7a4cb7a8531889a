"""Regularised upper incomplete gamma Q(a, x) and the chi-squared survival function.

Series for x < a + 1 (where it converges fast and Q = 1 - P is not small), Lentz's
continued fraction otherwise (where it converges fast and keeps Q's relative precision in
the far tail). Both as in Numerical Recipes, 3rd ed., section 6.2.
"""

from __future__ import annotations

import math
import sys

_EPS = sys.float_info.epsilon
_TINY = 1e-300
_MAX_ITER = 100_000


def gammaincc(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a) for a > 0, x >= 0."""
    if not a > 0.0 or not x >= 0.0 or math.isinf(a):
        raise ValueError(f"gammaincc needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefactor = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        return max(0.0, 1.0 - math.exp(log_prefactor) * _lower_series(a, x))
    return math.exp(log_prefactor) * _upper_fraction(a, x)


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-squared with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if statistic <= 0.0:
        return 1.0
    return gammaincc(dof / 2.0, statistic / 2.0)


def _lower_series(a: float, x: float) -> float:
    # P(a, x) * Gamma(a) / (x**a * e**-x) = sum_k x**k / (a (a+1) ... (a+k))
    term = total = 1.0 / a
    ap = a
    for _ in range(_MAX_ITER):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            return total
    raise ArithmeticError(f"incomplete gamma series did not converge (a={a}, x={x})")


def _upper_fraction(a: float, x: float) -> float:
    # Q(a, x) * Gamma(a) / (x**a * e**-x) = 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) <= _EPS:
            return h
    raise ArithmeticError(f"incomplete gamma fraction did not converge (a={a}, x={x})")
