"""The one route table: every URL the gateway answers, in one place.

Data-plane endpoints are raw ASGI instances; admin endpoints are Starlette request
handlers. ``HotPaths`` takes the two inference endpoints out of this table so the app can
dispatch them directly (a few string operations instead of two middleware layers and a
regex per route, ~20 µs per request measured); every other URL goes through the router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route

from gateway.admin import audit, experiments, models, repository, traffic
from gateway.admin.http import admin_endpoint
from gateway.console import api as console_api
from gateway.console.pages import ConsolePages
from gateway.dataplane.endpoints.infer import InferenceEndpoint
from gateway.dataplane.endpoints.meta import (
    LiveEndpoint,
    ModelMetadataEndpoint,
    ReadyEndpoint,
    ServerMetadataEndpoint,
)
from gateway.dataplane.endpoints.stats import StatsEndpoint
from gateway.dataplane.feedback.endpoint import FeedbackEndpoint
from gateway.monitoring import api as monitoring_api
from gateway.monitoring.binder import MetricsRoute
from gateway.openapi.endpoints import documentation_endpoints
from gateway.retraining.api import retraining
from gateway.rollout.api import rollout

if TYPE_CHECKING:
    from gateway.state import GatewayState


INFER_PATH = "/v2/models/{name}/infer"
PREDICT_PATH = "/predict/{name}"
MODEL = "/admin/models/{name}"


def build_routes(state: GatewayState) -> list[BaseRoute]:
    holder, mirror, monitoring = state.holder, state.mirror, state.monitoring
    max_body = state.settings.max_body_bytes
    errors = None if monitoring is None else monitoring.record_input_error
    infer = InferenceEndpoint(holder, mirror, max_body, protocol="oip", input_errors=errors)
    predict = InferenceEndpoint(holder, mirror, max_body, protocol="predict", input_errors=errors)
    running = state.running_experiments
    feedback = FeedbackEndpoint(
        holder,
        None if monitoring is None else monitoring.feedback,
        max_body,
        None if monitoring is None else monitoring.flush,
        sink=state.outcome_sink,
        running=None if running is None else running.get,
        refresh=None if running is None else running.refresh,
        window_s=state.settings.outcome_window_s,
    )
    metadata = ModelMetadataEndpoint(holder)
    readiness = ModelMetadataEndpoint(holder, readiness=True)
    server = ServerMetadataEndpoint()
    stats = StatsEndpoint(holder)
    openapi_spec, openapi_page = documentation_endpoints()
    console = ConsolePages(state)
    link = state.registry_link
    ready_detail = link.body if link is not None else None

    def admin(path: str, handler: Any, *methods: str) -> Route:
        # every admin URL is bound here: the bearer token is checked before the handler
        return Route(path, admin_endpoint(handler, state), methods=list(methods))

    return [
        # data plane: Open Inference Protocol V2
        Route(INFER_PATH, infer, methods=["POST"]),
        Route(PREDICT_PATH, predict, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/predict/{name}/versions/{version}", predict, methods=["POST"]),
        Route("/v2/health/live", LiveEndpoint(), methods=["GET"]),
        Route("/v2/health/ready", ReadyEndpoint(holder, ready_detail), methods=["GET"]),
        Route("/v2", server, methods=["GET"]),
        Route("/v2/", server, methods=["GET"]),  # answered, not redirected to /v2
        # statistics extension; before /v2/models/{name}, which would take "stats" as a name
        Route("/v2/models/stats", stats, methods=["GET"]),
        Route("/v2/models/{name}/stats", stats, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/stats", stats, methods=["GET"]),
        Route("/v2/models/{name}", metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", readiness, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", readiness, methods=["GET"]),
        Route("/v2/models/{name}/feedback", feedback, methods=["POST"]),
        # Prometheus exposition (open, as scrapers expect)
        Route("/metrics", MetricsRoute(monitoring), methods=["GET"]),
        # OIP model repository extension (admin token)
        admin("/v2/repository/index", repository.index, "POST"),
        admin("/v2/repository/models/{name}/load", repository.load, "POST"),
        admin("/v2/repository/models/{name}/unload", repository.unload, "POST"),
        # admin API (admin token): models, traffic, audit
        admin("/admin/models", models.list_models, "GET"),
        admin(MODEL, models.get_model, "GET"),
        admin(f"{MODEL}/versions/{{version}}", models.get_version, "GET"),
        admin(f"{MODEL}/traffic", traffic.traffic, "GET", "PUT"),
        admin(f"{MODEL}/rollback", traffic.rollback, "POST"),
        admin(f"{MODEL}/switch", traffic.switch, "POST"),
        admin(f"{MODEL}/versions/{{version}}/stage", traffic.stage, "POST"),
        admin("/admin/audit", audit.audit, "GET"),
        # monitoring reports, rollouts and retraining (admin token)
        admin(f"{MODEL}/drift", monitoring_api.drift, "GET"),
        admin(f"{MODEL}/health", monitoring_api.health, "GET"),
        admin(f"{MODEL}/shadow", monitoring_api.shadow, "GET"),
        admin(f"{MODEL}/rollout", rollout, "GET", "POST", "DELETE"),
        admin(f"{MODEL}/experiment", experiments.experiment, "GET", "POST", "DELETE"),
        admin(f"{MODEL}/retraining", retraining, "GET", "PUT"),
        # the operator console: page shells and their files (open; they hold no data), and
        # its data (admin token unless MODELGATE_CONSOLE_PUBLIC=on); actions use the admin API
        Route("/console", console.overview, methods=["GET"]),
        Route("/console/models/{name}", console.model, methods=["GET"]),
        Route("/console/static/{file}", console.asset, methods=["GET"]),
        Route(
            "/console/api/overview",
            console_api.console_endpoint(console_api.overview_data, state),
            methods=["GET"],
        ),
        Route(
            "/console/api/models/{name}",
            console_api.console_endpoint(console_api.model_data, state),
            methods=["GET"],
        ),
        # the OpenAPI document of every route above, and its HTML listing
        Route("/openapi.json", openapi_spec, methods=["GET"]),
        Route("/docs", openapi_page, methods=["GET"]),
    ]


class HotPaths:
    """Direct match of ``POST /v2/models/{name}[/versions/{v}]/infer`` and
    ``POST /predict/{name}[/versions/{v}]`` to the route table's own endpoints."""

    __slots__ = ("infer", "predict", "_by_url")

    # distinct request targets remembered by match_url: enough for every model and pinned
    # version a deployment serves, small enough that clients sending junk URLs cost nothing
    URL_CACHE_SIZE = 4096

    def __init__(self, routes: list[BaseRoute]) -> None:
        by_path = {r.path: r.endpoint for r in routes if isinstance(r, Route)}
        self.infer: Any = by_path[INFER_PATH]
        self.predict: Any = by_path[PREDICT_PATH]
        self._by_url: dict[bytes, tuple[Any, dict[str, str]]] = {}

    def match_url(self, url: bytes) -> tuple[Any, dict[str, str]] | None:
        """``match`` for a raw HTTP request target, remembered per target; None for a query
        string, a percent-escape or non-ASCII (the ASGI path decodes those). The params dict
        of a remembered match is shared by every request to that URL: read-only."""
        hit = self._by_url.get(url)
        if hit is not None:
            return hit
        if url[:1] != b"/" or b"?" in url or b"%" in url or not url.isascii():
            return None
        matched = self.match(url.decode("ascii"))
        if matched is not None and len(self._by_url) < self.URL_CACHE_SIZE:
            self._by_url[url] = matched
        return matched

    def match(self, path: str) -> tuple[Any, dict[str, str]] | None:
        if path.startswith("/v2/models/"):
            if not path.endswith("/infer"):
                return None
            rest = path[11:-6]
            endpoint = self.infer
        elif path.startswith("/predict/"):
            rest = path[9:]
            endpoint = self.predict
        else:
            return None
        if "/" not in rest:
            return (endpoint, {"name": rest}) if rest else None
        parts = rest.split("/")
        if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
            return endpoint, {"name": parts[0], "version": parts[2]}
        return None
