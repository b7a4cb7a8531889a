"""The operator console: its HTML pages, static files and the JSON behind each page."""

from __future__ import annotations

from typing import Any

from gateway.openapi.operations import NAME, error_responses, json_ok, operation, path_param

HTML_OK = {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}}
PAGE_DATA = {
    "type": "object",
    "required": ["data", "html"],
    "properties": {
        "data": {"type": "object", "description": "What the page shows, as JSON."},
        "html": {
            "type": "object",
            "description": "The same, rendered: escaped HTML fragments by element id.",
            "additionalProperties": {"type": "string"},
        },
    },
}
STATIC_TYPES = ("text/javascript", "text/css", "image/svg+xml")


def console_paths() -> dict[str, Any]:
    static_ok = {
        "200": {
            "description": "OK",
            "content": {kind: {"schema": {"type": "string"}} for kind in STATIC_TYPES},
        }
    }
    return {
        "/console": {
            "get": operation(
                "consoleOverview",
                "Operator console: every model (the page fetches its data with the token)",
                "console",
                HTML_OK,
            )
        },
        "/console/models/{name}": {
            "get": operation(
                "consoleModel",
                "Operator console: one model, with the actions",
                "console",
                {**HTML_OK, **error_responses(404, 503)},
                parameters=[NAME],
            )
        },
        "/console/static/{file}": {
            "get": operation(
                "consoleStatic",
                "The console's script, stylesheet and icon (shipped in the package)",
                "console",
                {**static_ok, **error_responses(404)},
                parameters=[path_param("file", "File name, e.g. console.js.")],
            )
        },
        "/console/api/overview": {
            "get": operation(
                "consoleOverviewData",
                "The overview's data and fragments (token unless MODELGATE_CONSOLE_PUBLIC=on)",
                "console",
                {**json_ok(PAGE_DATA), **error_responses(503)},
                admin=True,
            )
        },
        "/console/api/models/{name}": {
            "get": operation(
                "consoleModelData",
                "One model page's data and fragments (token unless MODELGATE_CONSOLE_PUBLIC=on)",
                "console",
                {**json_ok(PAGE_DATA), **error_responses(404, 503)},
                parameters=[NAME],
                admin=True,
            )
        },
    }
