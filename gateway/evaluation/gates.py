"""Promotion gate: may a candidate version replace production? Pure function of two reports.

Refused when
* either evaluation is missing ("no evaluation on the same dataset"), or the two were run
  on different datasets (fingerprints differ or are unknown): the numbers cannot be compared;
* the primary metrics differ in name, or the candidate's is worse by more than
  ``primary_metric_drop`` (absolute, in the metric's own direction: RMSE may not rise by
  more, AUC / F1 may not fall by more);
* a fairness gap (demographic parity or equal opportunity difference) of a group column
  evaluated for production is wider for the candidate by more than ``fairness_gap_widening``,
  or that column was not evaluated for the candidate;
* the candidate's p95 single-row latency exceeds ``latency_p95_factor`` x production's
  (and, when ``latency_p95_slack_ms`` > 0, also by more than that many milliseconds, which
  keeps microsecond-scale models from failing on timer noise).
A caller may override a refusal (``--force``); auditing that is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

NO_EVALUATION = "no evaluation on the same dataset"
FAIRNESS_GAPS = ("demographic_parity_difference", "equal_opportunity_difference")
_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class GateTolerances:
    primary_metric_drop: float = 0.01
    fairness_gap_widening: float = 0.05
    latency_p95_factor: float = 1.5
    latency_p95_slack_ms: float = 0.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> GateTolerances:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown gate tolerances: {', '.join(unknown)}")
        try:
            parsed = {k: float(v) for k, v in values.items()}
        except (TypeError, ValueError):
            raise ValueError("gate tolerances must be numbers") from None
        if any(v < 0 for v in parsed.values()):
            raise ValueError("gate tolerances must be >= 0")
        return cls(**parsed)


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    comparisons: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _primary(
    cand: Mapping[str, Any], prod: Mapping[str, Any], tol: GateTolerances
) -> tuple[list[str], dict[str, Any]]:
    c, p = cand.get("primary_metric") or {}, prod.get("primary_metric") or {}
    if not c or not p or c.get("value") is None or p.get("value") is None:
        return ["primary metric missing from an evaluation"], {}
    if c.get("name") != p.get("name"):
        return [f"primary metrics differ ({c.get('name')} vs {p.get('name')}): cannot compare"], {}
    higher = bool(p.get("higher_is_better", True))
    drop = (p["value"] - c["value"]) if higher else (c["value"] - p["value"])
    row = {
        "name": p["name"],
        "candidate": c["value"],
        "production": p["value"],
        "higher_is_better": higher,
        "worsening": drop,
        "tolerance": tol.primary_metric_drop,
    }
    if drop > tol.primary_metric_drop + _EPS:
        verb = "dropped" if higher else "rose"
        return [
            f"{p['name']} {verb} from {p['value']:.4f} to {c['value']:.4f} "
            f"(more than {tol.primary_metric_drop:g})"
        ], row
    return [], row


def _fairness(
    cand: Mapping[str, Any], prod: Mapping[str, Any], tol: GateTolerances
) -> tuple[list[str], dict[str, Any]]:
    reasons: list[str] = []
    rows: dict[str, Any] = {}
    c_cols = (cand.get("fairness") or {}).get("columns") or {}
    p_cols = (prod.get("fairness") or {}).get("columns") or {}
    for column, p_block in p_cols.items():
        if column not in c_cols:
            reasons.append(
                f"fairness on {column!r} was evaluated for production but not for the candidate"
            )
            continue
        for gap in FAIRNESS_GAPS:
            c_val, p_val = c_cols[column].get(gap), p_block.get(gap)
            if c_val is None or p_val is None:
                continue
            widening = c_val - p_val
            rows[f"{column}.{gap}"] = {
                "candidate": c_val,
                "production": p_val,
                "widening": widening,
            }
            if widening > tol.fairness_gap_widening + _EPS:
                reasons.append(
                    f"{gap} on {column!r} widened from {p_val:.4f} to {c_val:.4f} "
                    f"(more than {tol.fairness_gap_widening:g})"
                )
    return reasons, rows


def _p95(report: Mapping[str, Any]) -> float | None:
    return ((report.get("operational") or {}).get("latency_ms") or {}).get("p95")


def _latency(
    cand: Mapping[str, Any], prod: Mapping[str, Any], tol: GateTolerances
) -> tuple[list[str], dict[str, Any]]:
    c, p = _p95(cand), _p95(prod)
    if c is None or p is None:
        return [], {"skipped": "latency not measured for both versions"}
    ratio = c / p if p > 0 else float("inf")
    row = {
        "candidate_ms": c,
        "production_ms": p,
        "ratio": ratio,
        "max_factor": tol.latency_p95_factor,
    }
    if c > p * tol.latency_p95_factor + _EPS and c - p > tol.latency_p95_slack_ms:
        return [
            f"p95 latency grew from {p:.3f} ms to {c:.3f} ms ({ratio:.2f}x, limit "
            f"{tol.latency_p95_factor:g}x)"
        ], row
    return [], row


def check_promotion(
    candidate_eval: Mapping[str, Any] | None,
    production_eval: Mapping[str, Any] | None,
    tolerances: GateTolerances | Mapping[str, Any] | None = None,
) -> GateResult:
    tol = (
        tolerances
        if isinstance(tolerances, GateTolerances)
        else GateTolerances.from_dict(tolerances)
    )
    if not candidate_eval or not production_eval:
        return GateResult(False, [NO_EVALUATION], {})
    c_fp = (candidate_eval.get("dataset") or {}).get("fingerprint")
    p_fp = (production_eval.get("dataset") or {}).get("fingerprint")
    comparisons: dict[str, Any] = {"dataset": {"candidate": c_fp, "production": p_fp}}
    if not c_fp or not p_fp:
        return GateResult(False, [f"{NO_EVALUATION} (dataset fingerprint unknown)"], comparisons)
    if c_fp != p_fp:
        return GateResult(
            False,
            [
                f"{NO_EVALUATION}: dataset fingerprints differ "
                f"({c_fp[:12]} vs {p_fp[:12]}), cannot compare"
            ],
            comparisons,
        )
    reasons: list[str] = []
    for key, check in (
        ("primary_metric", _primary),
        ("fairness", _fairness),
        ("latency_p95", _latency),
    ):
        found, row = check(candidate_eval, production_eval, tol)
        reasons.extend(found)
        comparisons[key] = row
    return GateResult(not reasons, reasons, comparisons)
