"""Component schemas of the OpenAPI document: request and response bodies.

Bodies the gateway parses loosely (OIP ignores unknown fields and parameters) leave
``additionalProperties`` open; admin bodies whose unknown fields are refused close it.
"""

from __future__ import annotations

from typing import Any

DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]

SCALAR: dict[str, Any] = {"type": ["number", "string", "boolean", "null"]}
NESTED_DATA: dict[str, Any] = {
    "description": "Tensor values, flat or nested row-major; only their count must equal the "
    "product of `shape`.",
    "type": "array",
    "items": {"anyOf": [SCALAR, {"type": "array"}]},
}
STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT: dict[str, Any] = {"type": "object"}


def _tensor(parameters: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": DATATYPES},
            "parameters": {"type": "object", "properties": parameters},
            "data": data,
        },
    }


_DURATION: dict[str, Any] = {
    "type": "object",
    "required": ["count", "ns"],
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "ns": {"type": "integer", "minimum": 0},
    },
}
_PHASES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
_MODEL_STAT: dict[str, Any] = {
    "type": "object",
    "required": [
        "name",
        "version",
        "last_inference",
        "inference_count",
        "execution_count",
        "inference_stats",
        "batch_stats",
    ],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "last_inference": {
            "type": "integer",
            "minimum": 0,
            "description": "Milliseconds since the epoch of the latest request (0: none).",
        },
        "inference_count": {"type": "integer", "minimum": 0},
        "execution_count": {"type": "integer", "minimum": 0},
        "inference_stats": {
            "type": "object",
            "required": list(_PHASES),
            "properties": {name: _DURATION for name in (*_PHASES, "cache_hit")},
        },
        "batch_stats": {"type": "array", "items": _OBJECT},
    },
}

_REQUEST_TENSOR = _tensor(
    {
        "binary_data_size": {
            "type": "integer",
            "minimum": 0,
            "description": "Binary tensor data extension: this input's bytes follow "
            "the JSON header (`Inference-Header-Content-Length`), in input order.",
        }
    },
    NESTED_DATA,
)
_RESPONSE_TENSOR = _tensor(
    {"binary_data_size": {"type": "integer", "minimum": 0}},
    {"type": "array", "items": SCALAR},
)

_METADATA_TENSOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}

