"""What the console pages show, gathered in one call per page from the admin API's views.

``overview`` is every model's summary (production, traffic split, health verdict with its
reasons, drifted feature count, live accuracy, rollout step); ``model_detail`` is one
model's versions, traffic, drift, confidence histograms, shadow comparison, rollout checks,
its A/B experiment (per-variant numbers and verdict) and recent audit rows. Both read the
same registry views, monitoring reports and rollout state as the admin endpoints; they run
only when a console page asks (never on the request path), and report this worker's
monitoring windows like ``/admin/models/{name}/health``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.admin.http import registry_of
from gateway.admin.models import model_view, worker_view
from gateway.errors import ModelNotFound
from gateway.experiments.api import experiment_view
from gateway.experiments.keys import current_key
from gateway.experiments.store import parse_record
from gateway.monitoring.api import shadow_report
from gateway.monitoring.reports import MonitoringOff, model_drift, model_health
from gateway.monitoring.stats import proportions
from gateway.rollout.api import rollouts_of
from gateway.serving.model_state import read_all_states, read_model_state

if TYPE_CHECKING:
    from gateway.monitoring.binder import Monitoring
    from gateway.rollout.state import RolloutState
    from gateway.state import GatewayState

AUDIT_ROWS = 20
# PSI at or above this is "watch" (amber); the drift threshold (red) comes from settings
PSI_WATCH = 0.1


def traffic_split(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The routed versions with their effective weight in percent, production first."""
    routed = [v for v in view["versions"] if v["weight"] > 0]
    routed.sort(key=lambda v: (v["version"] != view["production_version"], v["version"]))
    return [{"version": v["version"], "weight": v["weight"]} for v in routed]


async def _optional(report: Any) -> dict[str, Any] | None:
    """A monitoring report, or None when monitoring is off or the model is not served."""
    try:
        return await report
    except (MonitoringOff, ModelNotFound):
        return None


def health_summary(health: dict[str, Any] | None) -> dict[str, Any]:
    """The model's verdict, its reasons (``version: issue``), the primary's drift and
    live accuracy."""
    if health is None:
        return {"healthy": None, "reasons": ["monitoring is off or the model is not served"]}
    versions = health["versions"]
    primary = next((v for v in versions if v.get("primary")), versions[0] if versions else None)
    reasons = [f"{v['version']}: {issue}" for v in versions for issue in v.get("issues", [])]
    if health["healthy"] is None:
        reasons.append("no version is loaded with a monitoring window")
    feedback = (primary or {}).get("feedback") or {}
    return {
        "healthy": health["healthy"],
        "reasons": reasons,
        "drifted_features": list((primary or {}).get("drifted_features") or []),
        "predictions": (primary or {}).get("total_predictions", 0),
        "labelled": feedback.get("labelled", 0),
        "accuracy": feedback.get("accuracy"),
        "mae": feedback.get("mae"),
    }


def rollout_summary(rollout: RolloutState | None) -> dict[str, Any] | None:
    if rollout is None:
        return None
    described = rollout.describe()
    last = rollout.history[-1] if rollout.history else None
    return {
        "status": rollout.status,
        "running": rollout.running,
        "candidate": rollout.spec.candidate,
        "champion": rollout.spec.champion,
        "step": described["progress"]["step"],
        "steps": described["progress"]["steps"],
        "canary_weight": rollout.weight,
        "step_weights": list(rollout.spec.steps),
        "failures": rollout.failures,
        "max_failed_checks": rollout.spec.max_failed_checks,
        "reason": rollout.reason,
        "created_at": rollout.created_at,
        "created_by": rollout.created_by,
        "updated_at": rollout.updated_at,
        "last_analysis": last,
    }


async def overview(state: GatewayState) -> dict[str, Any]:
    registry = registry_of(state)
    rollouts = rollouts_of(state)
    models = []
    for ms in await read_all_states(registry):
        view = model_view(state, ms)
        health = await _optional(model_health(state.monitoring, ms.name))
        models.append(
            {
                "name": ms.name,
                "description": view["description"],
                "production_version": ms.production,
                "rollback_target": ms.rollback_target,
                "versions": len(ms.versions),
                "unloaded": ms.unloaded,
                "traffic": traffic_split(view),
                "shadows": view["traffic"]["shadow"],
                "health": health_summary(health),
                "rollout": rollout_summary(await rollouts.load(ms.name)),
            }
        )
    return {"models": models, "worker": worker_view(state)}


def confidence_histograms(monitoring: Monitoring | None, name: str) -> list[dict[str, Any]]:
    """Per loaded version: the window's top-probability shares against the reference's,
    on the reference's bins (regressors and references without confidence have none)."""
    if monitoring is None:
        return []
    route = monitoring.holder.current.models.get(name)
    if route is None:
        return []
    out = []
    for version in sorted(route.variants):
        recorder = monitoring.recorder(name, version)
        if recorder is None or recorder.window is None:
            continue
        window = recorder.window
        edges = window.reference.confidence_edges
        expected = window.reference.confidence_proportions
        if edges is None or expected is None:
            continue
        recorder.flush()
        snap = window.snapshot(monitoring.settings.drift_window_s)
        observed = proportions(edges, snap.confidence)
        out.append(
            {
                "version": version,
                "n": int(np.count_nonzero(~np.isnan(snap.confidence))),
                "edges": [float(x) for x in edges],
                "reference": [float(x) for x in expected],
                "observed": [None if math.isnan(x) else float(x) for x in observed],
            }
        )
    return out


def shadow_or_none(state: GatewayState, name: str) -> dict[str, Any] | None:
    try:
        return shadow_report(state, name)
    except ModelNotFound:
        return None


async def model_detail(state: GatewayState, name: str) -> dict[str, Any]:
    registry = registry_of(state)
    ms = await read_model_state(registry, name)  # 404 for an unknown model
    view = model_view(state, ms)
    health = await _optional(model_health(state.monitoring, name))
    drift = await _optional(model_drift(state.monitoring, name))
    rollout = await rollouts_of(state).load(name)
    experiment = parse_record(name, await registry.get_state(current_key(name)))
    audit = await registry.audit(model=name, limit=AUDIT_ROWS)
    settings = state.settings
    return {
        "model": view,
        "traffic_split": traffic_split(view),
        "health": health,
        "health_summary": health_summary(health),
        "drift": drift,
        "psi_thresholds": {"watch": PSI_WATCH, "drift": settings.drift_psi_threshold},
        "confidence": confidence_histograms(state.monitoring, name),
        "shadow": shadow_or_none(state, name),
        "rollout": rollout_summary(rollout),
        "experiment": None if experiment is None else experiment_view(experiment),
        "audit": [dataclasses.asdict(entry) for entry in audit],
        "worker": worker_view(state),
    }
