"""Tail of the two-sided one-sample Kolmogorov distribution, P(D_n >= d), in numpy.

This is what scipy's ``ks_2samp(method="asymp")`` evaluates at the effective sample size,
so the KS p-values of the drift report match scipy without importing it at serving time.
The choice between methods follows Simard & L'Ecuyer (2011), "Computing the two-sided
Kolmogorov-Smirnov distribution", J. Stat. Softw. 39(11), as scipy does:

* exact corner cases (Ruben & Gambino) for d <= 1/n and d >= 1 - 1/n;
* Smirnov's exact one-sided sum, doubled, for large d (exact when d >= 1/2);
* the Durbin matrix (Marsaglia, Tsang & Wang 2003) for small n * d**2 — also used where
  Simard & L'Ecuyer use the Pomeranz recursion (n <= 140): both are exact;
* the Pelz-Good (1976) asymptotic expansion for large n and small d.
"""

from __future__ import annotations

import math

import numpy as np

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PI2 = math.pi**2


def kolmogorov_sf(n: int, d: float) -> float:
    """P(D_n >= d) for the two-sided statistic of a sample of size ``n`` (clipped to [0, 1])."""
    if n < 1:
        raise ValueError(f"sample size must be >= 1, got {n}")
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    t = n * d
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        return _clip(1.0 - math.exp(_log_factorial_over_power(n) + n * math.log(2.0 * t - 1.0)))
    if t >= n - 1:
        return _clip(2.0 * (1.0 - d) ** n)
    if d >= 0.5:
        return _clip(2.0 * smirnov_sf(n, d))
    n_d2 = t * d
    if n <= 140:
        if n_d2 <= 4.0:
            return _clip(1.0 - durbin_cdf(n, d))
        return _clip(2.0 * smirnov_sf(n, d))
    if n_d2 >= 370.0:
        return 0.0
    if n_d2 >= 2.2:
        return _clip(2.0 * smirnov_sf(n, d))
    if n <= 100_000 and n * d**1.5 <= 1.4:
        return _clip(1.0 - durbin_cdf(n, d))
    return _clip(1.0 - pelz_good_cdf(n, d))


def smirnov_sf(n: int, d: float) -> float:
    """Exact one-sided P(D+_n >= d) by the Smirnov / Birnbaum-Tingey sum (log-space)."""
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    j = np.arange(int(math.floor(n * (1.0 - d))) + 1, dtype=np.float64)
    u = d + j / n
    w = 1.0 - u
    keep = w > 0.0
    j, u, w = j[keep], u[keep], w[keep]
    # log C(n, j) accumulated as a running sum of log((n - i + 1) / i)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log((n - j[1:] + 1.0) / j[1:]))))
    log_terms = log_choose + (j - 1.0) * np.log(u) + (n - j) * np.log(w)
    top = log_terms.max()
    return float(d * math.exp(top) * np.exp(log_terms - top).sum())


def durbin_cdf(n: int, d: float) -> float:
    """Exact P(D_n < d) by Durbin's matrix, computed as in Marsaglia, Tsang & Wang (2003)."""
    k = math.ceil(n * d)
    h = k - n * d
    m = 2 * k - 1
    inv_fact = np.concatenate(([1.0], np.cumprod(1.0 / np.arange(1, m + 1))))  # 1/i!, i=0..m
    gap = np.arange(m)[:, None] - np.arange(m)[None, :] + 1
    matrix = np.where(gap >= 0, inv_fact[np.clip(gap, 0, m)], 0.0)
    h_pow = h ** np.arange(1, m + 1)  # h^1 .. h^m
    matrix[:, 0] -= h_pow * inv_fact[1:]
    matrix[m - 1, :] -= h_pow[::-1] * inv_fact[1:][::-1]
    matrix[m - 1, 0] += max(0.0, 2.0 * h - 1.0) ** m * inv_fact[m]
    power, exponent = _matrix_power(matrix, n)
    entry = power[k - 1, k - 1]
    if entry <= 0.0:
        return 0.0
    log_p = math.log(entry) + exponent * math.log(2.0) + _log_factorial_over_power(n)
    return min(1.0, math.exp(log_p))


def pelz_good_cdf(n: int, d: float) -> float:
    """Pelz-Good expansion of P(D_n <= d) (Simard & L'Ecuyer 2011, section 2.4)."""
    z = math.sqrt(n) * d
    z2 = z * z
    if _PI2 / (8.0 * z2) > 708.0:
        return 0.0
    terms = math.ceil(16.0 * z / math.pi) + 2
    k = np.arange(1, terms + 1, dtype=np.float64)
    m2 = (2.0 * k - 1.0) ** 2
    odd = np.exp(-_PI2 * m2 / (8.0 * z2))  # q ** ((2k-1)**2)
    k0 = odd.sum()
    k1 = ((_PI2 * m2 / 4.0 - z2) * odd).sum()
    k2 = (
        (
            6 * z**6
            + 2 * z**4
            + _PI2 * (2 * z**4 - 5 * z2) * m2 / 4
            + _PI2**2 * (1 - 2 * z2) * m2**2 / 16
        )
        * odd
    ).sum()
    k3 = (
        (
            -30 * z**6
            - 90 * z**8
            + _PI2 * (135 * z**4 - 96 * z**6) * m2 / 4
            + _PI2**2 * (212 * z**4 - 60 * z2) * m2**2 / 16
            + _PI2**3 * (5 - 30 * z2) * m2**3 / 64
        )
        * odd
    ).sum()
    k0 *= _SQRT_2PI / z
    k1 *= _SQRT_2PI / (6 * z**4)
    k2 *= _SQRT_2PI / (72 * z**7)
    k3 *= _SQRT_2PI / (6480 * z**10)
    k_sq = k * k
    every = np.exp(-_PI2 * k_sq / (2.0 * z2))  # r ** (k**2)
    k2 -= _PI2 * _SQRT_2PI / (36 * z**3) * (k_sq * every).sum()
    k3 += _PI2 * _SQRT_2PI / (216 * z**6) * ((3 * z2 - _PI2 * k_sq) * k_sq * every).sum()
    return float(k0 + k1 / math.sqrt(n) + k2 / n + k3 / n**1.5)


def _matrix_power(matrix: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """``matrix ** n`` as (mantissa matrix, power-of-two exponent), rescaled exactly."""
    result = np.eye(matrix.shape[0])
    result_exp = 0
    base, base_exp = matrix, 0
    while n:
        if n & 1:
            result, shift = _normalise(result @ base)
            result_exp += base_exp + shift
        n >>= 1
        if n:
            base, shift = _normalise(base @ base)
            base_exp = 2 * base_exp + shift
    return result, result_exp


def _normalise(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    top = float(np.abs(matrix).max())
    if top == 0.0 or not math.isfinite(top):
        return matrix, 0
    shift = math.frexp(top)[1]
    return np.ldexp(matrix, -shift), shift


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n**n)."""
    return math.lgamma(n + 1.0) - n * math.log(n)


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))
