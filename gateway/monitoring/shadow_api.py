"""``GET /admin/models/{name}/shadow``: shadow comparison statistics for one model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.responses import json_response
from gateway.errors import ModelNotFound

if TYPE_CHECKING:
    from gateway.app import GatewayState


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


async def shadow_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    state.auth.require(request)
    return json_response(shadow_report(state, request.path_params["name"]), request)
