"""Data-plane operations: Open Inference Protocol V2, simple JSON, feedback, metrics."""

from __future__ import annotations

from typing import Any

from gateway.openapi.operations import (
    JSON,
    NAME,
    VERSION,
    error_responses,
    header_param,
    json_body,
    json_ok,
    operation,
    ref,
    status_only,
)

ROUTING_HEADERS = [
    header_param("X-Request-Id", "Echoed; becomes the response id when the body has none."),
    header_param("X-Model-Version", "Route to this version (after a version in the URL)."),
    header_param(
        "X-Use-Challenger", "`true` routes to the configured challenger.", {"type": "string"}
    ),
    header_param("X-Routing-Key", "Sticky routing key (stable hash over the weights)."),
]
HEADER_LENGTH = header_param(
    "Inference-Header-Content-Length",
    "Binary tensor data extension: the byte length of the JSON header that starts the body.",
    {"type": "string", "pattern": "^[0-9]{1,18}$"},
)
MODEL_VERSION_HEADER = {
    "description": "The version that answered.",
    "schema": {"type": "string"},
}
BINARY_NOTE = (
    "With the binary tensor data extension (Triton/KServe clients) the body is a JSON "
    "header of `Inference-Header-Content-Length` bytes followed by raw little-endian tensor "
    "bytes (`parameters.binary_data_size` per input, in input order; BYTES elements are a "
    "4-byte length + bytes). `parameters.binary_data_output` or an output's "
    "`parameters.binary_data` asks for binary outputs, answered the same way with an "
    "`Inference-Header-Content-Length` response header."
)
INFER_ERRORS = (400, 404, 413, 503)


def _infer(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ok = json_ok(ref("InferenceResponse"), headers={"X-Model-Version": MODEL_VERSION_HEADER})
    ok["200"]["content"]["application/octet-stream"] = {
        "schema": {"type": "string", "format": "binary"}
    }
    return operation(
        op_id,
        summary,
        "inference",
        {**ok, **error_responses(*INFER_ERRORS)},
        parameters=[*params, *ROUTING_HEADERS, HEADER_LENGTH],
        body=json_body(
            ref("InferenceRequest"),
            extra={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        ),
        description=BINARY_NOTE,
    )


def _predict(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ok = json_ok(ref("PredictResponse"), headers={"X-Model-Version": MODEL_VERSION_HEADER})
    return operation(
        op_id,
        summary,
        "simple JSON",
        {**ok, **error_responses(*INFER_ERRORS)},
        parameters=[*params, *ROUTING_HEADERS],
        body=json_body(ref("PredictRequest")),
    )


def _metadata(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ok = json_ok(ref("ModelMetadata"), headers={"X-Model-Version": MODEL_VERSION_HEADER})
    return operation(
        op_id,
        summary,
        "metadata",
        {**ok, **error_responses(404, 503)},
        parameters=params,
    )


def _readiness(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    responses = {
        **status_only({200: "Loaded", 503: "Known but not loaded"}),
        **error_responses(404),
    }
    return operation(op_id, summary, "health", responses, parameters=params)


def data_paths() -> dict[str, Any]:
    versioned = [NAME, VERSION]
    return {
        "/v2/health/live": {
            "get": operation(
                "serverLive", "The process answers", "health", status_only({200: "Live"})
            )
        },
        "/v2/health/ready": {
            "get": operation(
                "serverReady",
                "Every served model has a loaded primary version",
                "health",
                status_only({200: "Ready", 503: "Not ready"}),
            )
        },
        "/v2": {
            "get": operation(
                "serverMetadata",
                "Server name, version and extensions",
                "metadata",
                json_ok(ref("ServerMetadata")),
            )
        },
        "/v2/models/{name}": {
            "get": _metadata("modelMetadata", "Metadata of the production version", [NAME])
        },
        "/v2/models/{name}/ready": {
            "get": _readiness("modelReady", "Readiness of the model", [NAME])
        },
        "/v2/models/{name}/versions/{version}": {
            "get": _metadata("modelVersionMetadata", "Metadata of one version", versioned)
        },
        "/v2/models/{name}/versions/{version}/ready": {
            "get": _readiness("modelVersionReady", "Readiness of one version", versioned)
        },
        "/v2/models/{name}/infer": {
            "post": _infer("modelInfer", "Inference, routed (canary, sticky, header)", [NAME])
        },
        "/v2/models/{name}/versions/{version}/infer": {
            "post": _infer("modelVersionInfer", "Inference pinned to a version", versioned)
        },
        "/predict/{name}": {"post": _predict("predict", "Simple JSON prediction, routed", [NAME])},
        "/predict/{name}/versions/{version}": {
            "post": _predict("predictVersion", "Simple JSON prediction, pinned", versioned)
        },
        "/v2/models/{name}/feedback": {
            "post": operation(
                "feedback",
                "Labels for earlier predictions (live accuracy)",
                "feedback",
                {**json_ok(ref("FeedbackResult")), **error_responses(400, 404, 413, 503)},
                parameters=[NAME],
                body=json_body(
                    {
                        "anyOf": [
                            ref("FeedbackItem"),
                            {"type": "array", "items": ref("FeedbackItem")},
                        ]
                    }
                ),
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus text exposition",
                "monitoring",
                {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "documentation",
                {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}},
            )
        },
        "/docs": {
            "get": operation(
                "docs",
                "An HTML listing of this document's operations",
                "documentation",
                {
                    "200": {
                        "description": "OK",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
    }
