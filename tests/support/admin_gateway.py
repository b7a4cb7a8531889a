"""The real app with an admin client and an anonymous one, as the admin API tests drive it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from registry.sqlite.store import open_registry
from tests.support.asgi_app import InProcessApp

ADMIN_TOKEN = "admin-test-token"
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
ROW = {"instances": [[0.5, -1.0, 0.25, 2.0]]}


class AdminGateway:
    """The app, an authorised client (``http``), an anonymous one (``anon``), its home."""

    token = ADMIN_TOKEN

    def __init__(self, served: InProcessApp, anon: httpx.AsyncClient, home: Path) -> None:
        self.app, self.http, self.anon, self.home = served.app, served.http, anon, Path(home)
        self.state = served.state

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
