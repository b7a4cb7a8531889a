"""``GET|PUT /admin/models/{name}/retraining``: the retraining decision and its settings.

GET -> 200 with the decision for the production version now, each of the five reasons
with its measured value, threshold and whether it fired, the policy in force and the
trigger's state (cooldown, last firing and the outcome of each target). 409 when the model
has no production version.

PUT (an addition to the contract's GET) stores per-model overrides, 200 with the new report::

    {"policy": {"min_accuracy_threshold": 0.9, "retraining_interval_days": 7},
     "cooldown_s": 3600}

The monitor is created by the app (``GatewayState.retraining``); 503 until it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.http import admin_actor
from gateway.admin.responses import json_response
from gateway.errors import GatewayError
from gateway.retraining.trigger import RetrainingMonitor
from gateway.rollout.api import failure_response, json_body
from registry.errors import RegistryError

if TYPE_CHECKING:
    from gateway.app import GatewayState


class RetrainingUnavailable(GatewayError):
    status = 503
    reason = "not_ready"


async def retraining_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    name = request.path_params["name"]
    try:
        state.auth.require(request)
        monitor: RetrainingMonitor | None = getattr(state, "retraining", None)
        if monitor is None:
            raise RetrainingUnavailable("the retraining monitor is not running")
        if request.method == "PUT":
            payload = await json_body(request)
            await monitor.set_overrides(name, payload, actor=admin_actor(request))
        return json_response(await monitor.report(name), request)
    except (GatewayError, RegistryError) as exc:
        return failure_response(request, exc)
