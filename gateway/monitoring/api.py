"""Monitoring's admin endpoints: drift, health and shadow reports of one model.

Handlers for ``gateway.admin.http.admin_endpoint`` (admin token first, 401 before anything
else). Each reports this worker's windows: with several workers (or nodes) each sees a
share of the traffic, so every answer says whose window it is: ``"scope": "this worker"``,
``"node"`` (the host name: the pod name on Kubernetes) and ``"worker"`` (the process id).
Aggregate across workers and nodes with the Prometheus metrics.

``GET /admin/models/{name}/drift``: per loaded version (the default one first) its role in
the routing (primary, weight, challenger, shadow), the window (size, capacity, rows
recorded ever, time span, oldest/newest as Unix seconds) and ``DriftReport.to_dict()``: per
feature PSI, KS statistic and p-value (numerical) or chi-squared statistic, p-value and
degrees of freedom (categorical), ``drifted`` (PSI >= ``MODELGATE_DRIFT_PSI_THRESHOLD``, no
verdict below ``MODELGATE_DRIFT_MIN_SAMPLES`` values), ``share_drifted`` (= ``drift_score``),
prediction drift and confidence PSI.

``GET /admin/models/{name}/health``: per loaded version ``ModelHealthMetrics`` over its
window (``healthy`` + ``issues``, predictions, average confidence, low-confidence rate,
class distribution and entropy, p50/p95/p99 latency in ms, error rate (5xx over requests
answered in the window's span), drift score and drifted features, the thresholds in
force), plus request and input-error counts over the same span and the live quality from
label feedback. The model is ``healthy`` when every version is. Thresholds:
``MODELGATE_HEALTH_*`` and ``MODELGATE_LOW_CONFIDENCE``.

``GET /admin/models/{name}/shadow``: shadow comparison statistics (agreement, mean
absolute difference, dropped copies), the mirror's queue and load errors.

404 for an unknown model; drift and health answer 503 with monitoring off.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.errors import ModelNotFound
from gateway.monitoring.reports import model_drift, model_health

if TYPE_CHECKING:
    from gateway.state import GatewayState


SCOPE = "this worker"


def window_scope() -> dict[str, Any]:
    """Whose window a report describes: this worker process of this node."""
    return {"scope": SCOPE, "node": socket.gethostname(), "worker": os.getpid()}


async def drift(request: Request, state: GatewayState) -> dict[str, Any]:
    report = await model_drift(state.monitoring, request.path_params["name"])
    return {**report, **window_scope()}


async def health(request: Request, state: GatewayState) -> dict[str, Any]:
    report = await model_health(state.monitoring, request.path_params["name"])
    return {**report, **window_scope()}


async def shadow(request: Request, state: GatewayState) -> dict[str, Any]:
    return {**shadow_report(state, request.path_params["name"]), **window_scope()}


def shadow_report(state: GatewayState, name: str) -> dict[str, Any]:
    route = state.holder.current.models.get(name)
    if route is None:
        raise ModelNotFound(f"unknown model '{name}'")
    active = {target.variant.version: target.sample for target in route.shadows}
    shadows = []
    for stats in state.mirror.stats_of(name):
        entry = stats.summary()
        entry["sample"] = active.get(stats.version)
        entry["active"] = stats.version in active
        shadows.append(entry)
    failures = state.publisher.failures if state.publisher is not None else {}
    return {
        "model": name,
        "primary": route.primary.version if route.primary is not None else None,
        "shadows": shadows,
        "queue": {"size": state.mirror.queued, "capacity": state.mirror.maxsize},
        "load_errors": {v: reason for (m, v), reason in sorted(failures.items()) if m == name},
    }
