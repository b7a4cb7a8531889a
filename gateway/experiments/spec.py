"""Parse and validate the body of ``POST /admin/models/{name}/experiment`` (pure).

Every refusal is an ``InputError`` (400) whose message names the field. Which versions
exist is checked later, against the registry (404 for an unknown one).

    {"variants": {"1.0.0": 50, "1.1.0": 50},             weights in percent, summing to 100
     "control": "1.0.0",                                  default: production if it takes
                                                          part, else the first variant
     "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1},
                 {"name": "revenue", "kind": "continuous", "baseline": 40, "sd": 25},
                 {"name": "complaints", "kind": "guardrail", "tolerance": 0.01},
                 {"name": "p95_latency_ms", "kind": "guardrail", "limit": 250}],
     "alpha": 0.05, "power": 0.8, "mde": 0.02, "mde_kind": "relative" | "absolute",
     "baseline_days": 14, "traffic_per_day": 50000, "promote_winner": false, "reason": ""}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from gateway.errors import InputError
from gateway.experiments.record import GATEWAY_GUARDRAILS, METRIC_KINDS, MetricKind
from gateway.experiments.stats.plan import MinimumEffect, parse_mde

ALLOWED = frozenset(
    {
        "variants",
        "control",
        "metrics",
        "alpha",
        "power",
        "mde",
        "mde_kind",
        "baseline_days",
        "traffic_per_day",
        "promote_winner",
        "reason",
    }
)
METRIC_FIELDS = frozenset(
    {"name", "kind", "baseline", "sd", "higher_is_better", "tolerance", "limit"}
)
# the error budget the always-valid test may spend on early stopping (stats.verdict.Design)
SEQUENTIAL_ALPHA_SHARE = 0.2
MAX_METRICS = 20
MAX_NAME = 100
MAX_DAYS = 365


@dataclass(frozen=True, slots=True)
class MetricConfig:
    """One metric of the experiment as the operator described it."""

    name: str
    kind: MetricKind
    baseline: float | None = None  # binary: the rate; continuous: the mean
    sd: float | None = None  # continuous: the standard deviation
    higher_is_better: bool = True
    tolerance: float = 0.0  # guardrail: how much worse the candidate may be, absolute
    limit: float | None = None  # gateway guardrail: the most the candidate may reach

    @property
    def primary(self) -> bool:
        return self.kind != "guardrail"

    @property
    def measured_by_gateway(self) -> bool:
        return self.name in GATEWAY_GUARDRAILS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "baseline": self.baseline,
            "sd": self.sd,
            "higher_is_better": self.higher_is_better,
            "tolerance": self.tolerance,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MetricConfig:
        return cls(
            name=str(raw["name"]),
            kind=cast(MetricKind, raw["kind"]),
            baseline=raw.get("baseline"),
            sd=raw.get("sd"),
            higher_is_better=bool(raw.get("higher_is_better", True)),
            tolerance=float(raw.get("tolerance") or 0.0),
            limit=raw.get("limit"),
        )


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """What the operator asked for, validated."""

    variants: dict[str, float]  # version -> weight in percent (insertion order kept)
    control: str | None  # None: decided against the registry (production, else the first)
    metrics: tuple[MetricConfig, ...]
    alpha: float = 0.05
    power: float = 0.8
    mde: MinimumEffect = field(default_factory=lambda: MinimumEffect(0.05, "relative"))
    baseline_days: int = 14
    traffic_per_day: float | None = None
    promote_winner: bool = False
    reason: str = ""

    @property
    def sequential_alpha(self) -> float:
        return self.alpha * SEQUENTIAL_ALPHA_SHARE

    @property
    def fixed_alpha(self) -> float:
        """The level the sample size is planned at (the one fixed-horizon test)."""
        return self.alpha - self.sequential_alpha


def parse_spec(payload: Any) -> ExperimentSpec:
    """The validated spec of a POST body; InputError naming the field otherwise."""
    if not isinstance(payload, dict) or not payload:
        raise InputError("the body must be a JSON object with variants and metrics")
    unknown = sorted(set(payload) - ALLOWED)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(ALLOWED))})")
    variants = _variants(payload.get("variants"))
    control = payload.get("control")
    if control is not None and (not isinstance(control, str) or control not in variants):
        raise InputError(f"control must be one of the variants {sorted(variants)}, got {control!r}")
    metrics = _metrics(payload.get("metrics"))
    alpha = _probability(payload, "alpha", 0.05)
    power = _probability(payload, "power", 0.8)
    if power <= alpha / 2:
        raise InputError(f"power ({power}) must exceed alpha / 2 ({alpha / 2})")
    if "mde" not in payload:
        raise InputError('missing "mde": the minimum detectable effect (e.g. 0.02 relative)')
    try:
        mde = parse_mde(payload)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    days = payload.get("baseline_days", 14)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InputError(f"baseline_days must be a whole number of days in 1..{MAX_DAYS}")
    traffic = payload.get("traffic_per_day")
    if traffic is not None:
        traffic = _positive(payload, "traffic_per_day", 0.0)
    promote = payload.get("promote_winner", False)
    if not isinstance(promote, bool):
        raise InputError(f"promote_winner must be true or false, got {promote!r}")
    reason = payload.get("reason", "")
    if not isinstance(reason, str):
        raise InputError(f"reason must be a string, got {reason!r}")
    return ExperimentSpec(
        variants=variants,
        control=control,
        metrics=metrics,
        alpha=alpha,
        power=power,
        mde=mde,
        baseline_days=days,
        traffic_per_day=traffic,
        promote_winner=promote,
        reason=reason.strip()[:500],
    )


def _number(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{label} must be a finite number, got {value!r}")
    return float(value)


def _variants(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise InputError('variants must be an object {"version": weight, ...} of two versions')
    if len(raw) != 2:
        raise InputError(
            f"variants must name exactly two versions (a control and a candidate), got {len(raw)}"
        )
    variants: dict[str, float] = {}
    for version, weight in raw.items():
        if not isinstance(version, str) or not version.strip():
            raise InputError("variants: every version must be a non-empty string")
        value = _number(weight, f"variants[{version!r}]")
        if value <= 0:
            raise InputError(f"variants[{version!r}] must be a weight > 0, got {weight!r}")
        variants[version.strip()] = value
    total = sum(variants.values())
    if not math.isclose(total, 100.0, abs_tol=1e-6):
        raise InputError(f"variants: the weights must sum to 100, got {total:g}")
    return variants


def _metrics(raw: Any) -> tuple[MetricConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise InputError('metrics must be a non-empty list of {"name", "kind"} objects')
    if len(raw) > MAX_METRICS:
        raise InputError(f"metrics: at most {MAX_METRICS}, got {len(raw)}")
    metrics = [_metric(i, item) for i, item in enumerate(raw)]
    names = [m.name for m in metrics]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"metrics: {duplicated[0]!r} is listed twice")
    if not any(m.primary for m in metrics):
        raise InputError("metrics: at least one binary or continuous metric is needed to decide")
    return tuple(metrics)


def _metric(index: int, raw: Any) -> MetricConfig:
    where = f"metrics[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f'{where} must be an object {{"name", "kind"}}')
    unknown = sorted(set(raw) - METRIC_FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InputError(f"{where}.name must be a non-empty string of at most {MAX_NAME} chars")
    name = name.strip()
    where = f"metrics[{name!r}]"
    kind = raw.get("kind")
    if kind not in METRIC_KINDS:
        raise InputError(f"{where}.kind must be one of {', '.join(METRIC_KINDS)}, got {kind!r}")
    if name in GATEWAY_GUARDRAILS and kind != "guardrail":
        raise InputError(f"{where}.kind must be guardrail: the gateway measures {name} itself")
    baseline = raw.get("baseline")
    if baseline is not None:
        baseline = _number(baseline, f"{where}.baseline")
        if kind == "binary" and not 0.0 < baseline < 1.0:
            raise InputError(f"{where}.baseline must be a rate in (0, 1), got {baseline:g}")
    sd = raw.get("sd")
    if sd is not None:
        sd = _number(sd, f"{where}.sd")
        if sd <= 0:
            raise InputError(f"{where}.sd must be > 0, got {sd:g}")
    if kind == "continuous" and (baseline is None) != (sd is None):
        raise InputError(f"{where}: a continuous baseline needs both baseline and sd")
    better = raw.get("higher_is_better", kind != "guardrail")
    if not isinstance(better, bool):
        raise InputError(f"{where}.higher_is_better must be true or false")
    tolerance = raw.get("tolerance", 0.0)
    tolerance = _number(tolerance, f"{where}.tolerance")
    if tolerance < 0:
        raise InputError(f"{where}.tolerance must be >= 0, got {tolerance:g}")
    limit = raw.get("limit")
    if limit is not None:
        if name not in GATEWAY_GUARDRAILS:
            raise InputError(
                f"{where}.limit applies to the gateway's guardrails "
                f"({', '.join(GATEWAY_GUARDRAILS)}) only"
            )
        limit = _number(limit, f"{where}.limit")
        if limit <= 0:
            raise InputError(f"{where}.limit must be > 0, got {limit:g}")
    if kind == "guardrail" and name not in GATEWAY_GUARDRAILS and tolerance <= 0:
        raise InputError(
            f"{where}.tolerance must be > 0 for an outcome guardrail: how much worse (in the "
            "metric's unit) the candidate may be before the experiment stops"
        )
    return MetricConfig(name, kind, baseline, sd, better, tolerance, limit)


def _probability(payload: Mapping[str, Any], key: str, default: float) -> float:
    value = _number(payload.get(key, default), key)
    if not 0.0 < value < 1.0:
        raise InputError(f"{key} must be in (0, 1), got {value:g}")
    return value


def _positive(payload: Mapping[str, Any], key: str, default: float) -> float:
    value = _number(payload.get(key, default), key)
    if value <= 0:
        raise InputError(f"{key} must be > 0, got {value:g}")
    return value
