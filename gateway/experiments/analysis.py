"""One look at a running experiment (pure): the stored record and fresh numbers in, the
record's new folded states, the look's numbers and the final verdict (or None) out.

* Outcome metrics (binary, continuous, outcome guardrails) go through
  ``stats.verdict.evaluate`` with a ``Design`` per metric (each primary metric is tested
  at its own planned size; a guardrail holds once the largest planned size is reached).
* The gateway's own guardrails (``p95_latency_ms``, ``error_rate``,
  ``low_confidence_rate``, measured per variant since the controller started watching) break
  when the candidate, with at least ``GATEWAY_MIN_REQUESTS`` requests, exceeds the metric's
  ``limit``, or is worse than the control by more than its ``tolerance`` (when given).
* Final: a sample-ratio mismatch stops at once (``stopped_srm``), then any guardrail breach
  (``stopped_guardrail``); once every primary metric decided, ``winner`` (all winners agree),
  ``mixed`` (they disagree) or ``no_detectable_difference``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.experiments.spec import MetricConfig
from gateway.experiments.stats.distributions import norm_ppf
from gateway.experiments.stats.sequential import SequentialState
from gateway.experiments.stats.srm import SrmResult, srm_test
from gateway.experiments.stats.sufficient import Difference, Moments
from gateway.experiments.stats.verdict import (
    Decision,
    Design,
    MetricSpec,
    MetricState,
    evaluate,
)
from registry.outcomes import MomentsRow

GATEWAY_MIN_REQUESTS = 200


@dataclass(frozen=True, slots=True)
class GatewayReading:
    """One variant's gateway-measured numbers since the controller began watching."""

    requests: int = 0
    errors: int = 0
    p95_latency_ms: float | None = None
    low_confidence: int = 0
    confidence_count: int = 0

    def value(self, metric: str) -> float | None:
        if metric == "p95_latency_ms":
            return self.p95_latency_ms
        if metric == "error_rate":
            return self.errors / self.requests if self.requests else None
        if self.confidence_count:  # low_confidence_rate
            return self.low_confidence / self.confidence_count
        return None


@dataclass(frozen=True, slots=True)
class Look:
    states: dict[str, dict[str, Any]]  # metric -> encoded MetricState
    look: dict[str, Any]
    final: dict[str, Any] | None


# --- JSON of the folded states (no infinities in stored JSON) ------------------------
def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _back(value: Any, missing: float) -> float:
    return missing if value is None else float(value)


def encode_difference(diff: Difference | None) -> dict[str, Any] | None:
    if diff is None:
        return None
    return {
        "estimate": _num(diff.estimate),
        "std_error": _num(diff.std_error),
        "lower": _num(diff.lower),
        "upper": _num(diff.upper),
        "p_value": _num(diff.p_value),
        "alpha": diff.alpha,
        "dof": _num(diff.dof),
    }


def decode_difference(raw: Mapping[str, Any] | None) -> Difference | None:
    if raw is None:
        return None
    return Difference(
        _back(raw["estimate"], math.nan),
        _back(raw["std_error"], math.nan),
        _back(raw["lower"], -math.inf),
        _back(raw["upper"], math.inf),
        _back(raw["p_value"], 1.0),
        float(raw["alpha"]),
        _back(raw.get("dof"), math.inf),
    )


def encode_state(state: MetricState) -> dict[str, Any]:
    seq = state.sequential
    return {
        "looks": seq.looks,
        "p_value": seq.p_value,
        "lower": _num(seq.lower),
        "upper": _num(seq.upper),
        "estimate": _num(seq.estimate),
        "final": encode_difference(state.final),
    }


def decode_state(raw: Mapping[str, Any] | None) -> MetricState:
    if not raw:
        return MetricState()
    sequential = SequentialState(
        looks=int(raw["looks"]),
        p_value=float(raw["p_value"]),
        lower=_back(raw["lower"], -math.inf),
        upper=_back(raw["upper"], math.inf),
        estimate=_back(raw["estimate"], math.nan),
    )
    return MetricState(sequential, decode_difference(raw.get("final")))


# --- one look --------------------------------------------------------------------------
def variant_summary(kind: str, moments: Moments, alpha: float) -> dict[str, Any]:
    """n, mean and its two-sided interval at ``alpha`` (Wald for a rate)."""
    if moments.count == 0:
        return {"n": 0, "mean": None, "lower": None, "upper": None}
    mean = moments.mean
    if moments.count < 2:
        return {"n": moments.count, "mean": mean, "lower": None, "upper": None}
    if kind == "binary":
        se = math.sqrt(max(mean * (1.0 - mean), 0.0) / moments.count)
    else:
        se = math.sqrt(moments.variance / moments.count)
    half = norm_ppf(1.0 - alpha / 2.0) * se
    return {"n": moments.count, "mean": mean, "lower": mean - half, "upper": mean + half}


def _srm_view(srm: SrmResult) -> dict[str, Any]:
    return {
        "statistic": _num(srm.statistic),
        "dof": srm.dof,
        "p_value": _num(srm.p_value),
        "mismatch": srm.mismatch,
    }


def _decision_view(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome,
        "winner": decision.winner,
        "reason": decision.reason,
        "difference": {
            "estimate": _num(decision.estimate),
            "lower": _num(decision.lower),
            "upper": _num(decision.upper),
            "p_value": _num(decision.p_value),
        },
        "fixed": encode_difference(decision.fixed),
    }


def _spec_of(metric: MetricConfig, plan: Mapping[str, Any]) -> MetricSpec:
    if metric.primary:
        return MetricSpec(metric.name, tau=float(plan["metrics"][metric.name]["delta"]),
                          higher_is_better=metric.higher_is_better)  # fmt: skip
    return MetricSpec(
        metric.name,
        tau=metric.tolerance,
        role="guardrail",
        higher_is_better=metric.higher_is_better,
        tolerance=metric.tolerance,
    )


