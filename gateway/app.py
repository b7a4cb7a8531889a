"""Composition root: the only module that knows every part of the gateway.

``create_app(settings)`` wires the snapshot holder, shadow mirror, route table and admin
auth; its lifespan opens the registry, publishes the first snapshot (every needed version
loaded and warmed up), starts the generation watcher and shadow workers, and stops them
in reverse order. ``create_app_from_env()`` is the factory uvicorn imports in each
worker process (settings travel through ``MODELGATE_*`` variables).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.controlplane.auth import AdminAuth, resolve_admin_token
from gateway.controlplane.publisher import Publisher
from gateway.controlplane.responses import error_response
from gateway.controlplane.watcher import GenerationWatcher
from gateway.dataplane.asgi import Receive, Scope, Send
from gateway.dataplane.shadow import ShadowMirror
from gateway.dataplane.snapshot import SnapshotHolder
from gateway.errors import GatewayError, status_for
from gateway.routes import HotPaths, build_routes
from gateway.settings import Settings
from registry.errors import RegistryError
from registry.sqlite_store import SqliteRegistry, open_registry

logger = logging.getLogger("modelgate.app")


@dataclass(eq=False)
class GatewayState:
    """Everything the app's parts share; ``app.state.gateway``."""

    settings: Settings
    holder: SnapshotHolder
    mirror: ShadowMirror
    auth: AdminAuth
    token_path: Path | None
    registry: SqliteRegistry | None = None
    publisher: Publisher | None = None
    watcher: GenerationWatcher | None = None


class GatewayApp(Starlette):
    """Starlette with the inference routes dispatched before the middleware stack.

    The inference endpoints answer every error themselves (JSON, never a traceback), so
    they need neither the exception middleware nor the router; everything else is plain
    Starlette.
    """

    hot: HotPaths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            matched = self.hot.match(scope["path"])
            if matched is not None:
                scope["app"] = self
                scope["path_params"] = matched[1]
                await matched[0](scope, receive, send)
                return
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]


async def _gateway_error(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    message = str(exc) if status < 500 else "internal server error"
    return error_response(message, request, status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    headers = getattr(exc, "headers", None)
    return error_response(str(getattr(exc, "detail", "")), request, status, dict(headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware logs and re-raises after this response is sent
    return error_response("internal server error", request, 500)


def create_app(settings: Settings, *, freeze_gc: bool = False) -> Starlette:
    """The gateway app; ``freeze_gc`` (serving processes) moves everything alive after the
    first load out of the collector's reach, so full collections stop rescanning models
    and libraries."""
    token, token_path = resolve_admin_token(settings)
    state = GatewayState(
        settings=settings,
        holder=SnapshotHolder(),
        mirror=ShadowMirror(settings.shadow_queue),
        auth=AdminAuth(token),
        token_path=token_path,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry = await open_registry(settings.paths)
        state.registry = registry
        publisher = Publisher(registry, settings, state.holder, state.mirror)
        state.publisher = publisher
        watcher = GenerationWatcher(registry, publisher, settings.poll_interval_ms / 1000.0)
        try:
            snapshot = await publisher.refresh()
            logger.info(
                "serving %d model(s): %s",
                len(snapshot.models),
                ", ".join(sorted(snapshot.models)) or "-",
            )
            state.mirror.start()
            watcher.start()
            state.watcher = watcher
            if freeze_gc:
                gc.collect()
                gc.freeze()
            yield
        finally:
            await watcher.stop()
            await state.mirror.stop()
            await publisher.close()
            await registry.close()

    routes = build_routes(state)
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            RegistryError: _gateway_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.hot = HotPaths(routes)
    app.state.gateway = state
    return app


def setup_logging() -> None:
    """Send the gateway's own log lines (loads, swaps, failures) to stderr like uvicorn's."""
    gateway_logger = logging.getLogger("modelgate")
    if not gateway_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))
        gateway_logger.addHandler(handler)
        gateway_logger.setLevel(logging.INFO)


def create_app_from_env() -> Starlette:
    """uvicorn factory (``--workers``): settings from MODELGATE_* variables."""
    setup_logging()
    return create_app(Settings.from_environ(), freeze_gc=True)
