"""``GET /admin/models/{name}/drift``: drift of every loaded version's live window.

Admin token required (401 first). Per version (the default one first): its role in the
routing (primary, weight, challenger, shadow), the window (size, capacity, rows recorded
ever, time span, oldest/newest as Unix seconds) and ``DriftReport.to_dict()``: per feature
PSI, KS statistic and p-value (numerical) or chi-squared statistic, p-value and degrees
of freedom (categorical), ``drifted`` (PSI >= ``MODELGATE_DRIFT_PSI_THRESHOLD``, no verdict
below ``MODELGATE_DRIFT_MIN_SAMPLES`` values), ``share_drifted`` (= ``drift_score``),
prediction drift and confidence PSI. 404 for an unknown model, 503 with monitoring off.
The window is this worker's (a random share of the traffic with several workers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.responses import json_response
from gateway.monitoring.reports import model_drift

if TYPE_CHECKING:
    from gateway.app import GatewayState


async def drift_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    state.auth.require(request)
    report = await model_drift(state.monitoring, request.path_params["name"])
    return json_response(report, request)
