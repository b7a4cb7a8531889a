"""Sufficient statistics, Welch and two-proportion intervals, and the SRM check vs scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from gateway.experiments.stats.srm import srm_test
from gateway.experiments.stats.sufficient import (
    Moments,
    proportion_difference,
    welch_difference,
    z_difference,
)


def test_moments_merged_across_workers_equal_the_moments_of_all_rows():
    rng = np.random.default_rng(7)
    rows = rng.lognormal(3.0, 1.0, 10_001)
    shards = np.array_split(rows, 4)  # four workers, unequal shares
    merged = Moments()
    for shard in shards:
        merged = merged.merge(Moments.of(shard))
    assert merged.count == rows.size
    assert merged.mean == pytest.approx(rows.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(rows.var(ddof=1), rel=1e-9)
    assert math.isnan(Moments().mean) and math.isnan(Moments.of([1.0]).variance)
    with pytest.raises(ValueError, match="finite"):
        Moments.of([1.0, math.nan])


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_welch_interval_and_p_value_equal_scipy(alpha):
    rng = np.random.default_rng(11)
    treatment = rng.normal(10.4, 3.0, 37)
    control = rng.normal(10.0, 1.2, 120)
    got = welch_difference(Moments.of(treatment), Moments.of(control), alpha)
    ref = stats.ttest_ind(treatment, control, equal_var=False)
    ci = ref.confidence_interval(1 - alpha)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert got.lower == pytest.approx(ci.low, rel=1e-9)
    assert got.upper == pytest.approx(ci.high, rel=1e-9)
    assert got.dof == pytest.approx(ref.df, rel=1e-9)
    assert got.estimate == pytest.approx(treatment.mean() - control.mean(), rel=1e-12)


def test_z_difference_is_welch_with_a_normal_quantile():
    rng = np.random.default_rng(3)
    t, c = Moments.of(rng.normal(1.0, 1.0, 5000)), Moments.of(rng.normal(0.9, 2.0, 4000))
    z = z_difference(t, c, 0.05)
    welch = welch_difference(t, c, 0.05)
    assert z.std_error == pytest.approx(welch.std_error)
    assert (z.upper - z.lower) < (welch.upper - welch.lower)  # z is the narrower
    assert (z.upper - z.lower) / 2 == pytest.approx(stats.norm.ppf(0.975) * z.std_error)


def test_no_spread_in_either_variant_gives_an_exact_difference():
    got = welch_difference(Moments.of([2.0] * 5), Moments.of([1.0] * 5))
    assert (got.estimate, got.lower, got.upper, got.p_value) == (1.0, 1.0, 1.0, 0.0)


def test_proportion_difference_equals_statsmodels():
    treatment, control = Moments(2400, 290.0, 290.0), Moments(2500, 250.0, 250.0)
    got = proportion_difference(treatment, control, 0.05)
    low, high = confint_proportions_2indep(
        290, 2400, 250, 2500, method="wald", compare="diff", alpha=0.05
    )
    _, p = proportions_ztest([290, 250], [2400, 2500])
    assert got.lower == pytest.approx(low, rel=1e-9)
    assert got.upper == pytest.approx(high, rel=1e-9)
    assert got.p_value == pytest.approx(p, rel=1e-9)
    assert got.estimate == pytest.approx(290 / 2400 - 0.1)
    with pytest.raises(ValueError, match="0 or 1"):
        proportion_difference(Moments(3, 7.0, 20.0), control)


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ({"a": 5030, "b": 4970}, {"a": 1, "b": 1}),
        ({"a": 9120, "b": 880}, {"a": 90, "b": 10}),
        ({"a": 5300, "b": 4700}, {"a": 50, "b": 50}),
        ({"a": 3100, "b": 3300, "c": 3600}, {"a": 1, "b": 1, "c": 1}),
    ],
)
def test_srm_p_value_equals_scipy_chisquare(counts, weights):
    got = srm_test(counts, weights)
    total, wsum = sum(counts.values()), sum(weights.values())
    expected = [total * weights[v] / wsum for v in weights]
    ref = stats.chisquare([counts[v] for v in weights], expected)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert got.mismatch == (ref.pvalue < 0.001)


def test_a_skewed_assignment_trips_srm_and_a_fair_one_does_not():
    rng = np.random.default_rng(5)
    fair = rng.binomial(20_000, 0.5)
    assert not srm_test({"a": fair, "b": 20_000 - fair}, {"a": 1, "b": 1}).mismatch
    # a 51.5/48.5 split of 20,000 users configured as 50/50 (e.g. a bot hitting one arm)
    skewed = rng.binomial(20_000, 0.515)
    result = srm_test({"a": skewed, "b": 20_000 - skewed}, {"a": 1, "b": 1})
    assert result.mismatch and result.p_value < 0.001
    # rows in a variant configured at weight 0 are a mismatch whatever the size
    assert srm_test({"a": 100, "b": 1, "c": 99}, {"a": 1, "b": 0, "c": 1}).mismatch


def test_srm_refuses_counts_it_cannot_judge():
    assert srm_test({}, {"a": 1, "b": 1}).p_value == 1.0
    with pytest.raises(ValueError, match="without a weight"):
        srm_test({"a": 1, "z": 2}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="at least two"):
        srm_test({"a": 1}, {"a": 1})
