"""``GET /admin/models/{name}/health``: the lifecycle guide's health verdict per version.

Admin token required (401 first). Per loaded version (the default one first):
``ModelHealthMetrics`` over the version's window (``healthy`` + ``issues``, total
predictions, average confidence, low-confidence rate, class distribution and entropy,
p50/p95/p99 request latency in ms, error rate (5xx over requests answered in the window's
time span), feature drift score and drifted features, the thresholds in force), plus the
window, request and input-error (4xx) counts over the same span and the live quality from
label feedback (labelled count, accuracy, precision/recall or MAE). The model's
``healthy`` is true when every version is. Thresholds: ``MODELGATE_HEALTH_*`` and
``MODELGATE_LOW_CONFIDENCE``. 404 for an unknown model, 503 with monitoring off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.responses import json_response
from gateway.monitoring.reports import model_health

if TYPE_CHECKING:
    from gateway.app import GatewayState


async def health_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    state.auth.require(request)
    report = await model_health(state.monitoring, request.path_params["name"])
    return json_response(report, request)
