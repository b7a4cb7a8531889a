"""JSON responses for the control plane (admin API, error handlers), orjson-encoded.

Every response carries ``X-Request-Id``: the client's, else a fresh one.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import HTTPConnection
from starlette.responses import Response

from gateway.dataplane.http.asgi import new_request_id

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def request_id(connection: HTTPConnection) -> str:
    return connection.headers.get("x-request-id") or new_request_id()


def json_response(
    data: Any,
    connection: HTTPConnection,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    all_headers = {"x-request-id": request_id(connection)}
    if headers:
        all_headers.update(headers)
    return Response(
        orjson.dumps(data, option=_OPTIONS),
        status_code=status,
        headers=all_headers,
        media_type="application/json",
    )


def error_response(
    message: str, connection: HTTPConnection, status: int, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": message}, connection, status, headers)
