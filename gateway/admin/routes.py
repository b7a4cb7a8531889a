"""The admin API's routes, for ``gateway/routes.py`` to append: ``admin_routes(state)``.

Every route requires the admin bearer token (401 first, whatever else is wrong). The
model-repository extension (``/v2/repository/...``) lives in ``repository_api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route

from gateway.admin import audit as admin_audit
from gateway.admin import models as admin_models
from gateway.admin import traffic as admin_traffic
from gateway.admin.http import admin_endpoint

if TYPE_CHECKING:
    from gateway.app import GatewayState

ADMIN_MODEL = "/admin/models/{name}"


def admin_routes(state: GatewayState) -> list[BaseRoute]:
    """Routes of the admin API (handlers read
    ``request.app.state.gateway``, so ``state`` is only taken for symmetry with the data
    plane's table)."""
    del state
    return [
        Route("/admin/models", admin_endpoint(admin_models.list_models), methods=["GET"]),
        Route(ADMIN_MODEL, admin_endpoint(admin_models.get_model), methods=["GET"]),
        Route(
            f"{ADMIN_MODEL}/versions/{{version}}",
            admin_endpoint(admin_models.get_version),
            methods=["GET"],
        ),
        Route(
            f"{ADMIN_MODEL}/traffic",
            admin_endpoint(admin_traffic.traffic),
            methods=["GET", "PUT"],
        ),
        Route(f"{ADMIN_MODEL}/rollback", admin_endpoint(admin_traffic.rollback), methods=["POST"]),
        Route(f"{ADMIN_MODEL}/switch", admin_endpoint(admin_traffic.switch), methods=["POST"]),
        Route(
            f"{ADMIN_MODEL}/versions/{{version}}/stage",
            admin_endpoint(admin_traffic.stage),
            methods=["POST"],
        ),
        Route("/admin/audit", admin_endpoint(admin_audit.audit), methods=["GET"]),
    ]
