"""Outcomes of the feedback body: validated per metric and joined to the variant that served.

By request id, the variant is the version that answered it (the feedback tables remember
the version and the prediction time of every recent request, read without marking it, so
a label for the same id is still accepted); by routing key, it is the variant the model's
sticky routing picks for that key (``routing.sticky_bucket`` with the deployment's salt,
as every inference request with that key is routed), only while an experiment runs.

An outcome belongs to the running experiment when the request was served after it started,
by one of its variants (a routing-key outcome always does); otherwise to no experiment
(``Outcome.experiment`` None: the shell aggregates it into the day's production baseline).

Dropped, and reported per item in the answer: ids never served here or evicted from the
tables (``unknown``), requests served longer than the late window ago (``expired``), and
values that cannot be an outcome of that metric (``invalid``). The store reports the
``duplicate`` ones. Nothing here writes anything: the endpoint hands the joined outcomes to
an ``OutcomeSink`` in one call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.dataplane.feedback.items import FeedbackItem
from gateway.dataplane.feedback.store import EXPIRED, FOUND, ModelFeedback, version_tag
from gateway.dataplane.routing import by_bucket, sticky_bucket
from gateway.dataplane.snapshot import ModelRoute
from gateway.errors import GatewayError
from gateway.experiments.record import GATEWAY_GUARDRAILS, RunningExperiment

METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
# distinct metric names a worker accepts for one model's baseline (no experiment running,
# so any name is allowed): bounds the Prometheus series and baseline rows a client can make
MAX_BASELINE_METRICS = 64

# drop reasons (the ``reason`` label of modelgate_outcomes_dropped_total)
UNKNOWN, EXPIRED_REASON, INVALID, DUPLICATE = "unknown", "expired", "invalid", "duplicate"

RunningLookup = Callable[[str], RunningExperiment | None]


class OutcomesUnavailable(GatewayError):
    """The outcome store did not commit (database unreachable or busy): nothing recorded."""

    status = 503
    reason = "outcomes_unavailable"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One valid outcome joined to its variant."""

    unit: str  # the idempotency key with the metric: id:<request id> or key:<exp>:<key>
    metric: str
    version: str
    value: float
    experiment: str | None  # the running experiment it belongs to; None: the baseline
    served_at: float  # unix time the request was served (routing key: received)


class OutcomeSink(Protocol):
    """Where joined outcomes go (``gateway/experiments/outcomes.py``)."""

    async def record(self, model: str, outcomes: Sequence[Outcome]) -> tuple[int, int]:
        """Store every outcome in one transaction: (accepted, duplicates); raises
        OutcomesUnavailable when nothing could be committed."""
        ...

    def dropped(self, model: str, reason: str, n: int) -> None:
        """Count ``n`` outcomes dropped for ``reason`` (UNKNOWN, EXPIRED_REASON, INVALID)."""
        ...


@dataclass(slots=True)
class Joined:
    """What the join made of the body's outcomes, before the store saw them."""

    outcomes: list[Outcome] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # items (id or routing key)
    unknown_outcomes: int = 0
    expired: int = 0  # outcomes
    invalid: list[dict[str, str]] = field(default_factory=list)  # one per outcome

    def answer(self, accepted: int, duplicate: int) -> dict[str, Any]:
        return {
            "accepted": accepted,
            "duplicate": duplicate,
            "unknown": self.unknown,
            "expired": self.expired,
            "invalid": self.invalid,
        }


