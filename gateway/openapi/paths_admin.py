"""Admin API, model-repository extension and admin monitoring reports (bearer token)."""

from __future__ import annotations

from typing import Any

from gateway.openapi.operations import (
    NAME,
    VERSION,
    error_responses,
    json_body,
    json_ok,
    operation,
    query_param,
    ref,
)

CHANGE_ERRORS = error_responses(400, 404, 409, 503)
READ_ERRORS = error_responses(404, 503)
REASON_QUERY = query_param("reason", "Recorded in the audit log.")


def _change(op_id: str, summary: str, body: dict[str, Any], params: list) -> dict[str, Any]:
    return operation(
        op_id,
        summary,
        "admin",
        {**json_ok(ref("Change")), **CHANGE_ERRORS},
        parameters=params,
        body=body,
        admin=True,
    )


def _report(op_id: str, summary: str) -> dict[str, Any]:
    return operation(
        op_id,
        summary,
        "monitoring",
        {**json_ok(ref("Report")), **READ_ERRORS},
        parameters=[NAME],
        admin=True,
    )


def _repository(op_id: str, summary: str) -> dict[str, Any]:
    return operation(
        op_id,
        summary,
        "repository",
        {**json_ok({"type": "object"}), **error_responses(404, 503)},
        parameters=[NAME],
        admin=True,
    )


def admin_paths() -> dict[str, Any]:
    audit_params = [
        query_param("model", "Only this model."),
        query_param("action", "Only this action (register, stage, traffic, rollback, ...)."),
        query_param("actor", "Only this actor."),
        query_param("since", "ISO-8601 date or time (naive means UTC)."),
        query_param(
            "limit",
            "1..10000; empty or absent means 100.",
            {"type": "string", "pattern": "^([1-9][0-9]{0,4})?$"},
        ),
    ]
    rollout_responses = {**json_ok(ref("Report")), **CHANGE_ERRORS}
    return {
        "/v2/repository/index": {
            "post": operation(
                "repositoryIndex",
                "Every registered version with its state (READY / UNAVAILABLE)",
                "repository",
                {
                    **json_ok({"type": "array", "items": ref("RepositoryEntry")}),
                    **error_responses(400, 503),
                },
                body=json_body(ref("RepositoryIndexRequest"), required=False),
                admin=True,
            )
        },
        "/v2/repository/models/{name}/load": {
            "post": _repository("repositoryLoad", "Serve the model again (every worker)")
        },
        "/v2/repository/models/{name}/unload": {
            "post": _repository("repositoryUnload", "Stop serving the model (503 until loaded)")
        },
        "/admin/models": {
            "get": operation(
                "adminModels",
                "Every model with its versions, traffic and what this worker serves",
                "admin",
                {**json_ok(ref("ModelList")), **error_responses(503)},
                admin=True,
            )
        },
        "/admin/models/{name}": {
            "get": operation(
                "adminModel",
                "One model",
                "admin",
                {**json_ok(ref("Model")), **READ_ERRORS},
                parameters=[NAME],
                admin=True,
            )
        },
        "/admin/models/{name}/versions/{version}": {
            "get": operation(
                "adminVersion",
                "One version: schema, lineage, parity, evaluation, runtime",
                "admin",
                {**json_ok(ref("Version")), **error_responses(400, 404, 503)},
                parameters=[NAME, VERSION],
                admin=True,
            )
        },
        "/admin/models/{name}/traffic": {
            "get": operation(
                "getTraffic",
                "The model's deployment (PUT-able back unchanged)",
                "admin",
                {**json_ok(ref("TrafficView")), **READ_ERRORS},
                parameters=[NAME],
                admin=True,
            ),
            "put": _change(
                "putTraffic",
                "Replace routes, shadows, challenger and stickiness",
                json_body(ref("Traffic")),
                [NAME, REASON_QUERY],
            ),
        },
        "/admin/models/{name}/rollback": {
            "post": _change(
                "rollback",
                "Back to the previous production version (a pointer swap)",
                json_body(ref("Reason"), required=False),
                [NAME],
            )
        },
        "/admin/models/{name}/switch": {
            "post": _change(
                "switch", "Blue-green: one version takes 100 %", json_body(ref("Switch")), [NAME]
            )
        },
        "/admin/models/{name}/versions/{version}/stage": {
            "post": _change(
                "stage",
                "Move a version to staging, production (gated) or archived",
                json_body(ref("Stage")),
                [NAME, VERSION],
            )
        },
        "/admin/models/{name}/rollout": {
            "get": operation(
                "getRollout",
                "The model's automated canary rollout",
                "lifecycle",
                {**json_ok(ref("Report")), **READ_ERRORS},
                parameters=[NAME],
                admin=True,
            ),
            "post": operation(
                "startRollout",
                "Start an automated canary rollout",
                "lifecycle",
                {**json_ok(ref("Report"), 201), **CHANGE_ERRORS},
                parameters=[NAME],
                body=json_body(ref("Rollout")),
                admin=True,
            ),
            "delete": operation(
                "cancelRollout",
                "Cancel the rollout: all traffic back to the champion",
                "lifecycle",
                rollout_responses,
                parameters=[NAME, REASON_QUERY],
                admin=True,
            ),
        },
        "/admin/models/{name}/experiment": {
            "get": operation(
                "getExperiment",
                "The model's A/B experiment: plan, per-variant results, verdict",
                "lifecycle",
                {**json_ok(ref("Report")), **READ_ERRORS},
                parameters=[NAME],
                admin=True,
            ),
            "post": operation(
                "startExperiment",
                "Plan and start an A/B experiment; it owns the traffic split until it stops",
                "lifecycle",
                rollout_responses,
                parameters=[NAME],
                body=json_body(ref("Experiment")),
                admin=True,
            ),
            "delete": operation(
                "stopExperiment",
                "Stop the experiment: the control (or the promoted winner) takes 100 %",
                "lifecycle",
                rollout_responses,
                parameters=[NAME, REASON_QUERY],
                body=json_body(ref("ExperimentStop"), required=False),
                admin=True,
            ),
        },
        "/admin/models/{name}/retraining": {
            "get": operation(
                "getRetraining",
                "The retraining decision with its reasons (409 without a production version)",
                "lifecycle",
                {**json_ok(ref("Report")), **error_responses(404, 409, 503)},
                parameters=[NAME],
                admin=True,
            ),
            "put": operation(
                "putRetraining",
                "Per-model retraining policy overrides",
                "lifecycle",
                {**json_ok(ref("Report")), **CHANGE_ERRORS},
                parameters=[NAME],
                body=json_body(ref("RetrainingSettings")),
                admin=True,
            ),
        },
        "/admin/models/{name}/drift": {"get": _report("drift", "Drift of every loaded version")},
        "/admin/models/{name}/health": {
            "get": _report("health", "Health verdict of every loaded version")
        },
        "/admin/models/{name}/shadow": {"get": _report("shadow", "Shadow comparison statistics")},
        "/admin/audit": {
            "get": operation(
                "audit",
                "The audit log, newest first",
                "admin",
                {**json_ok(ref("Audit")), **error_responses(400, 503)},
                parameters=audit_params,
                admin=True,
            )
        },
    }
