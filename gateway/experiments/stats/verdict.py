"""The decision per metric of a two-variant experiment: fold the looks, then decide.

Alpha is split (a union bound keeps the false-winner rate <= ``alpha``): the always-valid
mSPRT may stop early at ``sequential_alpha`` after any look; the classical z-test runs once,
when both variants first hold ``planned_n`` rows, at ``alpha - sequential_alpha`` (plan the
sample size with that level). Its result is frozen in the state, so later looks cannot retest.
A sample-ratio mismatch blocks every decision. A guardrail breaches when its always-valid
interval (at ``alpha``) shows the candidate worse than the control by more than its tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.experiments.stats.sequential import (
    MIN_ROWS,
    SequentialState,
    fixed_horizon,
    msprt_update,
)
from gateway.experiments.stats.srm import SRM_THRESHOLD, SrmResult, srm_test
from gateway.experiments.stats.sufficient import Difference, Moments

Outcome = Literal[
    "winner",
    "no_detectable_difference",
    "continue",
    "blocked_srm",
    "guardrail_breach",
    "guardrail_holds",
]
Role = Literal["primary", "guardrail"]
_Made = Callable[["Outcome", "str | None", str], "Decision"]  # decide's local constructor


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its role, which direction is better, its mixture scale and tolerance."""

    name: str
    tau: float  # mSPRT mixture scale: the planned absolute effect (primary) or the tolerance
    role: Role = "primary"
    higher_is_better: bool = True  # guardrails are usually lower-is-better (latency, errors)
    tolerance: float = 0.0  # guardrail: how much worse the candidate may be, absolute

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"metric {self.name!r}: tau must be positive, got {self.tau}")
        if self.role not in ("primary", "guardrail"):
            raise ValueError(f"metric {self.name!r}: role must be primary or guardrail")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"metric {self.name!r}: tolerance must be >= 0")


@dataclass(frozen=True, slots=True)
class Design:
    """The two variants, their configured weights, the planned rows and the error budget."""

    control: str
    candidate: str
    weights: Mapping[str, float]
    planned_n: int  # rows per variant (from gateway.experiments.stats.plan at fixed_alpha)
    alpha: float = 0.05
    sequential_alpha: float = 0.01
    srm_threshold: float = SRM_THRESHOLD
    min_rows: int = MIN_ROWS

    def __post_init__(self) -> None:
        if self.control == self.candidate:
            raise ValueError("control and candidate must be different variants")
        if set(self.weights) != {self.control, self.candidate}:
            raise ValueError("weights must name exactly the control and the candidate")
        if any(not (math.isfinite(w) and w > 0) for w in self.weights.values()):
            raise ValueError("both variants need a positive weight")
        if self.planned_n < 2:
            raise ValueError(f"planned_n must be >= 2, got {self.planned_n}")
        if not 0.0 < self.sequential_alpha < self.alpha < 1.0:
            raise ValueError("need 0 < sequential_alpha < alpha < 1")
        if not 0.0 < self.srm_threshold < 1.0:
            raise ValueError(f"srm_threshold must be in (0, 1), got {self.srm_threshold}")

    @property
    def fixed_alpha(self) -> float:
        """The level of the one fixed-horizon test (what the sample size is planned for)."""
        return self.alpha - self.sequential_alpha


@dataclass(frozen=True, slots=True)
class MetricState:
    """The folded looks of one metric."""

    sequential: SequentialState = field(default_factory=SequentialState)
    final: Difference | None = None  # the fixed-horizon test, frozen at the planned size


@dataclass(frozen=True, slots=True)
class Decision:
    """What one metric says now, with the numbers behind it."""

    metric: str
    outcome: Outcome
    winner: str | None
    estimate: float  # candidate - control, latest look
    lower: float  # always-valid interval
    upper: float
    p_value: float  # always-valid
    fixed: Difference | None
    srm: SrmResult
    reason: str


def update_metric(
    design: Design, spec: MetricSpec, state: MetricState, moments: Mapping[str, Moments]
) -> MetricState:
    """Fold one look at the cumulative moments (variant -> Moments) of one metric."""
    candidate = moments.get(design.candidate, Moments())
    control = moments.get(design.control, Moments())
    level = design.sequential_alpha if spec.role == "primary" else design.alpha
    sequential = msprt_update(
        state.sequential, candidate, control, tau=spec.tau, alpha=level, min_rows=design.min_rows
    )
    final = state.final or fixed_horizon(
        candidate, control, planned_n=design.planned_n, alpha=design.fixed_alpha
    )
    return MetricState(sequential, final)


def decide(design: Design, spec: MetricSpec, state: MetricState, srm: SrmResult) -> Decision:
    """The decision of one metric from its folded state and the assignment check."""
    seq = state.sequential

    def made(outcome: Outcome, winner: str | None, reason: str) -> Decision:
        return Decision(
            spec.name, outcome, winner, seq.estimate, seq.lower, seq.upper, seq.p_value,
            state.final, srm, reason,
        )  # fmt: skip

    if srm.mismatch:
        return made("blocked_srm", None, f"sample-ratio mismatch (p = {srm.p_value:.3g})")
    if spec.role == "guardrail":
        return _guardrail(spec, state, made)
    if seq.excludes_zero():
        better = (seq.lower > 0.0) == spec.higher_is_better
        winner = design.candidate if better else design.control
        return made("winner", winner, "the always-valid interval excludes 0")
    if state.final is not None:
        if state.final.p_value < design.fixed_alpha:
            better = (state.final.estimate > 0.0) == spec.higher_is_better
            winner = design.candidate if better else design.control
            return made("winner", winner, "the planned fixed-horizon test is significant")
        return made(
            "no_detectable_difference", None, "planned sample reached, the interval includes 0"
        )
    return made("continue", None, "neither test has decided; keep collecting")


def evaluate(
    design: Design,
    specs: Mapping[str, MetricSpec],
    states: Mapping[str, MetricState],
    moments: Mapping[str, Mapping[str, Moments]],
    assignments: Mapping[str, int],
) -> tuple[dict[str, MetricState], dict[str, Decision]]:
    """One look at every metric: (metric -> new state, metric -> decision)."""
    srm = srm_test(assignments, design.weights, design.srm_threshold)
    new_states: dict[str, MetricState] = {}
    decisions: dict[str, Decision] = {}
    for name, spec in specs.items():
        state = update_metric(design, spec, states.get(name, MetricState()), moments.get(name, {}))
        new_states[name] = state
        decisions[name] = decide(design, spec, state, srm)
    return new_states, decisions


def _guardrail(spec: MetricSpec, state: MetricState, made: _Made) -> Decision:
    seq = state.sequential
    # worse means higher for a lower-is-better metric, lower otherwise
    if spec.higher_is_better:
        breached = seq.upper < -spec.tolerance
    else:
        breached = seq.lower > spec.tolerance
    if breached:
        return made(
            "guardrail_breach",
            None,
            f"the candidate is worse by more than {spec.tolerance:g} (always-valid interval)",
        )
    if state.final is not None:
        return made("guardrail_holds", None, "planned sample reached without a breach")
    return made("continue", None, "no breach shown yet; keep collecting")
