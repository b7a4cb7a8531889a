"""Plumbing shared by the admin endpoints: bearer auth, JSON bodies, errors with details.

Every admin endpoint is an ``async def handler(request, state)`` wrapped by
``admin_endpoint``: the token is checked first (401 before anything else, even for an
unknown model), the handler's return value is sent as JSON, and every refusal becomes
``{"error": "...", **details}`` with the status of ``gateway.admin.statuses.status_for``. A registry
failure without a status of its own (a busy database) is a 503 that says why, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.responses import json_response
from gateway.admin.statuses import status_for
from gateway.errors import GatewayError, InputError, ModelNotReady
from registry.errors import RegistryError, SchemaError

if TYPE_CHECKING:
    from gateway.state import GatewayState
    from registry.sqlite.store import SqliteRegistry

MAX_BODY = 64 * 1024
# the audit actor of admin API changes (``rollout.external_rollbacks`` tells them from the CLI's)
API_ACTOR = "admin-api"

Handler = Callable[[Request, "GatewayState"], Awaitable[Any]]


def admin_actor(request: Request) -> str:
    """Who acts, for the audit log: ``admin-api:<X-Actor>`` when the client names itself."""
    named = (request.headers.get("x-actor") or "").strip()[:100]
    return f"{API_ACTOR}:{named}" if named else API_ACTOR


async def json_body(request: Request) -> Any:
    """The body as any JSON value; an empty or oversized body is a 400."""
    payload = await _json_or_none(request)
    if payload is None:
        raise InputError("empty body: expected a JSON object")
    return payload


async def _json_or_none(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InputError(f"request body larger than {MAX_BODY} bytes")
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}") from None


async def optional_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``; anything else is a 400."""
    payload = await _json_or_none(request)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InputError("the body must be a JSON object")
    return payload


async def json_object(request: Request) -> dict[str, Any]:
    payload = await optional_json_object(request)
    if not payload:
        raise InputError("empty body: expected a JSON object")
    return payload


def text_field(payload: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = payload.get(key)
    if value is None:
        if required:
            raise InputError(f"missing {key!r}")
        return ""
    if not isinstance(value, str):
        raise InputError(f"{key} must be a string, got {value!r}")
    if required and not value.strip():
        raise InputError(f"{key} must not be empty")
    return value.strip()


def bool_field(payload: dict[str, Any], key: str) -> bool:
    value = payload.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{key} must be true or false, got {value!r}")
    return value


def check_fields(payload: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def registry_of(state: GatewayState) -> SqliteRegistry:
    if state.registry is None:
        raise ModelNotReady("the gateway is starting: the registry is not open yet")
    return state.registry


def error_for(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    if status == 500 and isinstance(exc, RegistryError) and not isinstance(exc, SchemaError):
        status = 503  # "database is busy" and the like: say why, the client may retry
    message = "internal server error" if status == 500 else str(exc)
    body: dict[str, Any] = {"error": message}
    details = getattr(exc, "details", None)
    if isinstance(details, dict):
        body.update(details)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return json_response(body, request, status, headers)


def admin_endpoint(
    handler: Handler, state: GatewayState
) -> Callable[[Request], Awaitable[Response]]:
    """Bind ``handler(request, state)``: auth first, JSON out, errors as ``{"error": ...}``.

    The one place where the admin token is checked: every admin route goes through here."""

    async def endpoint(request: Request) -> Response:
        try:
            state.auth.require(request)
            result = await handler(request, state)
        except (GatewayError, RegistryError) as exc:
            return error_for(request, exc)
        if isinstance(result, Response):
            return result
        return json_response(result, request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
