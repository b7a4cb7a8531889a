"""``POST|GET|DELETE /admin/models/{name}/experiment``: A/B experiments on outcomes.

POST body: ``gateway.experiments.spec`` (variants, metrics, alpha, power, mde, mde_kind,
baselines, promote_winner) -> 200 with the experiment, its plan and the traffic it now
owns. GET -> 200 with its state and results (any worker answers it; ``history`` lists the
ids of earlier experiments). DELETE (optional body ``{"reason", "promote_winner"}``) -> 200:
stopped by the operator with the numbers as they are, the control takes 100 % (or the
winner, through the promotion gate). Errors: 400 a bad body (the field is named), 401,
404 unknown model / version / no experiment, 409 an experiment or a rollout is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request

from gateway.admin.http import (
    admin_actor,
    check_fields,
    json_body,
    optional_json_object,
    registry_of,
    text_field,
)
from gateway.errors import InputError
from gateway.experiments.api import experiment_view
from gateway.experiments.planner import OutcomeData
from gateway.experiments.store import Experiments

if TYPE_CHECKING:
    from gateway.state import GatewayState


def experiments_of(request: Request, state: GatewayState) -> Experiments:
    registry = registry_of(state)
    return Experiments(
        registry,
        state.settings.paths.root,
        cast(OutcomeData, registry),
        actor=admin_actor(request),
        publisher=state.publisher,
        settings=state.settings,
    )


def _promote(payload: dict[str, Any], request: Request) -> bool | None:
    value = payload.get("promote_winner", request.query_params.get("promote_winner"))
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "1", "on"):
        return True
    if value in ("false", "0", "off"):
        return False
    raise InputError(f"promote_winner must be true or false, got {value!r}")


async def experiment(request: Request, state: GatewayState) -> dict[str, Any]:
    name = request.path_params["name"]
    experiments = experiments_of(request, state)
    if request.method == "GET":
        record = await experiments.get(name)
        history = [r["id"] for r in await experiments.history(name) if r["id"] != record["id"]]
        return {**experiment_view(record), "history": history}
    if request.method == "POST":
        started = await experiments.start(name, await json_body(request))
        return {**experiment_view(started), "traffic": started["traffic"]}
    payload = await optional_json_object(request)
    check_fields(payload, frozenset({"reason", "promote_winner"}))
    reason = text_field(payload, "reason") or request.query_params.get("reason", "")
    stopped = await experiments.stop(name, reason=reason, promote=_promote(payload, request))
    return {**experiment_view(stopped), "traffic": stopped["traffic"]}