_REASON = {"type": "string", "description": "Recorded in the audit log."}
_VERSION = {"type": "string", "minLength": 1, "examples": ["1.1.0"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
        "description": "Every refusal. Admin refusals may add details (e.g. `failures`).",
    },
    "ServerLive": {
        "type": "object",
        "required": ["live"],
        "properties": {"live": {"type": "boolean"}},
    },
    "ServerReady": {
        "type": "object",
        "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}},
    },
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "ModelStatistics": {
        "type": "object",
        "required": ["model_stats"],
        "properties": {"model_stats": {"type": "array", "items": _MODEL_STAT}},
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _METADATA_TENSOR},
            "outputs": {"type": "array", "items": _METADATA_TENSOR},
        },
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
            "inputs": {"type": "array", "minItems": 1, "items": _REQUEST_TENSOR},
            "outputs": {
                "type": "array",
                "description": "Requested outputs (distinct names); absent or empty: all.",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "binary_data": {"type": "boolean"},
                                "classification": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "description": "Classification extension: answer the "
                                    "k highest values as BYTES `value:index[:label]` "
                                    "(0: the raw tensor).",
                                },
                            },
                        },
                    },
                },
            },
        },
        "examples": [
            {
                "id": "r-1",
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "data": [0.5, -1.0, 0.25, 2.0],
                    }
                ],
            }
        ],
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _RESPONSE_TENSOR},
        },
    },
    "PredictRequest": {
        "type": "object",
        "required": ["instances"],
        "properties": {
            "id": {"type": "string"},
            "instances": {
                "type": "array",
                "minItems": 1,
                "description": "Rows: lists of values in feature order, or objects keyed by "
                "feature name (one form for all rows).",
                "items": {
                    "anyOf": [
                        {"type": "array", "items": SCALAR},
                        {"type": "object", "additionalProperties": SCALAR},
                    ]
                },
            },
        },
        "examples": [{"instances": [[0.5, -1.0, 0.25, 2.0]]}],
    },
    "PredictResponse": {
        "type": "object",
        "required": ["predictions", "model", "model_version"],
        "properties": {
            "predictions": {"type": "array", "items": {"type": ["number", "string"]}},
            "probabilities": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
            },
            "model": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
        },
    },
    "FeedbackItem": {
        "type": "object",
        "description": "A label, outcomes, or both for one request (by id), or outcomes of "
        "a user (by routing key); docs/experiments.md, Outcomes.",
        "properties": {
            "id": {"type": ["string", "integer"], "description": "The inference's request id."},
            "routing_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1024,
                "description": "The X-Routing-Key of the user's requests (outcomes only).",
            },
            "label": {
                "description": "A class label (int or string) or a regression target.",
                "type": ["number", "string", "boolean", "array"],
            },
            "outcomes": {
                "type": "object",
                "maxProperties": 64,
                "description": "Metric name -> finite number; other values are reported "
                "per item in the answer's outcomes.invalid.",
                "additionalProperties": {},
            },
        },
        "anyOf": [
            {"required": ["id", "label"]},
            {"required": ["id", "outcomes"]},
            {"required": ["routing_key", "outcomes"]},
        ],
    },
    "FeedbackResult": {
        "type": "object",
        "required": ["accepted", "labelled_rows", "unknown", "expired", "duplicate", "invalid"],
        "properties": {
            "accepted": {"type": "integer"},
            "labelled_rows": {"type": "integer"},
            "unknown": {"type": "array", "items": {"type": "string"}},
            "expired": {"type": "integer"},
            "duplicate": {"type": "array", "items": {"type": "string"}},
            "invalid": {"type": "array", "items": _OBJECT},
            "outcomes": {
                "type": "object",
                "description": "Present when the body carried outcomes; counts are outcomes.",
                "required": ["accepted", "duplicate", "unknown", "expired", "invalid"],
                "properties": {
                    "accepted": {"type": "integer"},
                    "duplicate": {"type": "integer"},
                    "unknown": {"type": "array", "items": {"type": "string"}},
                    "expired": {"type": "integer"},
                    "invalid": {"type": "array", "items": _OBJECT},
                },
            },
        },
    },
    "Traffic": {
        "type": "object",
        "properties": {
            "routes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["version", "weight"],
                    "properties": {
                        "version": _VERSION,
                        "weight": {"type": "number", "minimum": 0, "maximum": 100},
                    },
                },
            },
            "shadow": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["version"],
                    "properties": {
                        "version": _VERSION,
                        "sample": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                },
            },
            "challenger": {"type": ["string", "null"]},
            "sticky": {"type": "boolean"},
            "reason": _REASON,
        },
        "examples": [{"routes": [{"version": "1.0.0", "weight": 100}], "sticky": False}],
    },
    "Reason": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": _REASON},
    },
    "Switch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["version"],
        "properties": {"version": _VERSION, "reason": _REASON, "force": {"type": "boolean"}},
    },
    "Stage": {
        "type": "object",
        "additionalProperties": False,
        "required": ["stage"],
        "properties": {
            "stage": {"type": "string", "enum": ["staging", "production", "archived"]},
            "reason": _REASON,
            "force": {"type": "boolean"},
        },
    },
    "Rollout": {
        "type": "object",
        "additionalProperties": False,
        "required": ["candidate", "steps"],
        "properties": {
            "candidate": _VERSION,
            "steps": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            },
            "interval_s": {"type": "number", "exclusiveMinimum": 0},
            "min_requests": {"type": "integer", "minimum": 1},
            "max_failed_checks": {"type": "integer", "minimum": 1},
            "thresholds": _OBJECT,
        },
        "examples": [{"candidate": "1.1.0", "steps": [5, 50, 100], "interval_s": 60}],
    },
    "Experiment": {
        "type": "object",
        "additionalProperties": False,
        "required": ["variants", "metrics", "mde"],
        "properties": {
            "variants": {
                "type": "object",
                "description": "Two versions and their weights in percent, summing to 100.",
                "minProperties": 2,
                "maxProperties": 2,
                "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
            },
            "control": {"type": ["string", "null"], "minLength": 1, "examples": ["1.0.0"]},
            "metrics": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "kind"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"enum": ["binary", "continuous", "guardrail"]},
                        "baseline": {"type": ["number", "null"]},
                        "sd": {"type": ["number", "null"], "exclusiveMinimum": 0},
                        "higher_is_better": {"type": "boolean"},
                        "tolerance": {"type": "number", "minimum": 0},
                        "limit": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                },
            },
            "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "power": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "mde": {"type": "number"},
            "mde_kind": {"enum": ["relative", "absolute"]},
            "baseline_days": {"type": "integer", "minimum": 1, "maximum": 365},
            "traffic_per_day": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "promote_winner": {"type": "boolean"},
            "reason": {"type": "string"},
        },
        "examples": [
            {
                "variants": {"1.0.0": 50, "1.1.0": 50},
                "metrics": [{"name": "conversion", "kind": "binary", "baseline": 0.1}],
                "mde": 0.05,
                "mde_kind": "relative",
            }
        ],
    },
    "ExperimentStop": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "reason": {"type": "string"},
            "promote_winner": {"type": ["boolean", "null"]},
        },
    },
    "RetrainingSettings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "policy": {"type": "object", "description": "RetrainingPolicy field overrides."},
            "cooldown_s": {"type": ["number", "null"], "minimum": 0},
        },
    },
    "RepositoryIndexRequest": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
    },
    "RepositoryEntry": {
        "type": "object",
        "required": ["name", "version", "state", "reason"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "state": {"type": "string", "enum": ["READY", "UNAVAILABLE"]},
            "reason": {"type": "string"},
        },
    },
    "Change": {
        "type": "object",
        "description": "The outcome of an admin change, sent once this worker serves it.",
        "required": ["model", "action", "changed", "production", "traffic", "generation"],
        "properties": {
            "model": {"type": "string"},
            "action": {"type": "string"},
            "changed": {"type": "boolean"},
            "production": {"type": ["string", "null"]},
            "rollback_target": {"type": ["string", "null"]},
            "stages": _OBJECT,
            "traffic": _OBJECT,
            "gate": {"type": ["object", "null"]},
            "generation": {"type": "integer"},
        },
    },
    "Model": {
        "type": "object",
        "required": ["name", "production_version", "traffic", "serving", "versions"],
        "properties": {
            "name": {"type": "string"},
            "production_version": {"type": ["string", "null"]},
            "rollback_target": {"type": ["string", "null"]},
            "traffic": _OBJECT,
            "serving": _OBJECT,
            "versions": {"type": "array", "items": _OBJECT},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["models", "worker"],
        "properties": {"models": {"type": "array", "items": _OBJECT}, "worker": _OBJECT},
    },
    "Version": {
        "type": "object",
        "required": ["model", "version", "stage", "state", "schema"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "string"},
            "stage": {"type": "string"},
            "state": {"type": "string"},
            "schema": _OBJECT,
        },
    },
    "TrafficView": {
        "type": "object",
        "required": ["model", "routes", "shadow"],
        "properties": {
            "model": {"type": "string"},
            "routes": {"type": "array", "items": _OBJECT},
            "shadow": {"type": "array", "items": _OBJECT},
            "challenger": {"type": ["string", "null"]},
            "sticky": {"type": "boolean"},
        },
    },
    "Audit": {
        "type": "object",
        "required": ["entries", "count"],
        "properties": {
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "at", "actor", "action", "model"],
                },
            },
            "count": {"type": "integer", "minimum": 0},
        },
    },
    "Report": {"type": "object", "description": "A monitoring or lifecycle report."},
}
