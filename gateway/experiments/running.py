"""Each worker's view of the running experiments, read from the registry's state.

The control plane stores a model's experiment under the state key ``experiment/<model>``
as JSON with at least::

    {"id": "exp-1", "model": "churn", "status": "running",
     "variants": {"1.0.0": 50, "2.0.0": 50},
     "metrics": [{"name": "conversion", "kind": "binary"}, ...],
     "started_at": 1796000000.0}

(``started_at`` in unix seconds, or an ISO-8601 time; any other status, e.g. "stopped",
means no experiment runs). Writing that key bumps the registry generation, and the
serving view every worker publishes carries the ``experiment/`` keys:
``RunningExperiments.refresh`` parses them again only when the published view's
generation moved (the feedback endpoint calls it before a body with outcomes; the
assignment flusher on its tick), and otherwise costs one compare. It reads no registry:
the view was read for the snapshot already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from gateway.experiments.keys import RUNNING, current_key
from gateway.experiments.record import METRIC_KINDS, ExperimentMetric, RunningExperiment
from registry.models import RegistryView

logger = logging.getLogger("modelgate.experiments")


def _started_at(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise ValueError(f"started_at must be unix seconds or an ISO-8601 time, got {value!r}")


def _metric(value: Any) -> ExperimentMetric:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"a metric is {{'name': ..., 'kind': ...}}, got {value!r}")
    kind = value.get("kind")
    if kind not in METRIC_KINDS:
        raise ValueError(f"metric kind must be one of {', '.join(METRIC_KINDS)}, got {kind!r}")
    return ExperimentMetric(value["name"], kind)


def running_from_json(value: Any) -> RunningExperiment | None:
    """The running experiment a state value describes; None when it is not running.
    ValueError when the value is not such JSON."""
    if not isinstance(value, dict):
        raise ValueError("an experiment is a JSON object")
    if value.get("status") != RUNNING:
        return None
    exp_id, model, variants = value.get("id"), value.get("model"), value.get("variants")
    if not isinstance(exp_id, str) or not exp_id or not isinstance(model, str):
        raise ValueError("an experiment has a string 'id' and 'model'")
    if not isinstance(variants, dict) or not variants:
        raise ValueError("an experiment's 'variants' map versions to weights")
    weights = {}
    for version, weight in variants.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"the weight of variant {version} must be a number >= 0")
        weights[str(version)] = float(weight)
    metrics = value.get("metrics") or []
    if not isinstance(metrics, list):
        raise ValueError("an experiment's 'metrics' is a list")
    return RunningExperiment(
        id=exp_id,
        model=model,
        variants=MappingProxyType(weights),
        metrics=tuple(_metric(m) for m in metrics),
        started_at=_started_at(value.get("started_at")),
    )


def running_in(view: RegistryView) -> dict[str, RunningExperiment]:
    """Every model's running experiment in a serving view (a malformed state value is
    logged and skipped)."""
    out: dict[str, RunningExperiment] = {}
    for model_view in view.models:
        name = model_view.model.name
        value = view.states.get(current_key(name))
        if value is None:
            continue
        try:
            found = running_from_json(value)
        except ValueError as exc:
            logger.warning("ignoring the experiment state of %s: %s", name, exc)
            continue
        if found is not None and found.model == name:
            out[name] = found
    return out


class RunningExperiments:
    """The running experiments of the published view's generation (one per worker)."""

    def __init__(self, view: Callable[[], RegistryView | None]) -> None:
        self._view = view  # the publisher's, once the lifespan has started it
        self._by_model: Mapping[str, RunningExperiment] = MappingProxyType({})
        self._generation: int | None = None

    def get(self, model: str) -> RunningExperiment | None:
        return self._by_model.get(model)

    def all(self) -> Mapping[str, RunningExperiment]:
        return self._by_model

    async def refresh(self) -> None:
        """Parse the experiments again if the published view moved since the last time
        (async for its callers: a source that reads may replace this one)."""
        view = self._view()
        if view is None or view.generation == self._generation:
            return
        self._by_model = MappingProxyType(running_in(view))
        self._generation = view.generation
