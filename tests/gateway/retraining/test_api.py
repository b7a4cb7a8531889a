"""``GET|PUT /admin/models/{name}/retraining`` over HTTP (ASGI) against a real registry."""

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
from gateway.retraining.api import retraining
from gateway.retraining.policy import REASONS, RetrainingInputs
from gateway.retraining.trigger import RetrainingMonitor, TriggerConfig
from gateway.settings import Settings
from registry.models import Stage
from registry.sqlite.store import SqliteRegistry, open_registry
from tests.support.asgi_app import asgi_client
from tests.support.fake_versions import add_version

TOKEN = "retraining-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
URL = "/admin/models/churn/retraining"


@dataclass(eq=False)
class AppState:
    settings: Settings
    auth: AdminAuth
    registry: SqliteRegistry
    retraining: RetrainingMonitor | None
    publisher: Any = None


async def live_inputs(model: str, version: str) -> RetrainingInputs:
    return RetrainingInputs(
        live_accuracy=0.81, drift_score=0.12, low_confidence_rate=0.03, new_labelled_samples=42
    )


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[SqliteRegistry]:
    store = await open_registry(tmp_path / "home")
    for model, stage in (("churn", Stage.PRODUCTION), ("draft", Stage.STAGING)):
        await add_version(store, model, "1.0.0", stage)
    try:
        yield store
    finally:
        await store.close()


def make_client(tmp_path: Path, state: AppState) -> httpx.AsyncClient:
    endpoint = admin_endpoint(retraining, state)  # type: ignore[arg-type]  # the fields it reads
    app = Starlette(
        routes=[Route("/admin/models/{name}/retraining", endpoint, methods=["GET", "PUT"])]
    )
    return asgi_client(app)


@pytest.fixture
async def client(tmp_path: Path, registry: SqliteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    home = tmp_path / "home"
    monitor = RetrainingMonitor(
        registry, live_inputs, TriggerConfig(webhook_url="http://127.0.0.1:9/hook?k=s"), home=home
    )
    state = AppState(Settings(home=home), AdminAuth(TOKEN), registry, monitor)
    async with make_client(tmp_path, state) as http:
        yield http


async def test_get_reports_every_reason_with_its_value(client: httpx.AsyncClient) -> None:
    response = await client.get(URL, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "churn" and body["version"] == "1.0.0"
    assert body["retrain"] is True and body["triggered"] == ["performance_degradation"]
    assert [r["reason"] for r in body["reasons"]] == list(REASONS)
    by_reason = {r["reason"]: r for r in body["reasons"]}
    assert by_reason["performance_degradation"] == {
        "reason": "performance_degradation",
        "value": 0.81,
        "threshold": 0.85,
        "triggered": True,
    }
    assert by_reason["data_drift"]["value"] == 0.12 and not by_reason["data_drift"]["triggered"]
    assert by_reason["scheduled"]["value"] is None  # no training date in the lineage
    assert by_reason["new_data_available"]["value"] == 42
    trigger = body["trigger"]
    assert trigger["configured"] is True and trigger["webhook"] == "http://127.0.0.1:9/hook"
    assert trigger["cooldown_s"] == 86400 and trigger["last_fired_at"] is None


async def test_put_overrides_the_policy_per_model(client: httpx.AsyncClient) -> None:
    body = {"policy": {"min_accuracy_threshold": 0.8}, "cooldown_s": 600}
    response = await client.put(URL, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["retrain"] is False
    assert response.json()["policy"]["min_accuracy_threshold"] == 0.8
    assert response.json()["trigger"]["cooldown_s"] == 600
    again = await client.get(URL, headers=AUTH)
    assert again.json()["retrain"] is False


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    [
        ("PUT", URL, b"{nope", 400, "invalid JSON"),
        ("PUT", URL, b'{"policy": {"bogus": 1}}', 400, "unknown retraining policy fields"),
        ("PUT", URL, b'{"cooldown_s": "daily"}', 400, "cooldown_s must be"),
        ("GET", "/admin/models/nope/retraining", None, 404, "nope"),
        ("GET", "/admin/models/draft/retraining", None, 409, "no production version"),
    ],
)
async def test_errors(
    client: httpx.AsyncClient, method: str, url: str, body: bytes | None, status: int, message: str
) -> None:
    response = await client.request(method, url, content=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


async def test_auth_and_a_missing_monitor(tmp_path: Path, registry: SqliteRegistry) -> None:
    state = AppState(Settings(home=tmp_path / "home"), AdminAuth(TOKEN), registry, None)
    async with make_client(tmp_path, state) as http:
        assert (await http.get(URL)).status_code == 401
        missing = await http.get(URL, headers=AUTH)
        assert missing.status_code == 503
        assert missing.json() == {"error": "the retraining monitor is not running"}
