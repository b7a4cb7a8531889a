"""``POST|GET|DELETE /admin/models/{name}/rollout``: automated canary analysis.

POST body (``interval_s`` in seconds, weights in percent; ``thresholds`` overrides
``gateway.rollout.checks.CanaryThresholds``)::

    {"candidate": "1.1.0", "steps": [5, 25, 50, 100], "interval_s": 60,
     "min_requests": 100, "max_failed_checks": 2, "thresholds": {"max_error_rate_increase": 0.01}}

-> 201 with the rollout (step 1's weights already applied). GET -> 200 with the persisted
state (any worker answers it). DELETE -> 200: cancelled, all traffic to the champion.
Errors: 400 bad body, 401 no token, 404 unknown model / version / no rollout, 409 a rollout
already runs, the candidate is production or archived, there is no production version.

Any worker can take a POST or DELETE: it writes the registry, and the leader's controller
carries on from the persisted state at its next tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.http import admin_actor, json_body
from gateway.admin.responses import json_response
from gateway.errors import GatewayError
from gateway.monitoring.metrics.prometheus import MetricsRegistry, get_metrics
from gateway.rollout.metrics import PrometheusRolloutMetrics
from gateway.rollout.store import Rollouts

if TYPE_CHECKING:
    from gateway.state import GatewayState


def metrics_of(state: GatewayState) -> MetricsRegistry:
    """The metrics registry monitoring records into (the process's one by default)."""
    return get_metrics() if state.monitoring is None else state.monitoring.metrics


def rollouts_of(state: GatewayState) -> Rollouts:
    if state.registry is None:
        raise GatewayError("the registry is not open yet")
    return Rollouts(
        state.registry,
        state.settings.paths.root,
        metrics=PrometheusRolloutMetrics(metrics_of(state)),
    )


async def _refresh(state: GatewayState) -> None:
    # this worker serves the new weights at once; the others follow their watchers
    if state.publisher is not None:
        await state.publisher.refresh()


async def rollout(request: Request, state: GatewayState) -> dict[str, Any] | Response:
    name = request.path_params["name"]
    rollouts = rollouts_of(state)
    if request.method == "GET":
        return (await rollouts.get(name)).describe()
    if request.method == "POST":
        payload = await json_body(request)
        started = await rollouts.start(name, payload, actor=admin_actor(request))
        await _refresh(state)
        return json_response(started.describe(), request, 201)
    reason = request.query_params.get("reason", "")
    cancelled = await rollouts.cancel(name, actor=admin_actor(request), reason=reason)
    await _refresh(state)
    return cancelled.describe()
