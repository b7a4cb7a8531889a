"""Drift and health reports of a model's loaded versions, and the cheap gauge values.

``model_drift`` / ``model_health`` build the bodies of ``GET /admin/models/{name}/drift``
and ``/health`` (and so of ``modelgate drift`` / ``health``): per loaded version, the
window snapshot is taken on the loop (the window is written there), the statistics run in
a worker thread (``compute_drift`` is ~50 ms for 30 features over 10,000 rows).

``gauge_psi`` is what the drift timer exports every few seconds: the same PSI values as
``compute_drift`` (numerical features from the window's incremental bin counts,
categorical features and predictions from bin counts of the snapshot) without the KS and
chi-squared tests, so a tick costs a snapshot copy (~3 ms) rather than the full report.

With ``MODELGATE_DRIFT_WINDOW_S`` set, every snapshot here keeps only the rows of the last
that many seconds (``PredictionWindow.snapshot(max_age_s)``); ``window`` in each body states
the window used: rows, their time span and the bound (``max_age_s``, None when off).

``label_free`` adds the multivariate check (PCA reconstruction error) to the drift report
and the health verdict, and the estimated accuracy (without labels) to the health report,
both computed in the same worker thread hop, for versions whose reference stores them.

With several workers each process reports its own window: a random share of the traffic.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.errors import GatewayError, ModelNotFound
from gateway.monitoring.drift import DriftReport, compute_drift, prediction_counts
from gateway.monitoring.health import ModelHealthMetrics
from gateway.monitoring.performance_estimate import PerformanceEstimate
from gateway.monitoring.psi_numba import psi_from_counts
from gateway.monitoring.reconstruction import MultivariateDrift
from gateway.monitoring.recorder import VariantRecorder
from gateway.monitoring.reference import Reference
from gateway.monitoring.stats import PSI_EPS, psi
from gateway.monitoring.window import WindowSnapshot

if TYPE_CHECKING:
    from gateway.monitoring.binder import Monitoring


class MonitoringOff(GatewayError):
    status = 503
    reason = "monitoring_off"


def require(monitoring: Monitoring | None) -> Monitoring:
    if monitoring is None:
        raise MonitoringOff("monitoring is off in this server (MODELGATE_MONITORING=off)")
    return monitoring


def window_info(snap: WindowSnapshot) -> dict[str, Any]:
    info: dict[str, Any] = {
        "size": snap.size,
        "capacity": snap.capacity,
        "recorded_total": snap.recorded_total,
        "time_span_s": snap.time_span_s,
        "max_age_s": snap.max_age_s or None,
        "oldest": None,
        "newest": None,
    }
    if snap.size:  # monotonic -> wall clock through the snapshot's paired readings
        offset = snap.taken_at_wall - snap.taken_at
        info["oldest"] = float(snap.times[0] + offset)
        info["newest"] = float(snap.times[-1] + offset)
    return info


async def drift_of(
    recorder: VariantRecorder, psi_threshold: float, min_samples: int, max_age_s: float = 0.0
) -> tuple[WindowSnapshot, DriftReport]:
    window = recorder.window
    assert window is not None
    recorder.flush()
    snap = window.snapshot(max_age_s)
    report = await asyncio.to_thread(
        compute_drift,
        snap,
        window.reference,
        psi_threshold=psi_threshold,
        min_samples=min_samples,
    )
    return snap, report


def label_free(
    recorder: VariantRecorder, snap: WindowSnapshot, min_samples: int
) -> tuple[MultivariateDrift | None, PerformanceEstimate | None]:
    """The multivariate check and the estimated performance of a snapshot; None where the
    version has no stored model (registered before them, a regressor, no labels)."""
    model, calibration = recorder.reconstruction, recorder.calibration
    multivariate = model.check(snap, min_samples=min_samples) if model is not None else None
    estimate = None
    if calibration is not None and recorder.classification:
        estimate = calibration.check(snap, min_samples=min_samples)
    return multivariate, estimate


def _versions(monitoring: Monitoring, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(version, role) of every loaded version, the default (primary) one first."""
    route = monitoring.holder.current.models.get(name)
    if route is None:
        raise ModelNotFound(f"unknown model '{name}'")
    total = sum(route.weights)
    weights: dict[str, float] = {}
    for variant, weight in zip(route.routes, route.weights, strict=True):
        weights[variant.version] = weights.get(variant.version, 0.0) + weight
    shadows = {target.variant.version for target in route.shadows}
    primary = route.primary.version if route.primary is not None else None
    order = sorted(route.variants, key=lambda v: (v != primary, v))
    return [
        (
            version,
            {
                "primary": version == primary,
                "weight": 100.0 * weights.get(version, 0.0) / total if total > 0 else 0.0,
                "challenger": route.challenger is not None and route.challenger.version == version,
                "shadow": version in shadows,
            },
        )
        for version in order
    ]


