"""Normal and Student-t distribution functions without scipy.

``norm_ppf`` is Acklam's rational approximation (relative error 1.15e-9) polished by one
Halley step on ``math.erfc``, which brings it to double precision. The t distribution goes
through the regularised incomplete beta function (Lentz's continued fraction, Numerical
Recipes 3rd ed., section 6.4); its quantile is a bracketed Newton search on the tail.
"""

from __future__ import annotations

import math
import sys

_EPS = sys.float_info.epsilon
_TINY = 1e-300
_MAX_ITER = 10_000
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)

# Acklam's coefficients: central region numerator/denominator, tail numerator/denominator
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)  # fmt: skip
_P_LOW = 0.02425


def norm_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """P(Z >= x) for a standard normal Z (precise in the upper tail)."""
    return 0.5 * math.erfc(x / _SQRT2)


def norm_ppf(p: float) -> float:
    """The x with P(Z <= x) = p, for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"norm_ppf needs 0 < p < 1, got {p}")
    if p > 0.5:  # the lower tail keeps full precision; the upper one is its mirror
        return -norm_ppf(1.0 - p)
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        c, d = _C, _D
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    else:
        q = p - 0.5
        r = q * q
        a, b = _A, _B
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    # one Halley step: e / pdf is the Newton correction, the denominator its curvature term
    e = norm_cdf(x) - p
    u = e * _SQRT2PI * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0.0 and b > 0.0 and 0.0 <= x <= 1.0):
        raise ValueError(f"betainc needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    # the fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_sf(x: float, df: float) -> float:
    """P(T >= x) for T ~ Student t with ``df`` > 0 degrees of freedom."""
    if not df > 0.0:
        raise ValueError(f"df must be > 0, got {df}")
    if math.isinf(df):
        return norm_sf(x)
    tail = 0.5 * betainc(0.5 * df, 0.5, df / (df + x * x))
    return tail if x >= 0.0 else 1.0 - tail


def t_pdf(x: float, df: float) -> float:
    """Density of the Student t distribution."""
    log_norm = math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - 0.5 * (df + 1.0) * math.log1p(x * x / df))


def t_isf(q: float, df: float) -> float:
    """The x with P(T >= x) = q, for 0 < q < 1 (the upper quantile of the t distribution)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"t_isf needs 0 < q < 1, got {q}")
    if not df > 0.0:
        raise ValueError(f"df must be > 0, got {df}")
    if q > 0.5:
        return -t_isf(1.0 - q, df)
    if q == 0.5:
        return 0.0
    if math.isinf(df) or df > 1e7:
        return -norm_ppf(q)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > q:  # bracket the root: t_sf decreases in x
        lo, hi = hi, hi * 2.0
    x = min(max(-norm_ppf(q), lo), hi)
    for _ in range(200):
        diff = t_sf(x, df) - q
        if diff > 0.0:
            lo = x
        else:
            hi = x
        step = diff / t_pdf(x, df)
        nxt = x + step
        if not lo < nxt < hi:  # Newton left the bracket: bisect instead
            nxt = 0.5 * (lo + hi)
        if abs(nxt - x) <= 1e-15 * max(1.0, abs(x)):
            return nxt
        x = nxt
    return x


def _beta_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) <= _EPS:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")
