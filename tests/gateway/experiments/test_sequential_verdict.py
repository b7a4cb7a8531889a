"""The always-valid test and the per-metric verdict: unit cases and simulated experiments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.experiments.stats.plan import MinimumEffect, sample_size_binary, sample_size_continuous
from gateway.experiments.stats.sequential import SequentialState, fixed_horizon, msprt_update
from gateway.experiments.stats.srm import srm_test
from gateway.experiments.stats.sufficient import Moments
from gateway.experiments.stats.verdict import (
    Decision,
    Design,
    MetricSpec,
    MetricState,
    decide,
    evaluate,
    update_metric,
)

WEIGHTS = {"control": 1.0, "candidate": 1.0}


def prefix_moments(values: np.ndarray, ends: range) -> list[Moments]:
    """The cumulative moments after each batch, as a shell would hold them."""
    sums, squares = np.cumsum(values), np.cumsum(values * values)
    return [Moments(end, float(sums[end - 1]), float(squares[end - 1])) for end in ends]


def first_decision(
    design: Design, spec: MetricSpec, control: np.ndarray, candidate: np.ndarray, batch: int
) -> Decision:
    """Look after every batch; the first decision other than "continue" (or the last one)."""
    ends = range(batch, control.size + 1, batch)
    state = MetricState()
    for end, mc, mt in zip(
        ends, prefix_moments(control, ends), prefix_moments(candidate, ends), strict=True
    ):
        states, decisions = evaluate(
            design,
            {spec.name: spec},
            {spec.name: state},
            {spec.name: {"control": mc, "candidate": mt}},
            {"control": end, "candidate": end},
        )
        state, decision = states[spec.name], decisions[spec.name]
        if decision.outcome != "continue":
            return decision
    return decision


# --- the mSPRT itself -------------------------------------------------------------------


def test_msprt_p_value_and_confidence_sequence_agree_and_only_tighten():
    rng = np.random.default_rng(21)
    control, candidate = rng.normal(0.0, 1.0, 5000), rng.normal(0.15, 1.0, 5000)
    ends = range(250, 5001, 250)
    state = SequentialState()
    for mc, mt in zip(prefix_moments(control, ends), prefix_moments(candidate, ends), strict=True):
        before = state
        state = msprt_update(state, mt, mc, tau=0.1, alpha=0.05)
        assert state.p_value <= before.p_value
        assert state.lower >= before.lower and state.upper <= before.upper
        assert state.lower <= state.upper
    assert state.looks == 20
    assert state.p_value < 0.05 and state.lower > 0.0  # a true 0.15 effect is found
    # the sequence is wider than the fixed-horizon interval at the same rows: the price paid
    # for being allowed to look after every batch
    final = fixed_horizon(mt, mc, planned_n=5000, alpha=0.05)
    assert final is not None
    assert state.upper - state.lower > final.upper - final.lower


def test_msprt_waits_for_rows_and_for_spread():
    few = msprt_update(
        SequentialState(), Moments.of([1.0] * 50), Moments.of([0.0] * 50), tau=1, alpha=0.05
    )
    assert few.looks == 1 and few.p_value == 1.0 and math.isinf(few.lower)
    flat = msprt_update(
        SequentialState(), Moments.of([0.0] * 200), Moments.of([0.0] * 200), tau=1, alpha=0.05
    )
    assert flat.p_value == 1.0 and flat.estimate == 0.0
    with pytest.raises(ValueError, match="tau"):
        msprt_update(SequentialState(), Moments(), Moments(), tau=0.0, alpha=0.05)


def test_fixed_horizon_waits_for_the_planned_rows_in_both_variants():
    big, small = Moments.of(np.arange(1000.0)), Moments.of(np.arange(999.0))
    assert fixed_horizon(big, small, planned_n=1000, alpha=0.05) is None
    assert fixed_horizon(big, big, planned_n=1000, alpha=0.05) is not None


# --- decisions on fixed numbers -----------------------------------------------------------


def design(planned_n: int = 1000) -> Design:
    return Design("control", "candidate", WEIGHTS, planned_n)


def test_design_refuses_inconsistent_settings():
    with pytest.raises(ValueError, match="different"):
        Design("a", "a", {"a": 1}, 10)
    with pytest.raises(ValueError, match="exactly"):
        Design("a", "b", {"a": 1, "b": 1, "c": 1}, 10)
    with pytest.raises(ValueError, match="sequential_alpha"):
        Design("a", "b", {"a": 1, "b": 1}, 10, alpha=0.05, sequential_alpha=0.05)
    with pytest.raises(ValueError, match="srm_threshold"):
        Design("a", "b", {"a": 1, "b": 1}, 10, srm_threshold=0.0)
    with pytest.raises(ValueError, match="tau"):
        MetricSpec("m", tau=-1.0)
    assert design().fixed_alpha == pytest.approx(0.04)


def test_a_clearly_better_candidate_wins_and_lower_is_better_flips_the_winner():
    rng = np.random.default_rng(4)
    control, candidate = Moments.of(rng.normal(10, 2, 800)), Moments.of(rng.normal(11, 2, 800))
    moments = {"control": control, "candidate": candidate}
    fair = srm_test({"control": 800, "candidate": 800}, WEIGHTS)
    for higher_is_better, winner in ((True, "candidate"), (False, "control")):
        spec = MetricSpec("m", tau=0.5, higher_is_better=higher_is_better)
        state = update_metric(design(), spec, MetricState(), moments)
        decision = decide(design(), spec, state, fair)
        assert (decision.outcome, decision.winner) == ("winner", winner)
        assert decision.lower > 0.0 and decision.p_value < 0.01


def test_srm_blocks_even_a_clear_winner():
    rng = np.random.default_rng(4)
    moments = {
        "control": Moments.of(rng.normal(10, 2, 800)),
        "candidate": Moments.of(rng.normal(11, 2, 800)),
    }
    spec = MetricSpec("m", tau=0.5)
    _, decisions = evaluate(
        design(), {"m": spec}, {}, {"m": moments}, {"control": 1000, "candidate": 800}
    )
    assert decisions["m"].outcome == "blocked_srm" and decisions["m"].winner is None
    assert decisions["m"].srm.p_value < 0.001


def test_the_fixed_horizon_result_is_frozen_at_the_planned_size():
    spec = MetricSpec("m", tau=0.5)
    rng = np.random.default_rng(8)
    control, candidate = rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)
    at_plan = update_metric(
        design(1000),
        spec,
        MetricState(),
        {"control": Moments.of(control[:1000]), "candidate": Moments.of(candidate[:1000])},
    )
    later = update_metric(
        design(1000),
        spec,
        at_plan,
        {"control": Moments.of(control), "candidate": Moments.of(candidate)},
    )
    assert at_plan.final is not None and later.final is at_plan.final
    decision = decide(design(1000), spec, later, srm_test({"control": 1, "candidate": 1}, WEIGHTS))
    assert decision.outcome == "no_detectable_difference"
    assert decision.fixed is not None and decision.fixed.lower < 0 < decision.fixed.upper


def test_guardrail_breaches_only_beyond_its_tolerance():
    rng = np.random.default_rng(9)
    fair = srm_test({"control": 2000, "candidate": 2000}, WEIGHTS)
    control = Moments.of(rng.normal(100, 10, 2000))  # latency in ms, lower is better
    for shift, tolerance, outcome in [
        (5.0, 1.0, "guardrail_breach"),  # 5 ms slower, 1 ms allowed
        (5.0, 10.0, "guardrail_holds"),  # 5 ms slower, 10 ms allowed
        (-5.0, 1.0, "guardrail_holds"),  # faster is never a breach
    ]:
        spec = MetricSpec(
            "latency", tau=1.0, role="guardrail", higher_is_better=False, tolerance=tolerance
        )
        candidate = Moments.of(rng.normal(100 + shift, 10, 2000))
        state = update_metric(
            design(2000), spec, MetricState(), {"control": control, "candidate": candidate}
        )
        assert decide(design(2000), spec, state, fair).outcome == outcome


# --- simulated experiments ----------------------------------------------------------------

ALPHA = 0.05


def continuous_setup() -> tuple[Design, MetricSpec, float]:
    plan = sample_size_continuous(10.0, 4.0, MinimumEffect(0.05, "relative"), alpha=0.04)
    spec = MetricSpec("revenue", tau=plan.delta)
    return Design("control", "candidate", WEIGHTS, plan.n_per_variant), spec, plan.delta


def binary_setup() -> tuple[Design, MetricSpec, float]:
    plan = sample_size_binary(0.10, MinimumEffect(0.2, "relative"), alpha=0.04)
    spec = MetricSpec("conversion", tau=plan.delta)
    return Design("control", "candidate", WEIGHTS, plan.n_per_variant), spec, plan.delta


def draw(rng: np.random.Generator, kind: str, size: int, shift: float) -> np.ndarray:
    if kind == "binary":
        return (rng.random(size) < 0.10 + shift).astype(np.float64)
    return rng.normal(10.0 + shift, 4.0, size)


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_power_a_planned_effect_wins_within_the_planned_sample(kind):
    design_, spec, delta = continuous_setup() if kind == "continuous" else binary_setup()
    rng = np.random.default_rng(2026)
    reps, batch, n = 200, design_.planned_n // 20, design_.planned_n
    outcomes = []
    for _ in range(reps):
        size = math.ceil(n / batch) * batch  # the last look holds at least the planned rows
        control, candidate = draw(rng, kind, size, 0.0), draw(rng, kind, size, delta)
        decision = first_decision(design_, spec, control, candidate, batch)
        outcomes.append((decision.outcome, decision.winner))
    right = outcomes.count(("winner", "candidate")) / reps
    assert right >= 0.8 - 0.05, right
    assert ("winner", "control") not in outcomes  # never the wrong direction here


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_aa_the_always_valid_test_peeked_after_every_batch_keeps_alpha(kind):
    design_, spec, _ = continuous_setup() if kind == "continuous" else binary_setup()
    rng = np.random.default_rng(77)
    reps, batch = 400, design_.planned_n // 20
    size = 3 * design_.planned_n  # run well past the plan: 60 looks
    ends = range(batch, size + 1, batch)
    false_positives = 0
    for _ in range(reps):
        control, candidate = draw(rng, kind, size, 0.0), draw(rng, kind, size, 0.0)
        state = SequentialState()
        for mc, mt in zip(
            prefix_moments(control, ends), prefix_moments(candidate, ends), strict=True
        ):
            state = msprt_update(state, mt, mc, tau=spec.tau, alpha=ALPHA)
        false_positives += state.p_value <= ALPHA or state.excludes_zero()
    assert false_positives / reps <= ALPHA


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_aa_the_full_verdict_checked_after_every_batch_declares_few_winners(kind):
    # early stops at sequential_alpha plus the one fixed-horizon test: <= alpha in total
    design_, spec, _ = continuous_setup() if kind == "continuous" else binary_setup()
    rng = np.random.default_rng(99)
    reps, batch = 1000, design_.planned_n // 20
    size = math.ceil(design_.planned_n / batch) * batch
    winners = 0
    for _ in range(reps):
        control, candidate = draw(rng, kind, size, 0.0), draw(rng, kind, size, 0.0)
        winners += first_decision(design_, spec, control, candidate, batch).outcome == "winner"
    assert winners / reps <= ALPHA
