"""Pure drift statistics over numpy arrays: binning, PSI, KS, chi-squared, entropy.

No I/O, no globals, no scipy: serving must not need it. The semantics are the contract of
docs/contracts.md ("Statistics semantics" and "Reference distributions"):

* bin edges are the reference's quantiles at 1/bins .. (bins-1)/bins, deduplicated;
* bin ``i`` holds ``edges[i-1] <= x < edges[i]``, the outer bins are open to -inf/+inf, so
  values outside the training range are counted (``np.searchsorted(edges, x, "right")``);
* NaN is counted in no bin (reported as missing by the callers);
* an empty bin counts as ``eps = 1e-4`` on either side of the PSI sum.

``psi_reference`` is the plain numpy implementation the numba kernels are tested against.
"""

from __future__ import annotations

import math

import numpy as np

from gateway.monitoring.kolmogorov import kolmogorov_sf
from gateway.monitoring.special_functions import chi2_sf

PSI_EPS = 1e-4
# Frequency given to a category the reference never saw (before renormalising), so the
# chi-squared term stays finite: it then dominates the statistic, which is the right answer.
UNSEEN_CATEGORY_FREQUENCY = 1e-4


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner cut points: the quantiles at 1/bins .. (bins-1)/bins, deduplicated."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    if finite.size == 0 or bins == 1:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def bin_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin of every value: ``searchsorted(edges, x, side="right")`` (NaN lands past the end)."""
    return np.searchsorted(edges, x, side="right")


def bin_counts(edges: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Counts per bin (``len(edges) + 1`` of them) and the number of NaN values skipped."""
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    counts = np.bincount(bin_index(edges, x[~nan]), minlength=len(edges) + 1)
    return counts.astype(np.int64), int(nan.sum())


def proportions(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the non-NaN values in every bin; all NaN when there is no such value."""
    counts, _ = bin_counts(edges, x)
    total = counts.sum()
    if total == 0:
        return np.full(len(edges) + 1, np.nan)
    return counts / total


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population Stability Index of two proportion vectors (empty bins count as ``eps``)."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"proportion shapes differ: {expected.shape} vs {actual.shape}")
    e = np.where(expected == 0, eps, expected)
    a = np.where(actual == 0, eps, actual)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_reference(reference_values: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI with our semantics, recomputed from scratch (quantile edges, open outer bins)."""
    edges = quantile_edges(reference_values, bins)
    return psi(proportions(edges, reference_values), proportions(edges, actual))


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy in nats of a count (or proportion) vector; 0 for an empty one."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-np.sum(p * np.log(p)))


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic and p-value.

    The p-value is scipy's ``method="asymp"``: the one-sample Kolmogorov distribution of
    ``D`` at the effective size ``round(n1 * n2 / (n1 + n2))`` (at least 1; scipy returns
    NaN when it rounds to 0, i.e. for two single values). NaN values are dropped.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a[~np.isnan(a)]
    b = b[~np.isnan(b)]
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise ValueError("ks_2samp needs at least one non-NaN value in each sample")
    # one merge instead of scipy's two searchsorted passes: the empirical CDFs are running
    # counts, read at the last position of every run of equal values
    both = np.concatenate((a, b))
    order = np.argsort(both, kind="stable")
    from_a = order < n1
    values = both[order]
    last = np.empty(values.size, dtype=bool)
    last[-1] = True
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    diff = np.cumsum(from_a)[last] / n1 - np.cumsum(~from_a)[last] / n2
    d = float(max(np.clip(-diff.min(), 0.0, 1.0), diff.max()))
    big, small = max(n1, n2), min(n1, n2)
    effective_n = max(1, round(big * small / (big + small)))
    return d, float(np.clip(kolmogorov_sf(effective_n, d), 0.0, 1.0))


def chi2_test(
    expected_freqs: np.ndarray,
    observed_counts: np.ndarray,
    unseen_frequency: float = UNSEEN_CATEGORY_FREQUENCY,
) -> tuple[float, float, int]:
    """Chi-squared goodness of fit of observed category counts to reference frequencies.

    Categories with a zero reference frequency and no observation carry no information and
    are dropped; those with a zero frequency but observations get ``unseen_frequency``
    before the frequencies are renormalised to sum 1. Returns (statistic, p-value, dof).
    """
    freqs = np.asarray(expected_freqs, dtype=np.float64)
    observed = np.asarray(observed_counts, dtype=np.float64)
    if freqs.shape != observed.shape or freqs.ndim != 1:
        raise ValueError(f"frequency and count shapes differ: {freqs.shape} vs {observed.shape}")
    if np.any(freqs < 0) or np.any(observed < 0):
        raise ValueError("frequencies and counts must be non-negative")
    keep = (freqs > 0) | (observed > 0)
    freqs, observed = freqs[keep], observed[keep]
    dof = freqs.size - 1
    total = observed.sum()
    if dof < 1 or total == 0:
        return 0.0, 1.0, max(dof, 0)
    freqs = np.where(freqs == 0, unseen_frequency, freqs)
    expected = freqs / freqs.sum() * total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, dof), dof


def percentile_ms(latency_s: np.ndarray, q: float) -> float:
    """Percentile of latencies given in seconds, in milliseconds (NaN when empty)."""
    if latency_s.size == 0:
        return math.nan
    return float(np.percentile(latency_s, q) * 1000.0)
