"""Always-valid inference for a difference of means: mSPRT with a normal mixture.

After Johari, Pekelis and Walsh, "Always Valid Inference" (the formulation Optimizely and Eppo
use). With ``theta`` = mean(treatment) - mean(control), its variance
``V = s_t^2 / n_t + s_c^2 / n_c`` and a N(0, tau^2) mixing distribution over the effect,
the mixture likelihood ratio against theta = 0 is

    Lambda = sqrt(V / (V + tau^2)) * exp(theta^2 tau^2 / (2 V (V + tau^2)))

The always-valid p-value is the running minimum of ``min(1, 1 / Lambda)``; the confidence
sequence is the running intersection of

    theta +- sqrt(V (V + tau^2) / tau^2 * (2 ln(1 / alpha) + ln((V + tau^2) / V)))

so "p <= alpha" and "the sequence excludes 0" agree. Both may be read after every batch of
outcomes: the chance that either EVER shows a difference under the null stays <= alpha.
``fixed_horizon`` is the classical z-test, valid once, at the planned sample size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from gateway.experiments.stats.sufficient import Difference, Moments, z_difference

MIN_ROWS = 100  # per variant before the first look: the plug-in variance needs rows


@dataclass(frozen=True, slots=True)
class SequentialState:
    """What the always-valid test has established so far (fold it over the looks)."""

    looks: int = 0
    p_value: float = 1.0
    lower: float = -math.inf
    upper: float = math.inf
    estimate: float = math.nan  # the latest difference of means

    def excludes_zero(self) -> bool:
        return self.lower > 0.0 or self.upper < 0.0


def msprt_update(
    state: SequentialState,
    treatment: Moments,
    control: Moments,
    *,
    tau: float,
    alpha: float,
    min_rows: int = MIN_ROWS,
) -> SequentialState:
    """The state after one more look at the cumulative moments of both variants."""
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"the mixture scale tau must be positive, got {tau}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if treatment.count < max(2, min_rows) or control.count < max(2, min_rows):
        return replace(state, looks=state.looks + 1)
    variance = treatment.variance / treatment.count + control.variance / control.count
    theta = treatment.mean - control.mean
    if variance <= 0.0:  # no spread yet (e.g. a rare binary outcome): nothing to test
        return replace(state, looks=state.looks + 1, estimate=theta)
    tau2 = tau * tau
    widened = variance + tau2
    log_lr = 0.5 * math.log(variance / widened) + theta * theta * tau2 / (2.0 * variance * widened)
    p = min(state.p_value, math.exp(-log_lr) if log_lr > 0.0 else 1.0)
    half = math.sqrt(
        variance * widened / tau2 * (2.0 * math.log(1.0 / alpha) + math.log(widened / variance))
    )
    return SequentialState(
        looks=state.looks + 1,
        p_value=p,
        lower=max(state.lower, theta - half),
        upper=min(state.upper, theta + half),
        estimate=theta,
    )


def fixed_horizon(
    treatment: Moments, control: Moments, *, planned_n: int, alpha: float
) -> Difference | None:
    """The classical z-test, or None until both variants hold ``planned_n`` rows."""
    if treatment.count < planned_n or control.count < planned_n:
        return None
    return z_difference(treatment, control, alpha)
