"""What the retraining monitor and the rollout controller read from the running server.

``retraining_inputs(state, config)`` builds the monitor's ``inputs(model, version)``:

* ``live_accuracy``: the feedback store's accuracy of the version over the last
  ``MODELGATE_RETRAIN_ACCURACY_WINDOW_S`` seconds (default one day), None below
  ``MODELGATE_RETRAIN_MIN_LABELS`` labelled predictions (default 100): a handful of labels
  must not decide that a model degraded;
* ``drift_score``: the largest feature PSI of the version's drift report (features with a
  verdict only, i.e. ``drift_min_samples`` values in the window), None without a window or
  a verdict;
* ``low_confidence_rate``: share of the window's predictions whose top probability is
  below the server's low-confidence threshold (0.6), None for a regressor or below
  ``drift_min_samples`` predictions (the same "enough rows" rule as the drift verdicts);
* ``estimated_accuracy``: the window's accuracy estimated from calibrated confidence
  (``gateway.monitoring.performance_estimate``), None without a stored calibration map or
  below ``drift_min_samples`` predictions;
* ``new_labelled_samples``: labels received for the model's predictions made since the
  version was trained (lineage ``training.date``), or registered when the date is unknown;
* ``trained_at`` is left to the monitor (lineage ``training.date``).

The window is this worker's (the leader's) ring buffer of the version; labels come from
the feedback store on ``state.feedback``. Either may be missing (a server built without
monitoring, a version not loaded here): the input is then None (0 new labels) and its
reason cannot fire, which the report shows as ``value: null``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.monitoring.drift import DEFAULT_MIN_SAMPLES, compute_drift
from gateway.monitoring.performance_estimate import Calibration
from gateway.monitoring.reference import Reference
from gateway.monitoring.window import PredictionWindow, WindowSnapshot
from gateway.retraining.policy import RetrainingInputs, training_date
from gateway.rollout.serving_source import flush_recorder
from gateway.settings import RetrainingSettings

if TYPE_CHECKING:
    from gateway.state import GatewayState

# defaults of the server's settings (``low_confidence``, ``drift_min_samples``)
LOW_CONFIDENCE = 0.6
DEFAULT_ACCURACY_WINDOW_S = 24 * 3600.0
DEFAULT_MIN_LABELS = 100

LabelsFn = Callable[[str, str, float], Awaitable[tuple[float | None, int]]]
InputsFn = Callable[[str, str], Awaitable[RetrainingInputs]]


@dataclass(frozen=True, slots=True)
class InputsConfig:
    accuracy_window_s: float = DEFAULT_ACCURACY_WINDOW_S
    min_labels: int = DEFAULT_MIN_LABELS

    @classmethod
    def from_settings(cls, settings: RetrainingSettings) -> InputsConfig:
        return cls(settings.accuracy_window_s, settings.min_labels)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def labels_source(state: GatewayState) -> LabelsFn:
    """``(model, version, since) -> (live accuracy | None, labelled rows)`` from the
    feedback store, looked up at each call (monitoring may attach it after the start)."""

    async def labels(model: str, version: str, since: float) -> tuple[float | None, int]:
        feedback = state.feedback
        if feedback is None:
            return None, 0
        accuracy, labelled = await _maybe_await(feedback.live_accuracy(model, version, since))
        return accuracy, int(labelled)

    return labels


def window_of(state: GatewayState, model: str, version: str) -> PredictionWindow | None:
    """The ring buffer monitoring bound on the version's recorder in this worker, with the
    recorder's pending requests flushed into it first."""
    route = state.holder.current.models.get(model)
    variant = None if route is None else route.variants.get(version)
    recorder = None if variant is None else variant.recorder
    window = getattr(recorder, "window", None)
    if not isinstance(window, PredictionWindow):
        return None
    flush_recorder(recorder)
    return window


def calibration_of(state: GatewayState, model: str, version: str) -> Calibration | None:
    """The calibration map monitoring bound on the version's recorder (None: not stored)."""
    route = state.holder.current.models.get(model)
    variant = None if route is None else route.variants.get(version)
    calibration = getattr(getattr(variant, "recorder", None), "calibration", None)
    return calibration if isinstance(calibration, Calibration) else None


def max_feature_psi(
    snapshot: WindowSnapshot, reference: Reference | Mapping[str, Any], min_samples: int
) -> float | None:
    """Largest PSI among the features the drift report could judge (enough samples)."""
    report = compute_drift(snapshot, reference, min_samples=min_samples)
    judged = [f.psi for f in report.features if f.drifted is not None and f.psi is not None]
    return max(judged) if judged else None


def low_confidence_rate(
    snapshot: WindowSnapshot, threshold: float, min_samples: int
) -> float | None:
    """Share of the window's predictions below ``threshold``; None under ``min_samples``."""
    confidence = snapshot.confidence[~np.isnan(snapshot.confidence)]
    if confidence.size < max(min_samples, 1):
        return None
    return float(np.mean(confidence < threshold))


def retraining_inputs(
    state: GatewayState, config: InputsConfig, *, clock: Callable[[], float] = time.time
) -> InputsFn:
    labels = labels_source(state)
    settings = state.settings
    threshold = float(getattr(settings, "low_confidence", LOW_CONFIDENCE))
    min_samples = int(getattr(settings, "drift_min_samples", DEFAULT_MIN_SAMPLES))

    async def inputs(model: str, version: str) -> RetrainingInputs:
        assert state.registry is not None
        mv = await state.registry.get_version(model, version)
        now = clock()
        accuracy, labelled = await labels(model, version, now - config.accuracy_window_s)
        if labelled < config.min_labels:
            accuracy = None
        drift = low = estimated = None
        window = window_of(state, model, version)
        if window is not None and len(window) > 0:
            # on the loop (the window is written there), bounded like the drift reports
            snapshot = window.snapshot(state.settings.drift_window_s)
            reference = window.reference  # parsed once, when the version was loaded
            drift = await asyncio.to_thread(max_feature_psi, snapshot, reference, min_samples)
            low = low_confidence_rate(snapshot, threshold, min_samples)
            calibration = calibration_of(state, model, version)
            if calibration is not None:
                estimate = calibration.check(snapshot, min_samples=min_samples)
                estimated = None if estimate.accuracy is None else estimate.accuracy.value
        trained = training_date(mv.lineage)
        since = trained if trained is not None else _created(mv.created_at)
        new_labels = await new_labels_since(state, model, since)
        return RetrainingInputs(
            live_accuracy=accuracy,
            drift_score=drift,
            low_confidence_rate=low,
            new_labelled_samples=new_labels,
            estimated_accuracy=estimated,
        )

    return inputs


def _created(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def new_labels_since(state: GatewayState, model: str, since: datetime | None) -> int:
    """Labels received for the model's predictions made since ``since`` (0 without a
    feedback store)."""
    feedback = state.feedback
    if feedback is None:
        return 0
    start = 0.0 if since is None else since.timestamp()
    return int(await _maybe_await(feedback.labelled_count(model, since=start)))
