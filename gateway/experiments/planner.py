"""The plan made before an experiment starts: baselines in, rows per variant and duration out.

For each primary metric the baseline is measured on production's outcomes of the last
``baseline_days`` days (outside experiments) when there are at least ``MIN_BASELINE_ROWS``
of them (and, for a rate, both outcomes occur), else it is the one the request gives
(``baseline``, plus ``sd`` for a continuous metric); with neither the start is refused
(400) with what to give. The sample size is planned at the fixed-horizon level
(``alpha - sequential_alpha``, see ``stats.verdict``) with ``stats.plan``; the experiment
needs the largest of the primary metrics' sizes. The duration divides it by the traffic:
the request's ``traffic_per_day``, else production's outcomes per day over the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from gateway.errors import InputError
from gateway.experiments.spec import ExperimentSpec, MetricConfig
from gateway.experiments.stats.plan import (
    duration_days,
    sample_size_binary,
    sample_size_continuous,
)
from gateway.experiments.stats.sufficient import Moments
from registry.outcomes import MomentsRow

MIN_BASELINE_ROWS = 100
# a plan beyond this many rows per variant is refused: no experiment could collect them
MAX_ROWS = 10**12


class OutcomeData(Protocol):
    """What the experiments read of the outcomes the registry keeps."""

    async def outcome_moments(self, scope: str, model: str) -> dict[str, dict[str, MomentsRow]]:
        """metric -> version -> (count, sum, sum of squares) of one experiment."""
        ...

    async def assignments(self, experiment_id: str) -> dict[str, int]:
        """Requests served per variant, over every worker and node."""
        ...

    async def baseline_moments(
        self, model: str, version: str, metric: str, days: int
    ) -> MomentsRow:
        """Outcomes of ``version`` outside experiments over the last ``days`` days."""
        ...


@dataclass(frozen=True, slots=True)
class MetricPlan:
    """The sample size of one primary metric and where its baseline came from."""

    metric: str
    kind: str
    baseline_source: str  # "production" (measured) or "request"
    baseline: float
    sd: float | None
    baseline_rows: int  # production outcomes found in the window
    delta: float  # the absolute minimum detectable effect
    n_per_variant: int


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    metrics: dict[str, MetricPlan]
    n_per_variant: int  # the largest of the primary metrics'
    alpha: float
    fixed_alpha: float
    sequential_alpha: float
    power: float
    mde: float
    mde_kind: str
    baseline_version: str
    baseline_days: int
    traffic_per_day: float | None
    traffic_source: str | None  # "request" | "production outcomes" | None (unknown)
    duration_days: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = {name: asdict(plan) for name, plan in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentPlan:
        fields = dict(raw)
        fields["metrics"] = {k: MetricPlan(**v) for k, v in raw["metrics"].items()}
        return cls(**fields)


def _measured(metric: MetricConfig, row: MomentsRow) -> tuple[float, float | None] | None:
    """(baseline, sd) from production's outcomes, or None when they cannot plan."""
    moments = Moments(*row)
    if moments.count < MIN_BASELINE_ROWS:
        return None
    mean = moments.mean
    if metric.kind == "binary":
        return (mean, None) if 0.0 < mean < 1.0 else None
    sd = math.sqrt(moments.variance)
    return (mean, sd) if sd > 0 else None


def _what_to_give(metric: MetricConfig, rows: int, days: int) -> str:
    wanted = (
        '"baseline" (the current rate, in (0, 1))'
        if metric.kind == "binary"
        else '"baseline" (the current mean) and "sd" (its standard deviation)'
    )
    return (
        f"metrics[{metric.name!r}]: production has {rows} outcomes over the last {days} days "
        f"({MIN_BASELINE_ROWS} needed to measure a baseline); give {wanted} for it"
    )


def plan_metric(spec: ExperimentSpec, metric: MetricConfig, row: MomentsRow) -> MetricPlan:
    """The sample size of one primary metric; InputError when it has no baseline."""
    measured = _measured(metric, row)
    if measured is not None:
        source, (baseline, sd) = "production", measured
    elif metric.baseline is not None:
        source, baseline, sd = "request", metric.baseline, metric.sd
    else:
        raise InputError(_what_to_give(metric, row[0], spec.baseline_days))
    try:
        if metric.kind == "binary":
            plan = sample_size_binary(baseline, spec.mde, alpha=spec.fixed_alpha, power=spec.power)
        else:
            assert sd is not None  # the spec asks for both, a measurement has both
            plan = sample_size_continuous(
                baseline, sd, spec.mde, alpha=spec.fixed_alpha, power=spec.power
            )
    except ValueError as exc:
        raise InputError(f"metrics[{metric.name!r}]: {exc}") from None
    except (OverflowError, ZeroDivisionError):  # an effect too small to plan in floats
        plan = None
    if plan is None or plan.n_per_variant > MAX_ROWS:
        raise InputError(
            f"metrics[{metric.name!r}]: an effect of mde {spec.mde.value:g} ({spec.mde.kind}) "
            f"needs more than {MAX_ROWS:.0e} rows per variant; choose a larger mde"
        )
    return MetricPlan(
        metric.name, metric.kind, source, baseline, sd, row[0], plan.delta, plan.n_per_variant
    )


async def make_plan(
    spec: ExperimentSpec, model: str, baseline_version: str, data: OutcomeData
) -> ExperimentPlan:
    """The plan of every primary metric, the rows the experiment needs and its duration."""
    plans: dict[str, MetricPlan] = {}
    for metric in spec.metrics:
        if metric.primary:
            row = await data.baseline_moments(
                model, baseline_version, metric.name, spec.baseline_days
            )
            plans[metric.name] = plan_metric(spec, metric, row)
    n = max(p.n_per_variant for p in plans.values())
    traffic, source = spec.traffic_per_day, "request" if spec.traffic_per_day else None
    if traffic is None:
        # production's outcome rows per day: the rows the plan counts, at today's traffic
        rows = max(p.baseline_rows for p in plans.values())
        if rows > 0:
            traffic, source = rows / spec.baseline_days, "production outcomes"
    days = None if traffic is None else duration_days(n, traffic, spec.variants)
    return ExperimentPlan(
        metrics=plans,
        n_per_variant=n,
        alpha=spec.alpha,
        fixed_alpha=spec.fixed_alpha,
        sequential_alpha=spec.sequential_alpha,
        power=spec.power,
        mde=spec.mde.value,
        mde_kind=spec.mde.kind,
        baseline_version=baseline_version,
        baseline_days=spec.baseline_days,
        traffic_per_day=traffic,
        traffic_source=source,
        duration_days=days,
    )
