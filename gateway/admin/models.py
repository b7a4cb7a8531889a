"""``GET /admin/models``, ``/admin/models/{name}``, ``/admin/models/{name}/versions/{v}``.

Each model: production version, rollback target, traffic (the registry's deployment), what
THIS worker serves (``serving``: from its published snapshot) and its versions. Each
version: stage, aliases, ``state`` READY / LOADING / UNAVAILABLE with the reason (a load
failure is reported here), the routed ``weight`` in percent, its roles (route, shadow,
challenger, production, rollback target) and a lineage summary (model_type,
dataset_version, config_hash, created_at, parity passed). The version endpoint adds the
full schema, lineage, parity, evaluation and the loaded variant's runtime counters.
``worker`` names the process that answered (pid, snapshot generation): with several
workers, successive requests may be answered by different ones.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.admin.http import registry_of
from gateway.changes.apply import traffic_view
from gateway.changes.plan import resolve
from gateway.serving.model_state import (
    READY,
    ModelState,
    effective_weights,
    read_all_states,
    read_model_state,
    version_status,
)
from registry.models import ModelVersion

if TYPE_CHECKING:
    from gateway.state import GatewayState


def lineage_summary(mv: ModelVersion) -> dict[str, Any]:
    lineage = mv.lineage or {}
    training = lineage.get("training") or {}
    parity = mv.parity or {}
    return {
        "model_type": lineage.get("model_type"),
        "dataset_version": training.get("dataset_version"),
        "config_hash": lineage.get("config_hash"),
        "created_at": mv.created_at,
        "parity_passed": parity.get("passed"),
    }


def _roles(ms: ModelState, version: str) -> list[str]:
    roles = []
    if version == ms.production:
        roles.append("production")
    if version == ms.rollback_target:
        roles.append("rollback_target")
    if version in effective_weights(ms.deployment, ms.production):
        roles.append("route")
    if any(s.version == version for s in ms.deployment.shadows):
        roles.append("shadow")
    if ms.deployment.challenger == version:
        roles.append("challenger")
    return roles


def version_summary(state: GatewayState, ms: ModelState, mv: ModelVersion) -> dict[str, Any]:
    status, reason = version_status(state.publisher, ms, mv)
    shadow = next((s.sample for s in ms.deployment.shadows if s.version == mv.version), None)
    return {
        "version": mv.version,
        "stage": mv.stage.value,
        "aliases": list(mv.aliases),
        "state": status,
        "reason": reason,
        "loaded": status == READY,
        "weight": effective_weights(ms.deployment, ms.production).get(mv.version, 0.0),
        "shadow_sample": shadow,
        "roles": _roles(ms, mv.version),
        "lineage": lineage_summary(mv),
        "evaluated": mv.evaluation is not None,
        "artifact_sha256": mv.artifact_sha256,
    }


def serving_view(state: GatewayState, name: str) -> dict[str, Any]:
    """What this worker's published snapshot serves for ``name``."""
    snapshot = state.holder.current
    route = snapshot.models.get(name)
    if route is None:
        return {"ready": False, "primary": None, "routes": [], "shadow": [], "challenger": None}
    return {
        "ready": route.ready,
        "primary": route.primary.version if route.primary is not None else None,
        "routes": [
            {"version": variant.version, "weight": weight}
            for variant, weight in zip(route.routes, route.weights, strict=True)
        ],
        "shadow": [{"version": t.variant.version, "sample": t.sample} for t in route.shadows],
        "challenger": route.challenger.version if route.challenger is not None else None,
        "sticky": route.sticky,
    }


def worker_view(state: GatewayState) -> dict[str, Any]:
    return {"pid": os.getpid(), "generation": state.holder.current.generation}


def model_view(state: GatewayState, ms: ModelState) -> dict[str, Any]:
    model = ms.model
    return {
        "name": model.name,
        "description": model.description,
        "created_at": model.created_at,
        "production_version": ms.production,
        "latest_version": model.latest_version,
        "rollback_target": ms.rollback_target,
        "unloaded": ms.unloaded,
        "traffic": traffic_view(model.name, ms.deployment),
        "serving": serving_view(state, model.name),
        "versions": [version_summary(state, ms, mv) for mv in ms.versions],
    }


async def list_models(request: Request, state: GatewayState) -> dict[str, Any]:
    states = await read_all_states(registry_of(state))
    return {"models": [model_view(state, ms) for ms in states], "worker": worker_view(state)}


async def get_model(request: Request, state: GatewayState) -> dict[str, Any]:
    registry = registry_of(state)
    ms = await read_model_state(registry, request.path_params["name"])
    return {**model_view(state, ms), "worker": worker_view(state)}


def _runtime(state: GatewayState, ms: ModelState, version: str) -> dict[str, Any] | None:
    variant = state.publisher.loaded.get((ms.name, version)) if state.publisher else None
    if variant is None:
        return None
    batcher = variant.batcher
    return {
        "mode": batcher.mode,
        "batching": batcher.batching,
        "single_row_us": variant.runner.single_row_us,
        "requests": variant.requests,
        "errors": variant.errors,
        "batches": batcher.batches,
    }


async def get_version(request: Request, state: GatewayState) -> dict[str, Any]:
    registry = registry_of(state)
    ms = await read_model_state(registry, request.path_params["name"])
    mv = resolve(ms, request.path_params["version"])
    return {
        "model": ms.name,
        **version_summary(state, ms, mv),
        "description": mv.description,
        "tags": mv.tags,
        "created_by": mv.created_by,
        "stage_changed_at": mv.stage_changed_at,
        "artifact_size": mv.artifact_size,
        "schema": mv.schema,
        "lineage_full": mv.lineage,
        "parity": mv.parity,
        "evaluation": mv.evaluation,
        "runtime": _runtime(state, ms, mv.version),
        "worker": worker_view(state),
    }