def outcome_value(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (bool, string, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class OutcomeJoin:
    """Validates and joins the outcomes of one feedback body (one per request)."""

    def __init__(
        self,
        model: str,
        experiment: RunningExperiment | None,
        tables: ModelFeedback | None,
        route: ModelRoute | None,
        window_s: float,
        now: float,
        baseline_names: set[str],
    ) -> None:
        self.model = model
        self.experiment = experiment
        self.tables = tables
        self.route = route
        self.window_s = window_s
        self.now = now
        self.baseline_names = baseline_names  # this worker's accepted names (bounded)
        self.result = Joined()
        self._versions = self._tags()

    def _tags(self) -> dict[int, str]:
        """Version tag -> version, for every version this worker knows of the model."""
        names: set[str] = set()
        if self.route is not None:
            names |= set(self.route.known_versions)
        if self.experiment is not None:
            names |= set(self.experiment.variants)
        tags = {version_tag(v): v for v in names}
        if self.tables is not None:
            tags.update({tag: labels.version for tag, labels in self.tables.versions.items()})
        return tags

    def add(self, item: FeedbackItem) -> None:
        values = self._valid_values(item)
        if not values:
            return
        if item.request_id is not None:
            self._by_id(item, item.request_id, values)
        else:
            self._by_key(item, str(item.routing_key), values)

    def _invalid(self, item: FeedbackItem, metric: str, error: str) -> None:
        where = "id" if item.request_id is not None else "routing_key"
        self.result.invalid.append({where: item.unit, "metric": metric, "error": error})

    def _metric_problem(self, name: str, value: float) -> str | None:
        if not METRIC_NAME.fullmatch(name):
            return "a metric name is 1 to 64 letters, digits, '_', '.' or '-'"
        if name in GATEWAY_GUARDRAILS:
            return f"{name} is measured by the gateway itself, not reported as an outcome"
        experiment = self.experiment
        if experiment is not None:
            metric = experiment.metric(name)
            if metric is None or metric.measured_by_gateway:
                known = ", ".join(m.name for m in experiment.outcome_metrics()) or "none"
                return f"not a metric of experiment {experiment.id} (its outcomes: {known})"
            if not metric.accepts(value):
                return f"{name} is a binary metric: its outcome is 0 or 1"
            return None
        if name not in self.baseline_names:
            if len(self.baseline_names) >= MAX_BASELINE_METRICS:
                return (
                    f"more than {MAX_BASELINE_METRICS} distinct metric names for model "
                    f"{self.model} while no experiment runs"
                )
            self.baseline_names.add(name)
        return None

    def _valid_values(self, item: FeedbackItem) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, raw in item.outcomes.items():
            value = outcome_value(raw)
            if value is None:
                self._invalid(item, name, f"outcome {raw!r} is not a finite number")
                continue
            problem = self._metric_problem(name, value)
            if problem is not None:
                self._invalid(item, name, problem)
                continue
            out[name] = value
        return out

    def _unknown(self, item: FeedbackItem, n: int) -> None:
        self.result.unknown.append(item.unit)
        self.result.unknown_outcomes += n

    def _by_id(self, item: FeedbackItem, request_id: str, values: dict[str, float]) -> None:
        if self.tables is None:
            self._unknown(item, len(values))
            return
        status, tag, served_at = self.tables.served(request_id, self.now, self.window_s)
        version = self._versions.get(tag) if status == FOUND else None
        if status == EXPIRED:
            self.result.expired += len(values)
            return
        if version is None:
            self._unknown(item, len(values))
            return
        experiment = self.experiment
        in_experiment = (
            experiment is not None
            and served_at >= experiment.started_at
            and version in experiment.variants
        )
        exp_id = experiment.id if in_experiment and experiment is not None else None
        unit = "id:" + request_id
        for name, value in values.items():
            self.result.outcomes.append(Outcome(unit, name, version, value, exp_id, served_at))

    def _by_key(self, item: FeedbackItem, key: str, values: dict[str, float]) -> None:
        experiment, route = self.experiment, self.route
        if experiment is None or route is None:
            self._unknown(item, len(values))
            return
        if not route.sticky or not route.routes:
            for name in values:
                self._invalid(
                    item, name, "outcomes by routing key need a sticky deployment of the model"
                )
            return
        variant = by_bucket(route, sticky_bucket(route.sticky_prefix, key.encode()))
        if variant.version not in experiment.variants:
            self._unknown(item, len(values))
            return
        unit = f"key:{experiment.id}:{key}"
        for name, value in values.items():
            self.result.outcomes.append(
                Outcome(unit, name, variant.version, value, experiment.id, self.now)
            )
