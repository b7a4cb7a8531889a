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

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.admin.http import admin_actor, json_body
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.state import GatewayState


class RetrainingUnavailable(GatewayError):
    status = 503
    reason = "not_ready"


async def retraining(request: Request, state: GatewayState) -> dict[str, Any]:
    monitor = state.retraining
    if monitor is None:
        raise RetrainingUnavailable("the retraining monitor is not running")
    if request.method == "PUT":
        payload = await json_body(request)
        await monitor.set_overrides(
            request.path_params["name"], payload, actor=admin_actor(request)
        )
    return await monitor.report(request.path_params["name"])
