"""Fixtures for the admin API tests: the real app (lifespan, publisher, watcher) on a copy
of the zoo registry, with the admin routes appended when routes.py does not have them yet."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import Settings
from registry.sqlite.store import open_registry

ADMIN_TOKEN = "admin-test-token"
ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}


class AdminGateway:
    """The app, an authorised client (``http``), an anonymous one (``anon``), its home."""

    token = ADMIN_TOKEN

    def __init__(self, app: Starlette, http: httpx.AsyncClient, anon: httpx.AsyncClient, home):
        self.app, self.http, self.anon, self.home = app, http, anon, Path(home)
        self.state = app.state.gateway

    async def served(self, n: int = 40, **headers: str) -> Counter[str]:
        """Versions answering ``n`` routed /predict/clf requests."""
        seen: Counter[str] = Counter()
        for _ in range(n):
            response = await self.anon.post("/predict/clf", json=ROW, headers=headers)
            assert response.status_code == 200, response.text
            seen[response.headers["x-model-version"]] += 1
        return seen

    async def registry_state(self) -> dict[str, Any]:
        """Everything a refused change must leave alone, read through a new connection."""
        registry = await open_registry(self.home)
        try:
            models = await registry.list_models()
            return {
                "generation": await registry.generation(),
                "audit": [e.id for e in await registry.audit(limit=10_000)],
                "deployments": {m.name: await registry.get_deployment(m.name) for m in models},
                "stages": {
                    m.name: {v.version: v.stage for v in await registry.list_versions(m.name)}
                    for m in models
                },
            }
        finally:
            await registry.close()


@pytest.fixture
async def admin_gw(zoo_home) -> AsyncIterator[AdminGateway]:
    """clf 1.0.0 production, 1.1.0 staging, 2.0.0 registered (stage none); reg; mixed."""
    settings = Settings.from_environ(
        os.environ, home=str(zoo_home), admin_token=ADMIN_TOKEN, poll_interval_ms=20
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://gw", headers=auth) as http,
            httpx.AsyncClient(transport=transport, base_url="http://gw") as anon,
        ):
            yield AdminGateway(app, http, anon, zoo_home)
