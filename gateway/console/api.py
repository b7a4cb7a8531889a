"""``GET /console/api/overview`` and ``/console/api/models/{name}``: one call per page refresh.

Each answers ``{"data": ..., "html": {element id: fragment}}``: the aggregated JSON (for
scripts and tests) and the same data rendered as escaped HTML, which the page's script
swaps into place. Bound through ``admin_endpoint`` (admin token first) unless
``MODELGATE_CONSOLE_PUBLIC=on``, which serves this read-only data without the token; every
action of the console goes to the admin API itself and always needs the token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.http import Handler, admin_endpoint, error_for
from gateway.admin.responses import json_response
from gateway.console.data import model_detail, overview
from gateway.console.render import model_fragments, overview_html
from gateway.errors import GatewayError
from registry.errors import RegistryError

if TYPE_CHECKING:
    from gateway.state import GatewayState

# console data is live: no cache may keep it, and no page may frame it
NO_STORE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


async def overview_data(request: Request, state: GatewayState) -> Response:
    data = await overview(state)
    return json_response(
        {"data": data, "html": {"models": overview_html(data)}}, request, 200, NO_STORE
    )


async def model_data(request: Request, state: GatewayState) -> Response:
    data = await model_detail(state, request.path_params["name"])
    return json_response({"data": data, "html": model_fragments(data)}, request, 200, NO_STORE)


def console_endpoint(
    handler: Handler, state: GatewayState
) -> Callable[[Request], Awaitable[Response]]:
    """``admin_endpoint(handler)``; without the token check when the console is public."""
    if not state.settings.console_public:
        return admin_endpoint(handler, state)

    async def endpoint(request: Request) -> Response:
        try:
            result: Any = await handler(request, state)
        except (GatewayError, RegistryError) as exc:
            return error_for(request, exc)
        return result if isinstance(result, Response) else json_response(result, request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
