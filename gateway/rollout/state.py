"""The rollout's persisted shape: its spec (what the operator asked) and its state.

Stored as JSON under ``rollout:<model>`` with the registry's ``put_state``. Statuses:

    running -----> promoted      every step's analysis passed
       |---------> rolled_back   ``max_failed_checks`` analyses failed: all traffic to the champion
       |---------> cancelled     an operator cancelled it: all traffic to the champion
       '---------> aborted       the registry changed underneath (production moved, a version
                                 was archived) or refused the change; traffic left alone

A terminal state is written first with ``applied: false`` (the intent), then the traffic or
stage change is made, then ``applied: true``; a controller that finds an unapplied
terminal state (a process died in between) applies it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gateway.errors import InputError
from gateway.rollout.checks import CanaryThresholds
from registry.models import Deployment, Route

RUNNING = "running"
PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
CANCELLED = "cancelled"
ABORTED = "aborted"
TERMINAL = frozenset({PROMOTED, ROLLED_BACK, CANCELLED, ABORTED})
HISTORY_LIMIT = 20

_SPEC_KEYS = frozenset(
    {"candidate", "steps", "interval_s", "min_requests", "max_failed_checks", "thresholds"}
)


ROLLOUT_PREFIX = "rollout:"


def state_key(model: str) -> str:
    return ROLLOUT_PREFIX + model


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    candidate: str
    champion: str
    steps: tuple[float, ...]  # canary weight in percent at each step, strictly increasing
    interval_s: float
    min_requests: int
    max_failed_checks: int = 2
    thresholds: CanaryThresholds = field(default_factory=CanaryThresholds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["steps"] = list(self.steps)
        out["thresholds"] = self.thresholds.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RolloutSpec:
        return cls(
            candidate=values["candidate"],
            champion=values["champion"],
            steps=tuple(float(s) for s in values["steps"]),
            interval_s=float(values["interval_s"]),
            min_requests=int(values["min_requests"]),
            max_failed_checks=int(values["max_failed_checks"]),
            thresholds=CanaryThresholds.from_dict(values.get("thresholds")),
        )


def _number(payload: Mapping[str, Any], key: str, default: Any = None) -> float:
    value = payload.get(key, default)
    if value is None:
        raise InputError(f"missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _integer(payload: Mapping[str, Any], key: str, default: Any = None) -> int:
    value = _number(payload, key, default)
    if value != int(value) or value < 1:
        raise InputError(f"{key} must be an integer >= 1, got {payload.get(key, default)!r}")
    return int(value)


def parse_steps(raw: Any) -> tuple[float, ...]:
    """``[5, 25, 50, 100]`` or ``"5,25,50,100"``: strictly increasing percentages in (0, 100]."""
    if isinstance(raw, str):
        try:
            raw = [float(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise InputError(f"steps must be comma-separated numbers, got {raw!r}") from None
    if not isinstance(raw, list | tuple) or not raw:
        raise InputError("steps must be a non-empty list of canary weights in percent")
    steps: list[float] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"every step must be a number, got {value!r}")
        if not math.isfinite(value) or not 0 < value <= 100:
            raise InputError(f"every step must be in (0, 100], got {value!r}")
        if steps and value <= steps[-1]:
            raise InputError(
                f"steps must be strictly increasing, got {value:g} after {steps[-1]:g}"
            )
        steps.append(float(value))
    if steps[0] >= 100:
        raise InputError(
            "the first step must be below 100: the analysis compares the canary with the "
            "champion serving beside it"
        )
    return tuple(steps)


def parse_spec(payload: Any, *, champion: str) -> RolloutSpec:
    """Validate a ``POST /admin/models/{name}/rollout`` body (InputError on any problem).

    The candidate's existence and stage are checked against the registry by the caller.
    """
    if not isinstance(payload, Mapping):
        raise InputError("the rollout must be a JSON object")
    unknown = sorted(set(payload) - _SPEC_KEYS)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_SPEC_KEYS))})")
    candidate = payload.get("candidate")
    if not isinstance(candidate, str) or not candidate.strip():
        raise InputError('candidate must be a version string, e.g. "1.1.0"')
    if "steps" not in payload:
        raise InputError("missing 'steps' (canary weights in percent, e.g. [5, 25, 50, 100])")
    steps = parse_steps(payload["steps"])
    interval = _number(payload, "interval_s")
    if interval <= 0:
        raise InputError(f"interval_s must be > 0 seconds, got {interval:g}")
    min_requests = _integer(payload, "min_requests", 100)
    max_failed = _integer(payload, "max_failed_checks", 2)
    thresholds = payload.get("thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise InputError("thresholds must be an object")
    try:
        parsed_thresholds = CanaryThresholds.from_dict(thresholds)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return RolloutSpec(
        candidate=candidate.strip(),
        champion=champion,
        steps=steps,
        interval_s=interval,
        min_requests=min_requests,
        max_failed_checks=max_failed,
        thresholds=parsed_thresholds,
    )


@dataclass(frozen=True, slots=True)
class RolloutState:
    model: str
    id: str
    spec: RolloutSpec
    status: str = RUNNING
    step: int = 0  # index into spec.steps
    step_started_at: float = 0.0  # wall-clock seconds (time.time())
    analysis_started_at: float = 0.0  # start of the interval being analysed
    failures: int = 0  # failed analyses so far (insufficient data at expiry included)
    applied: bool = True  # False: a terminal state whose traffic change is still to make
    reason: str = ""  # why it ended
    created_at: float = 0.0
    created_by: str = ""
    updated_at: float = 0.0
    revision: int = 0  # bumped on every write; a writer re-reads it under the mutex
    baseline: dict[str, Any] | None = None  # champion stats of the last measured interval
    history: tuple[dict[str, Any], ...] = ()  # the last HISTORY_LIMIT analyses

    @classmethod
    def new(cls, model: str, spec: RolloutSpec, now: float, actor: str) -> RolloutState:
        return cls(
            model=model,
            id=uuid.uuid4().hex[:12],
            spec=spec,
            step_started_at=now,
            analysis_started_at=now,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )

    @property
    def weight(self) -> float:
        return self.spec.steps[self.step]

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def evolve(self, now: float, **changes: Any) -> RolloutState:
        return replace(self, updated_at=now, revision=self.revision + 1, **changes)

    def with_analysis(self, now: float, entry: dict[str, Any], **changes: Any) -> RolloutState:
        history = (*self.history, entry)[-HISTORY_LIMIT:]
        return self.evolve(now, history=history, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["spec"] = self.spec.to_dict()
        out["history"] = list(self.history)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RolloutState:
        data = dict(values)
        data["spec"] = RolloutSpec.from_dict(data["spec"])
        data["history"] = tuple(data.get("history") or ())
        for transient in ("progress", "weights"):
            data.pop(transient, None)
        return cls(**data)

    def describe(self) -> dict[str, Any]:
        """The API / CLI view: the stored state plus the derived progress."""
        out = self.to_dict()
        out["progress"] = {
            "step": self.step + 1,
            "steps": len(self.spec.steps),
            "canary_weight": self.weight,
        }
        out["weights"] = routes_for(self.spec, self.weight)
        return out


def routes_for(spec: RolloutSpec, weight: float) -> dict[str, float]:
    """The weights of one step: candidate ``weight`` %, the champion the rest."""
    if weight >= 100:
        return {spec.candidate: 100.0}
    return {spec.champion: 100.0 - weight, spec.candidate: weight}


def traffic_of(deployment: Deployment) -> dict[str, float]:
    return {r.version: r.weight for r in deployment.routes if r.weight > 0}


def with_routes(current: Deployment, weights: Mapping[str, float]) -> Deployment:
    """``current`` with new routes; shadows of a routed version are dropped (a version
    cannot be both), everything else (other shadows, sticky, challenger) is kept."""
    routes = tuple(Route(version, weight) for version, weight in weights.items())
    shadows = tuple(s for s in current.shadows if s.version not in weights)
    return replace(current, routes=routes, shadows=shadows, updated_at="")
