"""Open Inference Protocol model repository extension (admin bearer token required).

* ``POST /v2/repository/index`` (empty body or ``{"ready": true}``): every registered
  version with its state, READY when it is loaded here, else UNAVAILABLE and why.
* ``POST /v2/repository/models/{name}/load`` / ``.../unload``: set or clear the model's
  "unloaded" flag in the registry (one audited write, so every worker converges through
  the generation watcher), then refresh this worker at once. A loaded model serves what
  its stages and traffic say; an unloaded one answers 503 until it is loaded again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from gateway.errors import InputError, ModelNotFound, ModelNotReady
from gateway.serving.model_state import unloaded_key
from gateway.serving.publisher import Publisher

if TYPE_CHECKING:
    from gateway.state import GatewayState
    from registry.sqlite.store import SqliteRegistry

ACTOR = "repository-api"


def _serving(state: GatewayState) -> tuple[SqliteRegistry, Publisher]:
    if state.publisher is None or state.registry is None:
        raise ModelNotReady("the gateway is starting")
    return state.registry, state.publisher


async def index(request: Request, state: GatewayState) -> list[dict[str, Any]]:
    _registry, publisher = _serving(state)
    raw = await request.body()
    ready_only = False
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InputError("request body must be a JSON object")
        ready_only = body.get("ready", False)
        if type(ready_only) is not bool:
            raise InputError(f"'ready' must be true or false, got {type(ready_only).__name__}")
    failures = publisher.failures
    entries: list[dict[str, Any]] = []
    for name, route in sorted(state.holder.current.models.items()):
        for version in sorted(route.known_versions):
            if version in route.variants:
                entries.append({"name": name, "version": version, "state": "READY", "reason": ""})
            elif not ready_only:
                reason = failures.get((name, version)) or (
                    "model unloaded through the repository API"
                    if not route.served and not route.variants
                    else "not needed by the model's stages or traffic"
                )
                entries.append(
                    {"name": name, "version": version, "state": "UNAVAILABLE", "reason": reason}
                )
    return entries


async def _set_unloaded(request: Request, state: GatewayState, unloaded: bool) -> dict[str, Any]:
    registry, publisher = _serving(state)
    name = request.path_params["name"]
    if name not in {m.name for m in await registry.list_models()}:
        raise ModelNotFound(f"unknown model '{name}'")
    action = "unload" if unloaded else "load"
    await registry.put_state(
        unloaded_key(name), unloaded, actor=ACTOR, reason=f"repository {action}"
    )
    snapshot = await publisher.refresh()
    route = snapshot.models.get(name)
    if not unloaded and (route is None or route.primary is None):
        errors = {v: r for (m, v), r in publisher.failures.items() if m == name}
        raise ModelNotReady(f"model '{name}' could not be loaded: {errors or 'no version'}")
    return {}


async def load(request: Request, state: GatewayState) -> dict[str, Any]:
    return await _set_unloaded(request, state, False)


async def unload(request: Request, state: GatewayState) -> dict[str, Any]:
    return await _set_unloaded(request, state, True)
