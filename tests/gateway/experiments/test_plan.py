"""Sample sizes, durations and the normal quantile, against scipy and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, tt_ind_solve_power, zt_ind_solve_power

from gateway.experiments.stats.distributions import betainc, norm_ppf, t_isf, t_sf
from gateway.experiments.stats.plan import (
    MinimumEffect,
    duration_days,
    parse_mde,
    sample_size_binary,
    sample_size_continuous,
)


def test_norm_ppf_matches_scipy_to_1e9_over_the_whole_range():
    ps = np.concatenate(
        [
            np.linspace(1e-6, 1 - 1e-6, 20_001),
            np.logspace(-300, -7, 200),
            [0.02425, 0.02425 + 1e-12, 0.5, 0.975, 0.995, 1 - 1e-10],
        ]
    )
    worst = max(abs(norm_ppf(float(p)) - stats.norm.ppf(p)) for p in ps)
    assert worst < 1e-9


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_norm_ppf_refuses_probabilities_outside_the_open_interval(p):
    with pytest.raises(ValueError, match="0 < p < 1"):
        norm_ppf(p)


@pytest.mark.parametrize("df", [1.0, 2.0, 3.5, 9.0, 41.7, 400.0, 25_000.0])
def test_student_t_tail_and_quantile_match_scipy(df):
    for x in (-30.0, -2.0, -0.1, 0.0, 0.7, 1.96, 8.0, 250.0):
        assert t_sf(x, df) == pytest.approx(stats.t.sf(x, df), rel=1e-9, abs=1e-15)
    for q in (1e-9, 1e-4, 0.005, 0.025, 0.05, 0.2, 0.5, 0.8, 0.975):
        assert t_isf(q, df) == pytest.approx(stats.t.isf(q, df), rel=1e-9, abs=1e-12)


def test_incomplete_beta_matches_scipy():
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (30.0, 0.5, 0.99), (1e-3, 4.0, 1e-5)]:
        assert betainc(a, b, x) == pytest.approx(stats.beta.cdf(x, a, b), rel=1e-10)


@pytest.mark.parametrize(
    ("baseline", "mde", "alpha", "power"),
    [
        (0.10, {"mde": 0.05, "mde_kind": "relative"}, 0.05, 0.8),
        (0.10, {"mde": 0.10, "mde_kind": "relative"}, 0.05, 0.8),
        (0.02, {"mde": 0.2, "mde_kind": "relative"}, 0.01, 0.9),
        (0.50, {"mde": 0.01, "mde_kind": "absolute"}, 0.05, 0.8),
        (0.90, {"mde": 0.05, "mde_kind": "absolute"}, 0.10, 0.95),  # 0.95 > 1: plans 0.85
        (0.30, {"mde": -0.03, "mde_kind": "absolute"}, 0.04, 0.8),
    ],
)
def test_binary_sample_size_agrees_with_statsmodels_within_one_row(baseline, mde, alpha, power):
    plan = sample_size_binary(baseline, parse_mde(mde), alpha=alpha, power=power)
    treated = baseline + plan.delta if baseline + plan.delta < 1 else baseline - plan.delta
    pooled = (baseline + treated) / 2
    effect_size = abs(treated - baseline) / math.sqrt(pooled * (1 - pooled))
    reference = NormalIndPower().solve_power(effect_size, alpha=alpha, power=power, ratio=1.0)
    assert abs(plan.n_per_variant - math.ceil(reference)) <= 1
    assert plan.metric_kind == "binary" and plan.alpha == alpha and plan.power == power


def test_known_textbook_binary_size():
    # 10 % -> 11 % at alpha 0.05, power 0.8: about 14,750 per variant with the pooled variance
    plan = sample_size_binary(0.10, MinimumEffect(0.01, "absolute"))
    assert 14_700 <= plan.n_per_variant <= 14_800
    assert plan.delta == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("mean", "sd", "mde", "alpha", "power"),
    [
        (50.0, 20.0, {"mde": 0.02, "mde_kind": "relative"}, 0.05, 0.8),
        (50.0, 20.0, {"mde": 5.0, "mde_kind": "absolute"}, 0.05, 0.8),
        (0.0, 1.0, {"mde": 0.1, "mde_kind": "absolute"}, 0.01, 0.9),
        (3.2, 0.4, {"mde": -0.05, "mde_kind": "relative"}, 0.04, 0.85),
    ],
)
def test_continuous_sample_size_agrees_with_statsmodels(mean, sd, mde, alpha, power):
    plan = sample_size_continuous(mean, sd, parse_mde(mde), alpha=alpha, power=power)
    effect_size = plan.delta / sd
    z_reference = zt_ind_solve_power(effect_size, alpha=alpha, power=power, ratio=1.0)
    assert abs(plan.n_per_variant - math.ceil(z_reference)) <= 1
    # the t-test needs a little more (its quantile is wider); the z plan is the floor of it
    t_reference = tt_ind_solve_power(effect_size, alpha=alpha, power=power, ratio=1.0)
    assert plan.n_per_variant <= math.ceil(t_reference) <= plan.n_per_variant + 3


def test_mde_defaults_to_relative_and_bad_specs_are_refused():
    assert parse_mde({"mde": 0.05}) == MinimumEffect(0.05, "relative")
    assert parse_mde({"mde": 2, "mde_kind": "absolute"}) == MinimumEffect(2.0, "absolute")
    for bad, message in [
        ({}, "minimum detectable effect"),
        ({"mde": "5%"}, "must be a number"),
        ({"mde": True}, "must be a number"),
        ({"mde": 0}, "non-zero"),
        ({"mde": math.inf}, "finite"),
        ({"mde": 0.1, "mde_kind": "percent"}, "mde_kind"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_mde(bad)


def test_plans_refuse_impossible_inputs():
    with pytest.raises(ValueError, match="baseline_rate"):
        sample_size_binary(1.0, MinimumEffect(0.1, "relative"))
    with pytest.raises(ValueError, match="outside"):
        sample_size_binary(0.5, MinimumEffect(0.6, "absolute"))
    with pytest.raises(ValueError, match="alpha"):
        sample_size_binary(0.1, MinimumEffect(0.1, "relative"), alpha=0.0)
    with pytest.raises(ValueError, match="baseline_sd"):
        sample_size_continuous(1.0, 0.0, MinimumEffect(0.1, "relative"))
    with pytest.raises(ValueError, match="state it absolute"):
        sample_size_continuous(0.0, 1.0, MinimumEffect(0.1, "relative"))


def test_duration_is_set_by_the_lightest_variant():
    assert duration_days(10_000, 2_000, {"a": 1, "b": 1}) == pytest.approx(10.0)
    # 90/10: the candidate gets 200 rows a day and needs 50 days
    assert duration_days(10_000, 2_000, {"champion": 90, "candidate": 10}) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="positive share"):
        duration_days(10, 100, {"a": 1, "b": 0})
    with pytest.raises(ValueError, match="traffic_per_day"):
        duration_days(10, 0, {"a": 1, "b": 1})
