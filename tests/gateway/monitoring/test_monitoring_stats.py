from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from gateway.monitoring import stats
from gateway.monitoring.kolmogorov import kolmogorov_sf, smirnov_sf
from gateway.monitoring.special_functions import chi2_sf, gammaincc


def test_bins_are_searchsorted_right_with_open_outer_bins() -> None:
    edges = np.array([1.0, 2.0, 3.0])
    x = np.array([-np.inf, -1e9, 0.5, 1.0, 1.5, 2.0, 2.999, 3.0, 1e9, np.inf])
    assert stats.bin_index(edges, x).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_values_outside_the_reference_range_are_counted() -> None:
    reference = np.linspace(0.0, 1.0, 1001)
    edges = stats.quantile_edges(reference)
    props = stats.proportions(edges, np.array([-5.0, 0.5, 7.0, 9.0]))
    assert props[0] == 0.25 and props[-1] == 0.5 and props.sum() == 1.0
    # all the window far above the training range: a huge PSI, never a silent zero
    assert stats.psi_reference(reference, reference + 100.0) > 5.0


def test_nan_goes_in_no_bin_and_is_reported_missing() -> None:
    edges = np.array([0.0])
    counts, missing = stats.bin_counts(edges, np.array([-1.0, np.nan, 1.0, np.nan, 2.0]))
    assert counts.tolist() == [1, 2] and missing == 2
    assert np.isnan(stats.proportions(edges, np.array([np.nan]))).all()
    assert math.isnan(stats.psi([0.5, 0.5], stats.proportions(edges, np.array([np.nan]))))


def test_quantile_edges_are_deduplicated_and_strictly_increasing() -> None:
    discrete = np.repeat([0.0, 1.0, 5.0], [700, 200, 100])
    edges = stats.quantile_edges(discrete)
    # six of the nine deciles are 0.0: one edge for them, then the interpolated ones
    assert edges[0] == 0.0 and len(edges) == 4 and np.all(np.diff(edges) > 0)
    assert stats.quantile_edges(np.full(50, 3.0)).tolist() == [3.0]
    assert stats.quantile_edges(np.array([np.nan])).size == 0
    with pytest.raises(ValueError, match="bins"):
        stats.quantile_edges(discrete, 0)


def test_psi_matches_hand_computation_with_empty_bin_epsilon() -> None:
    expected = np.array([0.5, 0.5, 0.0])
    actual = np.array([0.5, 0.25, 0.25])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    assert stats.psi(expected, actual) == pytest.approx(by_hand, rel=1e-12)
    assert stats.psi(expected, expected) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        stats.psi([0.5, 0.5], [1.0])


def test_psi_reference_agrees_with_the_guide_inside_the_training_range() -> None:
    # with every value inside the reference range both definitions see the same bins
    rng = np.random.default_rng(3)
    reference = rng.normal(size=10_000)
    actual = np.clip(rng.normal(0.3, 1.0, 1000), reference.min() + 1e-9, reference.max() - 1e-9)
    ours = stats.psi_reference(reference, actual)
    breakpoints = np.percentile(reference, np.linspace(0, 100, 11))
    e = np.histogram(reference, breakpoints)[0] / reference.size
    a = np.histogram(actual, breakpoints)[0] / actual.size
    guide = np.sum((a - e) * np.log(a / e))
    assert ours == pytest.approx(guide, abs=2e-3)


