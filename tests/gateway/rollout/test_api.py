"""``POST|GET|DELETE /admin/models/{name}/rollout`` over HTTP (ASGI) against a real registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.admin.auth import AdminAuth
from gateway.admin.http import admin_endpoint
from gateway.rollout.api import rollout
from gateway.settings import Settings
from registry.models import Stage
from registry.sqlite.store import SqliteRegistry, open_registry
from tests.support.asgi_app import asgi_client
from tests.support.fake_versions import add_version

TOKEN = "rollout-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
URL = "/admin/models/churn/rollout"


@dataclass(eq=False)
class AppState:
    """The fields of GatewayState the admin handlers read."""

    settings: Settings
    auth: AdminAuth
    registry: SqliteRegistry
    publisher: Any = None
    monitoring: Any = None


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[SqliteRegistry]:
    store = await open_registry(tmp_path / "home")
    await add_version(store, "churn", "1.0.0", Stage.PRODUCTION)
    await add_version(store, "churn", "1.1.0", Stage.STAGING)
    await add_version(store, "churn", "0.9.0", Stage.ARCHIVED)
    await add_version(store, "fresh", "1.0.0", Stage.STAGING)  # no production version
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def client(tmp_path: Path, registry: SqliteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    state = AppState(Settings(home=tmp_path / "home"), AdminAuth(TOKEN), registry)
    endpoint = admin_endpoint(rollout, state)  # type: ignore[arg-type]  # the fields it reads
    app = Starlette(
        routes=[Route("/admin/models/{name}/rollout", endpoint, methods=["GET", "POST", "DELETE"])]
    )
    async with asgi_client(app) as http:
        yield http


BODY = {"candidate": "1.1.0", "steps": [5, 25, 50, 100], "interval_s": 60, "min_requests": 100}


async def test_start_read_and_cancel(client: httpx.AsyncClient, registry: SqliteRegistry) -> None:
    started = await client.post(URL, json=BODY, headers={**AUTH, "x-actor": "alice"})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "running" and body["spec"]["champion"] == "1.0.0"
    assert body["progress"] == {"step": 1, "steps": 4, "canary_weight": 5.0}
    assert body["weights"] == {"1.0.0": 95.0, "1.1.0": 5.0}
    assert body["created_by"] == "admin-api:alice"
    deployment = await registry.get_deployment("churn")
    assert {r.version: r.weight for r in deployment.routes} == {"1.0.0": 95.0, "1.1.0": 5.0}

    again = await client.post(URL, json=BODY, headers=AUTH)
    assert again.status_code == 409
    assert "already running" in again.json()["error"]

    read = await client.get(URL, headers=AUTH)
    assert read.status_code == 200 and read.json()["id"] == body["id"]

    cancelled = await client.delete(URL, params={"reason": "wrong build"}, headers=AUTH)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["reason"] == "cancelled by admin-api: wrong build"
    deployment = await registry.get_deployment("churn")
    assert {r.version: r.weight for r in deployment.routes} == {"1.0.0": 100.0}
    assert (await client.delete(URL, headers=AUTH)).status_code == 409
    # a finished rollout does not block a new one
    assert (await client.post(URL, json=BODY, headers=AUTH)).status_code == 201


async def test_admin_token_required(client: httpx.AsyncClient) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = await client.request(method, URL)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "error" in response.json()
    wrong = await client.get(URL, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "invalid JSON"),
        (b"", 400, "empty body"),
        (b"[1, 2]", 400, "JSON object"),
        ({"steps": [5, 100], "interval_s": 1}, 400, "candidate must be"),
        ({"candidate": "1.1.0", "interval_s": 1}, 400, "missing 'steps'"),
        ({**BODY, "steps": [5, 5, 100]}, 400, "strictly increasing"),
        ({**BODY, "steps": [50, 25]}, 400, "strictly increasing"),
        ({**BODY, "steps": [0, 50]}, 400, "in (0, 100]"),
        ({**BODY, "steps": [5, 150]}, 400, "in (0, 100]"),
        ({**BODY, "steps": [100]}, 400, "first step must be below 100"),
        ({**BODY, "steps": []}, 400, "non-empty list"),
        ({**BODY, "steps": ["a"]}, 400, "must be a number"),
        ({**BODY, "steps": "5,x"}, 400, "comma-separated"),
        ({**BODY, "interval_s": 0}, 400, "interval_s must be > 0"),
        ({**BODY, "interval_s": -5}, 400, "interval_s must be > 0"),
        ({**BODY, "interval_s": "60"}, 400, "finite number"),
        ({"candidate": "1.1.0", "steps": [5, 100]}, 400, "missing 'interval_s'"),
        ({**BODY, "min_requests": 0}, 400, "min_requests must be an integer >= 1"),
        ({**BODY, "min_requests": 1.5}, 400, "min_requests must be an integer"),
        ({**BODY, "max_failed_checks": 0}, 400, "max_failed_checks must be an integer >= 1"),
        ({**BODY, "thresholds": {"bogus": 1}}, 400, "unknown canary threshold 'bogus'"),
        ({**BODY, "thresholds": [1]}, 400, "thresholds must be an object"),
        ({**BODY, "colour": "blue"}, 400, "unknown field 'colour'"),
        ({**BODY, "candidate": "3.0.0"}, 404, "3.0.0"),
        ({**BODY, "candidate": "0.9.0"}, 409, "archived"),
        ({**BODY, "candidate": "1.0.0"}, 409, "already production"),
    ],
)
async def test_bad_requests_get_a_clear_error(
    client: httpx.AsyncClient, registry: SqliteRegistry, body: Any, status: int, message: str
) -> None:
    before = await registry.get_deployment("churn")
    if isinstance(body, bytes):
        response = await client.post(URL, content=body, headers=AUTH)
    else:
        response = await client.post(URL, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert await registry.get_deployment("churn") == before
    assert await registry.get_state("rollout:churn") is None


async def test_unknown_models_and_missing_rollouts(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/admin/models/nope/rollout", headers=AUTH)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    none = await client.get(URL, headers=AUTH)
    assert none.status_code == 404 and none.json()["error"] == "model 'churn' has no rollout"
    assert (await client.delete(URL, headers=AUTH)).status_code == 404
    fresh = await client.post(
        "/admin/models/fresh/rollout", json={**BODY, "candidate": "1.0.0"}, headers=AUTH
    )
    assert fresh.status_code == 409 and "no production version" in fresh.json()["error"]


async def test_an_unreadable_state_does_not_block_a_new_rollout(
    client: httpx.AsyncClient, registry: SqliteRegistry
) -> None:
    await registry.put_state("rollout:churn", {"written": "by hand"})
    assert (await client.get(URL, headers=AUTH)).status_code == 404
    assert (await client.post(URL, json=BODY, headers=AUTH)).status_code == 201