async def model_drift(monitoring: Monitoring | None, name: str) -> dict[str, Any]:
    mon = require(monitoring)
    settings = mon.settings
    out = []
    for version, role in _versions(mon, name):
        recorder = mon.recorder(name, version)
        if recorder is None or recorder.window is None:
            continue
        snap, report = await drift_of(
            recorder,
            settings.drift_psi_threshold,
            settings.drift_min_samples,
            settings.drift_window_s,
        )
        entry = {"version": version, **role, "window": window_info(snap)}
        entry["share_drifted"] = report.drift_score
        entry.update(report.to_dict())
        multivariate, _ = await asyncio.to_thread(
            label_free, recorder, snap, settings.drift_min_samples
        )
        entry["multivariate"] = None if multivariate is None else multivariate.to_dict()
        out.append(entry)
    return {"model": name, "versions": out}


async def model_health(monitoring: Monitoring | None, name: str) -> dict[str, Any]:
    mon = require(monitoring)
    out = []
    for version, role in _versions(mon, name):
        recorder = mon.recorder(name, version)
        if recorder is None or recorder.window is None:
            continue
        entry = {"version": version, **role, **(await version_health(mon, recorder))}
        out.append(entry)
    healthy = all(v["healthy"] for v in out) if out else None
    return {"model": name, "healthy": healthy, "versions": out}


async def version_health(monitoring: Monitoring, recorder: VariantRecorder) -> dict[str, Any]:
    settings = monitoring.settings
    snap, drift = await drift_of(
        recorder, settings.drift_psi_threshold, settings.drift_min_samples, settings.drift_window_s
    )
    if snap.size:
        since = float(snap.times[0])
    else:  # no row: every request counts, or those of the time bound
        since = snap.taken_at - snap.max_age_s if snap.max_age_s else -math.inf
    multivariate, estimate = await asyncio.to_thread(
        label_free, recorder, snap, settings.drift_min_samples
    )
    latencies, ok, server, client = recorder.request_stats(since)
    attempted = ok + server + client
    health = ModelHealthMetrics.from_window(
        replace(snap, latency_s=latencies),  # per request, not per row
        drift=drift,
        errors=server,
        requests=attempted,
        classes=recorder.signature.classes if recorder.classification else None,
        thresholds=monitoring.thresholds,
        multivariate=multivariate,
    )
    entry = health.to_dict()
    entry["window"] = window_info(snap)
    entry["requests"] = attempted
    entry["server_errors"] = server
    entry["input_errors"] = client
    entry["input_error_rate"] = client / attempted if attempted else 0.0
    tables = monitoring.feedback.get(recorder.model)
    entry["feedback"] = (
        tables.quality(recorder.version, last=monitoring.feedback.window)
        if tables is not None
        else {"labelled": 0}
    )
    performance = None if estimate is None else estimate.to_dict()
    if performance is not None:  # beside the realized accuracy, when labels exist
        performance["realized_accuracy"] = entry["feedback"].get("accuracy")
    entry["estimated_performance"] = performance
    return entry


def gauge_psi(snap: WindowSnapshot, reference: Reference) -> tuple[dict[str, float], float | None]:
    """({feature: PSI}, prediction PSI) as ``compute_drift`` computes them (None / absent
    where it has nothing to compare)."""
    out: dict[str, float] = {}
    if snap.numeric_features:
        by_name = {f.name: i for i, f in enumerate(reference.numerical)}
        idx = [by_name[name] for name in snap.numeric_features]
        values = psi_from_counts(snap.counts, reference.expected[idx], PSI_EPS)
        for name, value in zip(snap.numeric_features, values.tolist(), strict=True):
            if not math.isnan(value):
                out[name] = value
    specs = {f.name: f for f in reference.categorical}
    for j, name in enumerate(snap.categorical_features):
        spec = specs[name]
        other = len(spec.categories)
        observed = np.bincount(np.clip(snap.categorical[:, j], 0, other), minlength=other + 1)
        n = int(observed.sum())
        if n:
            out[name] = psi(np.append(spec.frequencies, 0.0), observed / n)
    return out, _prediction_psi(snap, reference)


def _prediction_psi(snap: WindowSnapshot, reference: Reference) -> float | None:
    counts = prediction_counts(snap, reference)
    if counts is None or not counts[2]:
        return None
    expected, observed, n = counts
    return psi(expected, observed / n)
