"""Admin endpoints that change what is served: traffic, rollback, switch, stage.

* ``GET /admin/models/{name}/traffic`` -> ``{"model", "routes", "shadow", "challenger",
  "sticky", "updated_at"}`` (the registry's deployment; it can be PUT back unchanged).
* ``PUT /admin/models/{name}/traffic`` with ``{"routes": [{"version", "weight"}], "shadow":
  [{"version", "sample"}], "challenger", "sticky"}`` (an optional ``"reason"`` goes to the
  audit log): replaces the model's traffic. Weights are percent and sum to 100; ``routes:
  []`` means 100 % to production. The challenger (``X-Use-Challenger: true``) must be
  loaded in this worker already, or be routed or shadowed by the same change (it is then
  loaded and warmed before the change takes traffic, like any route).
* ``POST /admin/models/{name}/rollback`` (optional ``{"reason"}``): production goes back to
  the version that most recently left it, with 100 % of the traffic, stages and traffic in
  one transaction. That version is kept loaded by every worker, so this is a pointer swap;
  rolling back twice returns to where it started. Counts
  ``modelgate_rollbacks_total{reason="manual"}`` (``modelgate rollback``'s own are counted by
  the leader from the audit log: ``rollout.external_rollbacks``).
* ``POST /admin/models/{name}/switch`` ``{"version", "reason", "force"}``: blue-green. The
  version becomes production and takes 100 % in one step; the outgoing production is
  archived as the rollback target, which keeps it loaded and warm, so ``rollback`` (or a
  switch back) is instant. Switching to a version that is not production yet passes the
  promotion gate (see ``changes.plan``). Switching to the current production puts 100 % on it.
* ``POST /admin/models/{name}/versions/{v}/stage`` ``{"stage": "staging|production|archived",
  "reason", "force"}``: production is a gated promotion moving 100 % of the traffic (audited
  ``promote``, or ``gate_override`` when forced past a refusal); staging and archived are
  plain transitions (archiving a version that takes traffic is refused, 409). Staging
  loads and warms the version in every worker (pinned requests reach it); if it cannot
  load, it stays staging and the failure shows in its state and the repository index.
  Production, by switch, promotion or rollback, only goes to a version already loaded.

Every answer to a change is ``{"model", "action", "changed", "production",
"rollback_target", "stages", "traffic", "gate", "generation"}``, sent once this worker
serves the new state. Refusals: 400 malformed, 404 unknown model / version, 409 refused by
the current state (archived version, gate, running rollout, load failure with ``failures``
and ``restored``); nothing is changed by a refusal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.admin.http import (
    admin_actor,
    bool_field,
    check_fields,
    json_object,
    optional_json_object,
    registry_of,
    text_field,
)
from gateway.changes.apply import AdminChanges, traffic_view
from gateway.monitoring.metrics.prometheus import get_metrics

if TYPE_CHECKING:
    from gateway.state import GatewayState


def changes_of(request: Request, state: GatewayState) -> AdminChanges:
    return AdminChanges(
        registry_of(state),
        state.settings.paths.root,
        actor=admin_actor(request),
        publisher=state.publisher,
        settings=state.settings,
    )


async def traffic(request: Request, state: GatewayState) -> dict[str, Any]:
    name = request.path_params["name"]
    if request.method == "GET":
        return traffic_view(name, await registry_of(state).get_deployment(name))
    payload = await json_object(request)
    reason = text_field(payload, "reason") or request.query_params.get("reason", "")
    payload.pop("reason", None)
    return await changes_of(request, state).traffic(name, payload, reason)


async def rollback(request: Request, state: GatewayState) -> dict[str, Any]:
    name = request.path_params["name"]
    payload = await optional_json_object(request)
    check_fields(payload, frozenset({"reason"}))
    outcome = await changes_of(request, state).rollback(name, text_field(payload, "reason"))
    get_metrics().inc_rollback(name, "manual")
    return outcome


async def switch(request: Request, state: GatewayState) -> dict[str, Any]:
    payload = await json_object(request)
    check_fields(payload, frozenset({"version", "reason", "force"}))
    return await changes_of(request, state).switch(
        request.path_params["name"],
        text_field(payload, "version", required=True),
        reason=text_field(payload, "reason"),
        force=bool_field(payload, "force"),
    )


async def stage(request: Request, state: GatewayState) -> dict[str, Any]:
    payload = await json_object(request)
    check_fields(payload, frozenset({"stage", "reason", "force"}))
    return await changes_of(request, state).stage(
        request.path_params["name"],
        request.path_params["version"],
        text_field(payload, "stage", required=True),
        reason=text_field(payload, "reason"),
        force=bool_field(payload, "force"),
    )
