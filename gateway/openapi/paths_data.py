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
    json_statuses,
    operation,
    ref,
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
CODING_HEADERS = [
    header_param(
        "Content-Encoding",
        "The body's coding: `gzip` or `deflate` (zlib; raw deflate accepted). Its decoded "
        "size counts against the body limit (413); any other coding is a 415.",
        {"type": "string", "examples": ["gzip", "deflate", "identity"]},
    ),
    header_param(
        "Accept-Encoding",
        "With `gzip` (or `deflate`) a reply of 1 KiB or more comes compressed, with "
        "`Content-Encoding` and `Vary: Accept-Encoding`.",
    ),
]
CODING_NOTE = (
    "A `Content-Encoding: gzip` or `deflate` body is decoded first (its decoded size counts "
    "against the body limit); any other coding is a 415."
)
CODED_REPLY_HEADERS = {
    "Content-Encoding": {
        "description": "`gzip` or `deflate` when the reply is compressed (Accept-Encoding).",
        "schema": {"type": "string", "enum": ["gzip", "deflate"]},
    },
    "Vary": {
        "description": "`accept-encoding` when the request sent Accept-Encoding.",
        "schema": {"type": "string"},
    },
}
BINARY_NOTE = (
    "With the binary tensor data extension (Triton/KServe clients) the body is a JSON "
    "header of `Inference-Header-Content-Length` bytes followed by raw little-endian tensor "
    "bytes (`parameters.binary_data_size` per input, in input order; BYTES elements are a "
    "4-byte length + bytes). `parameters.binary_data_output` or an output's "
    "`parameters.binary_data` asks for binary outputs, answered the same way with an "
    "`Inference-Header-Content-Length` response header. An output's "
    "`parameters.classification` = k (Triton's classification extension) answers it as "
    'BYTES `[rows, k]` of `"<value>:<index>[:<label>]"`, highest value first.'
)
INFER_ERRORS = (400, 404, 409, 413, 415, 503)
STATS_NOTE = (
    "Triton's statistics extension, for this worker process and the versions it has loaded "
    "(counters start at load). `success`/`fail`: requests answered and their summed "
    "durations; `compute_infer`: onnxruntime calls (a merged batch is one) and their time; "
    "`inference_count`/`execution_count`: rows and calls of the version's batcher, shadow "
    "copies included; `queue`, `compute_input`, `compute_output`, `cache_hit` are not "
    "measured apart (0); `batch_stats` is empty."
)


def _infer(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ok = json_ok(
        ref("InferenceResponse"),
        headers={"X-Model-Version": MODEL_VERSION_HEADER, **CODED_REPLY_HEADERS},
    )
    ok["200"]["content"]["application/octet-stream"] = {
        "schema": {"type": "string", "format": "binary"}
    }
    return operation(
        op_id,
        summary,
        "inference",
        {**ok, **error_responses(*INFER_ERRORS)},
        parameters=[*params, *ROUTING_HEADERS, HEADER_LENGTH, *CODING_HEADERS],
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
        description=CODING_NOTE + " With `Accept-Encoding: gzip` a reply of 1 KiB or more "
        "comes compressed.",
    )


def _metadata(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ok = json_ok(ref("ModelMetadata"), headers={"X-Model-Version": MODEL_VERSION_HEADER})
    return operation(
        op_id,
        summary,
        "metadata",
        {**ok, **error_responses(404, 409, 503)},
        parameters=params,
    )


def _readiness(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    responses = {
        **json_statuses(
            {200: "Loaded", 503: "Known but not loaded (or not deployed)"}, ref("ModelReady")
        ),
        **error_responses(404),
    }
    return operation(op_id, summary, "health", responses, parameters=params)


def _statistics(op_id: str, summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    errors = (404, 409, 503) if len(params) == 2 else (404,) if params else ()
    return operation(
        op_id,
        summary,
        "monitoring",
        {**json_ok(ref("ModelStatistics")), **error_responses(*errors)},
        parameters=params or None,
        description=STATS_NOTE,
    )


def data_paths() -> dict[str, Any]:
    versioned = [NAME, VERSION]
    return {
        "/v2/health/live": {
            "get": operation(
                "serverLive",
                "The process answers",
                "health",
                json_statuses({200: "Live"}, ref("ServerLive")),
            )
        },
        "/v2/health/ready": {
            "get": operation(
                "serverReady",
                "Every served model has a loaded primary version",
                "health",
                json_statuses({200: "Ready", 503: "Not ready"}, ref("ServerReady")),
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
        "/v2/": {
            "get": operation(
                "serverMetadataSlash",
                "The same as /v2 (answered, not redirected)",
                "metadata",
                json_ok(ref("ServerMetadata")),
            )
        },
        "/v2/models/stats": {
            "get": _statistics("modelStatisticsAll", "Statistics of every loaded version", [])
        },
        "/v2/models/{name}/stats": {
            "get": _statistics("modelStatistics", "Statistics of a model's versions", [NAME])
        },
        "/v2/models/{name}/versions/{version}/stats": {
            "get": _statistics("modelVersionStatistics", "Statistics of one version", versioned)
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
                "Labels and experiment outcomes for earlier predictions",
                "feedback",
                {**json_ok(ref("FeedbackResult")), **error_responses(400, 404, 413, 415, 503)},
                parameters=[NAME],
                description=CODING_NOTE,
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
