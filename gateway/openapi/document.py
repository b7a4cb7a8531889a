"""The OpenAPI 3.1 document of every route the gateway serves.

``build_document()`` returns a fresh dict; ``tests/reliability/test_openapi_document.py``
checks it against the app's route table (same paths, same methods) and validates it.
"""

from __future__ import annotations

from typing import Any

from gateway.dataplane.endpoints.meta import SERVER_NAME, server_version
from gateway.openapi.paths_admin import admin_paths
from gateway.openapi.paths_console import console_paths
from gateway.openapi.paths_data import data_paths
from gateway.openapi.schemas import SCHEMAS

DESCRIPTION = (
    "Model-serving gateway: Open Inference Protocol V2 (JSON and binary tensors), simple "
    "JSON `/predict`, label feedback, Prometheus metrics, and the admin API (bearer "
    'token). Every refusal is `{"error": "..."}` with 400 (bad input), 401 (admin '
    "token), 404 (unknown model or version), 409 (refused by the current state, e.g. a "
    "pinned version nothing deploys), 413 (body too large), 415 (unsupported "
    "Content-Encoding) or 503 (not ready); never a 500 for anything a client sent. Every "
    "response of the data plane and the admin API carries `X-Request-Id`. Open Inference "
    "Protocol extensions: binary_tensor_data, classification, model_repository, statistics."
)


def build_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": SERVER_NAME, "version": server_version(), "description": DESCRIPTION},
        "tags": [
            {"name": name}
            for name in (
                "inference",
                "simple JSON",
                "feedback",
                "metadata",
                "health",
                "monitoring",
                "admin",
                "lifecycle",
                "repository",
                "console",
                "documentation",
            )
        ],
        "paths": {**data_paths(), **admin_paths(), **console_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "MODELGATE_ADMIN_TOKEN, else the token in <home>/admin-token.",
                }
            },
        },
    }
