"""MODELGATE_DRIFT_WINDOW_S through the real app: reports judge only the recent rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from tests.support.asgi_app import running_gateway

TOKEN = "window-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
ROW = [0.5, -1.0, 0.25, 2.0]


async def _predict(http: httpx.AsyncClient, rows: int) -> None:
    response = await http.post("/predict/clf", json={"instances": [ROW] * rows})
    assert response.status_code == 200, response.text


async def test_drift_and_health_state_and_use_the_time_bound(zoo_home: Path) -> None:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, TOKEN, metrics=metrics, drift_window_s=2.0) as served:
        http = served.http
        await _predict(http, 30)
        await asyncio.sleep(2.5)  # those 30 rows are now older than the 2 s bound
        await _predict(http, 7)
        drift = (await http.get("/admin/models/clf/drift", headers=AUTH)).json()
        health = (await http.get("/admin/models/clf/health", headers=AUTH)).json()
    first = drift["versions"][0]
    assert first["version"] == "1.0.0"
    assert first["window"]["size"] == 7 and first["n_samples"] == 7
    assert first["window"]["recorded_total"] == 37
    assert first["window"]["max_age_s"] == 2.0 and first["max_age_s"] == 2.0
    assert 0.0 <= first["window"]["time_span_s"] <= 2.0
    assert first["drifted"] is None and first["reason"] == "insufficient samples"
    version = health["versions"][0]
    assert version["total_predictions"] == 7 and version["window"]["max_age_s"] == 2.0
    assert version["requests"] == 1  # the request of the recent rows only


async def test_without_the_bound_the_count_window_keeps_every_row(zoo_home: Path) -> None:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, TOKEN, metrics=metrics) as served:
        await _predict(served.http, 30)
        await _predict(served.http, 7)
        drift = (await served.http.get("/admin/models/clf/drift", headers=AUTH)).json()
    first = drift["versions"][0]
    assert first["window"]["size"] == 37 and first["n_samples"] == 37
    assert first["window"]["max_age_s"] is None and first["max_age_s"] is None
