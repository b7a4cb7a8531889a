"""Building blocks of the document's operations: parameters, bodies, responses."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "The client's `X-Request-Id`, else one the gateway made.",
    "schema": {"type": "string"},
}

DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    400: "Bad input",
    401: "Missing or invalid admin bearer token",
    404: "Unknown model or version",
    409: "Refused by the current state (e.g. a pinned version that nothing deploys)",
    413: "Request body too large (decoded size, for a compressed body)",
    415: "Content-Encoding other than gzip or deflate",
    503: "Not ready",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    }


def _optional_param(
    where: str, name: str, description: str, schema: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def header_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict:
    return _optional_param("header", name, description, schema)


def query_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict:
    return _optional_param("query", name, description, schema)


NAME = path_param("name", "Model name.")
VERSION = path_param("version", "Version (semver) or alias.")


def json_body(schema: dict[str, Any], *, required: bool = True, extra: dict | None = None) -> dict:
    content: dict[str, Any] = {JSON: {"schema": schema}}
    content.update(extra or {})
    return {"required": required, "content": content}


def error_responses(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": DESCRIPTIONS[status],
            "headers": {"X-Request-Id": REQUEST_ID_HEADER},
            "content": {JSON: {"schema": ref("Error")}},
        }
        for status in statuses
    }


def json_ok(schema: dict[str, Any], status: int = 200, headers: dict | None = None) -> dict:
    return {
        str(status): {
            "description": DESCRIPTIONS[status],
            "headers": {"X-Request-Id": REQUEST_ID_HEADER, **(headers or {})},
            "content": {JSON: {"schema": schema}},
        }
    }


def json_statuses(statuses: dict[int, str], schema: dict[str, Any]) -> dict[str, Any]:
    """Health probes: the status code is the answer, the JSON body says the same."""
    return {
        str(status): {
            "description": text,
            "headers": {"X-Request-Id": REQUEST_ID_HEADER},
            "content": {JSON: {"schema": schema}},
        }
        for status, text in statuses.items()
    }


def operation(
    op_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    admin: bool = False,
    description: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    if admin:
        op["security"] = BEARER
        responses = {**responses, **error_responses(401)}
    op["responses"] = responses
    return op