def _gateway_guardrail(
    metric: MetricConfig,
    control: str,
    candidate: str,
    readings: Mapping[str, GatewayReading],
) -> dict[str, Any]:
    values = {v: readings.get(v, GatewayReading()) for v in (control, candidate)}
    view: dict[str, Any] = {
        "kind": "guardrail",
        "measured_by": "gateway",
        "limit": metric.limit,
        "tolerance": metric.tolerance or None,
        "variants": {
            v: {"requests": r.requests, "value": r.value(metric.name)} for v, r in values.items()
        },  # fmt: skip
    }
    cand, ctrl = values[candidate], values[control]
    mine, theirs = cand.value(metric.name), ctrl.value(metric.name)
    outcome, reason = "continue", f"fewer than {GATEWAY_MIN_REQUESTS} requests on the candidate"
    if cand.requests >= GATEWAY_MIN_REQUESTS and mine is not None:
        outcome, reason = "continue", "within its limits"
        if metric.limit is not None and mine > metric.limit:
            outcome = "guardrail_breach"
            reason = f"{candidate} has {metric.name} {mine:.4g} above the limit {metric.limit:g}"
        elif (
            metric.tolerance > 0
            and theirs is not None
            and ctrl.requests >= GATEWAY_MIN_REQUESTS
            and mine - theirs > metric.tolerance
        ):
            outcome = "guardrail_breach"
            reason = (
                f"{candidate} has {metric.name} {mine:.4g}, worse than {control}'s {theirs:.4g} "
                f"by more than {metric.tolerance:g}"
            )
    view.update(outcome=outcome, winner=None, reason=reason)
    return view


def fold(
    record: Mapping[str, Any],
    moments: Mapping[str, Mapping[str, MomentsRow]],
    assignments: Mapping[str, int],
    gateway: Mapping[str, GatewayReading],
    now: float,
) -> Look:
    """Fold one look into the record's states; the look's view and the final verdict."""
    control, candidate = record["control"], record["candidate"]
    weights = {v: float(w) for v, w in record["variants"].items()}
    plan = record["plan"]
    alpha = float(plan["alpha"])
    counts = {v: int(n) for v, n in assignments.items() if v in weights}
    srm = srm_test(counts, weights)
    states = dict(record.get("states") or {})
    metrics_view: dict[str, Any] = {}
    decisions: dict[str, tuple[MetricConfig, str, str | None]] = {}
    for metric in (MetricConfig.from_dict(m) for m in record["metrics"]):
        if metric.measured_by_gateway:
            view = _gateway_guardrail(metric, control, candidate, gateway)
            metrics_view[metric.name] = view
            decisions[metric.name] = (metric, view["outcome"], None)
            continue
        planned = plan["metrics"][metric.name] if metric.primary else plan
        design = Design(
            control,
            candidate,
            weights,
            planned_n=int(planned["n_per_variant"]),
            alpha=alpha,
            sequential_alpha=float(plan["sequential_alpha"]),
        )
        rows = {v: Moments(*moments.get(metric.name, {}).get(v, (0, 0.0, 0.0))) for v in weights}
        new, decided = evaluate(
            design,
            {metric.name: _spec_of(metric, plan)},
            {metric.name: decode_state(states.get(metric.name))},
            {metric.name: rows},
            counts,
        )
        states[metric.name] = encode_state(new[metric.name])
        decision = decided[metric.name]
        metrics_view[metric.name] = {
            "kind": metric.kind,
            "planned_n": design.planned_n,
            "variants": {v: variant_summary(metric.kind, m, alpha) for v, m in rows.items()},
            **_decision_view(decision),
        }
        decisions[metric.name] = (metric, decision.outcome, decision.winner)
    final = final_verdict(decisions, srm)
    look = {
        "at": now,
        "assignments": {v: counts.get(v, 0) for v in weights},
        "srm": _srm_view(srm),
        "metrics": metrics_view,
        "final": final,
    }
    return Look(states, look, final)


def final_verdict(
    decisions: Mapping[str, tuple[MetricConfig, str, str | None]], srm: SrmResult
) -> dict[str, Any] | None:
    """The experiment's verdict from the metrics' decisions, or None to keep going."""
    if srm.mismatch:
        return {
            "outcome": "stopped_srm",
            "winner": None,
            "winners": {},
            "reason": f"sample-ratio mismatch (p = {srm.p_value:.3g}): assignment or outcome "
            "logging is broken, no comparison can be trusted",
        }
    breached = [
        name for name, (_, outcome, _) in decisions.items() if outcome == "guardrail_breach"
    ]
    if breached:
        return {
            "outcome": "stopped_guardrail",
            "winner": None,
            "winners": {},
            "metrics": breached,
            "reason": f"guardrail broken: {', '.join(breached)}",
        }
    primary = {name: d for name, d in decisions.items() if d[0].primary}
    if any(outcome == "continue" for _, outcome, _ in primary.values()):
        return None
    winners = {name: w for name, (_, outcome, w) in primary.items() if outcome == "winner" and w}
    chosen = set(winners.values())
    if not winners:
        return {
            "outcome": "no_detectable_difference",
            "winner": None,
            "winners": {},
            "reason": "every metric reached its planned size without a significant difference",
        }
    if len(chosen) > 1:
        return {
            "outcome": "mixed",
            "winner": None,
            "winners": winners,
            "reason": "the metrics disagree on the winner",
        }
    (winner,) = chosen
    return {
        "outcome": "winner",
        "winner": winner,
        "winners": winners,
        "reason": f"{winner} wins on {', '.join(winners)}",
    }
