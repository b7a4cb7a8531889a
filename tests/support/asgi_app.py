"""The gateway app in process: lifespan run, httpx talking to it through ASGI (no socket)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.settings import Settings
from registry.sqlite.store import SqliteRegistry, open_registry

BASE_URL = "http://gw"


def asgi_client(
    app: Any,
    *,
    headers: Mapping[str, str] | None = None,
    base_url: str = BASE_URL,
    root_path: str = "",
) -> httpx.AsyncClient:
    """A client whose requests go straight into ``app`` (its lifespan is not run)."""
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


@dataclass
class InProcessApp:
    """A running app and a client (``http``) to it; ``state`` is its ``GatewayState``."""

    app: Starlette
    http: httpx.AsyncClient

    @property
    def state(self) -> Any:
        return self.app.state.gateway

    def client(self, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
        """Another client to the same app (say, one without the admin token)."""
        return asgi_client(self.app, headers=headers)

    async def change(self, action: Callable[[SqliteRegistry], Awaitable[object]]) -> None:
        """``action(registry)`` on a connection of its own (as another process would make
        the change), then a publish, without waiting for the watcher's poll."""
        registry = await open_registry(self.state.settings.paths)
        try:
            await action(registry)
        finally:
            await registry.close()
        await self.state.publisher.refresh()


@asynccontextmanager
async def running(
    app: Starlette, *, headers: Mapping[str, str] | None = None, root_path: str = ""
) -> AsyncIterator[InProcessApp]:
    """``app`` with its lifespan started (registry open, first snapshot published)."""
    async with app.router.lifespan_context(app):
        async with asgi_client(app, headers=headers, root_path=root_path) as http:
            yield InProcessApp(app, http)


# the variables of gateway.settings.LifecycleSettings and RetrainingSettings
LIFECYCLE_PREFIXES = (
    "MODELGATE_ROLLOUT_",
    "MODELGATE_LEADER_",
    "MODELGATE_RETRAIN_",
    "MODELGATE_EXPERIMENT_",
)


def gateway_settings(
    home: Path | str, token: str, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings for ``home`` from ``environ``; by default only the process's lifecycle
    variables (tests tune rollout ticks and retraining with ``monkeypatch.setenv``)."""
    if environ is None:
        environ = {k: v for k, v in os.environ.items() if k.startswith(LIFECYCLE_PREFIXES)}
    return Settings.from_environ(environ, home=str(home), admin_token=token, **overrides)


@asynccontextmanager
async def running_gateway(
    home: Path | str,
    token: str,
    *,
    environ: Mapping[str, str] | None = None,
    metrics: MetricsRegistry | None = None,
    headers: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[InProcessApp]:
    """``create_app`` on ``home`` with ``overrides`` (Settings fields), lifespan running."""
    app = create_app(gateway_settings(home, token, environ, **overrides), metrics=metrics)
    async with running(app, headers=headers) as served:
        yield served