def test_entropy_matches_scipy() -> None:
    counts = np.array([10, 0, 5, 85])
    assert stats.entropy(counts) == pytest.approx(scipy.stats.entropy(counts), rel=1e-12)
    assert stats.entropy(np.zeros(3)) == 0.0
    assert stats.entropy(np.array([7])) == 0.0


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (1, 3, 0.0),
        (5, 7, 0.0),
        (50, 80, 0.4),
        (139, 141, 0.1),
        (200, 5000, 0.0),
        (1000, 5000, 0.05),
        (1000, 5000, 0.5),
        (5000, 10_000, 0.02),
        (3000, 3000, 0.0),
        (10, 10_000, 1.0),
    ],
)
def test_ks_2samp_matches_scipy_asymp(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 * 7 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(shift, 1.0, size=n2)
    ref = scipy.stats.ks_2samp(a, b, method="asymp")
    stat, pvalue = stats.ks_2samp(a, b)
    assert stat == pytest.approx(ref.statistic, abs=1e-12)
    assert pvalue == pytest.approx(ref.pvalue, abs=1e-6)


def test_ks_2samp_with_ties_and_nan() -> None:
    rng = np.random.default_rng(11)
    a = rng.integers(0, 5, 400).astype(float)
    b = rng.integers(0, 6, 900).astype(float)
    ref = scipy.stats.ks_2samp(a, b, method="asymp")
    stat, pvalue = stats.ks_2samp(np.append(a, np.nan), b)
    assert stat == pytest.approx(ref.statistic, abs=1e-12)
    assert pvalue == pytest.approx(ref.pvalue, abs=1e-6)
    with pytest.raises(ValueError, match="non-NaN"):
        stats.ks_2samp(np.array([np.nan]), b)
    # scipy's effective size rounds to 0 here (NaN p-value); ours is clamped to 1
    assert stats.ks_2samp(np.array([0.0]), np.array([1.0])) == (1.0, 0.0)


def _kolmogorov_grid() -> list[tuple[int, float]]:
    points = []
    for n in (1, 2, 5, 20, 100, 140, 141, 300, 1000, 5000, 20_000, 120_000):
        root = 1.0 / math.sqrt(n)
        for d in (0.3 / n, 0.7 / n, 1.5 / n, 0.2 * root, 0.5 * root, 0.9 * root, 1.3 * root,
                  1.6 * root, 2.5 * root, 0.45, 0.6, 1.0 - 0.5 / n):  # fmt: skip
            if 0.0 < d < 1.0:
                points.append((n, d))
    return points


def test_kolmogorov_sf_matches_scipy_kstwo_in_every_regime() -> None:
    worst = max(
        abs(kolmogorov_sf(n, d) - scipy.stats.kstwo.sf(d, n)) for n, d in _kolmogorov_grid()
    )
    assert worst < 1e-9
    assert kolmogorov_sf(10, 0.0) == 1.0 and kolmogorov_sf(10, 1.0) == 0.0
    with pytest.raises(ValueError):
        kolmogorov_sf(0, 0.1)


def test_smirnov_sf_matches_scipy_special() -> None:
    for n, d in [(1, 0.3), (7, 0.2), (60, 0.05), (500, 0.08), (3000, 0.04), (40_000, 0.012)]:
        assert smirnov_sf(n, d) == pytest.approx(scipy.special.smirnov(n, d), rel=1e-9)


def test_chi2_sf_matches_scipy_to_1e9_relative() -> None:
    rng = np.random.default_rng(5)
    for dof in (1, 2, 3, 4, 7, 10, 29, 100, 999, 5000):
        xs = np.concatenate((rng.uniform(0, 4 * dof + 40, 60), [1e-9, dof, dof + 1.0, 30 * dof]))
        for x in xs:
            expected = scipy.stats.chi2.sf(x, dof)
            if expected > 1e-290:
                assert chi2_sf(float(x), dof) == pytest.approx(expected, rel=1e-9), (x, dof)
    assert chi2_sf(0.0, 3) == 1.0
    assert gammaincc(2.5, math.inf) == 0.0
    with pytest.raises(ValueError):
        gammaincc(0.0, 1.0)
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)


def test_chi2_test_matches_scipy_chisquare() -> None:
    freqs = np.array([0.5, 0.3, 0.2])
    observed = np.array([480, 330, 190])
    stat, pvalue, dof = stats.chi2_test(freqs, observed)
    ref = scipy.stats.chisquare(observed, freqs * observed.sum())
    assert (stat, dof) == (pytest.approx(ref.statistic, rel=1e-12), 2)
    assert pvalue == pytest.approx(ref.pvalue, rel=1e-9)


def test_chi2_test_gives_unseen_categories_a_pseudo_frequency() -> None:
    # the window's "other" slot: zero in the reference, observed here
    freqs = np.array([0.6, 0.4, 0.0])
    observed = np.array([300, 190, 10])
    stat, pvalue, dof = stats.chi2_test(freqs, observed)
    pseudo = np.array([0.6, 0.4, 1e-4]) / 1.0001
    ref = scipy.stats.chisquare(observed, pseudo * observed.sum())
    assert dof == 2 and math.isfinite(stat)
    assert stat == pytest.approx(ref.statistic, rel=1e-12)
    assert pvalue < 1e-12
    # zero in the reference and never observed: no information, no degree of freedom
    stat, pvalue, dof = stats.chi2_test(freqs, np.array([300, 200, 0]))
    ref = scipy.stats.chisquare([300, 200], [300, 200])
    assert dof == 1 and stat == pytest.approx(ref.statistic) and pvalue == pytest.approx(1.0)


def test_chi2_test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shapes"):
        stats.chi2_test(np.array([0.5, 0.5]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="non-negative"):
        stats.chi2_test(np.array([0.5, 0.5]), np.array([-1, 2]))
    assert stats.chi2_test(np.array([1.0]), np.array([10])) == (0.0, 1.0, 0)
