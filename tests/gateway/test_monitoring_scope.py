"""Drift, health and shadow reports say whose window they describe (this worker, this node)."""

from __future__ import annotations

import os
import socket

import httpx

from gateway.app import create_app
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.settings import Settings

TOKEN = "scope-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


async def test_every_window_report_names_its_worker_and_node(zoo_home) -> None:
    settings = Settings.from_environ({}, home=str(zoo_home), admin_token=TOKEN)
    app = create_app(settings, metrics=MetricsRegistry(multiprocess_dir=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            answer = await http.post("/predict/clf", json={"instances": [[0.5, -1.0, 0.25, 2.0]]})
            assert answer.status_code == 200
            for what in ("drift", "health", "shadow"):
                reply = await http.get(f"/admin/models/clf/{what}", headers=AUTH)
                assert reply.status_code == 200, reply.text
                body = reply.json()
                assert body["scope"] == "this worker"
                assert (body["node"], body["worker"]) == (socket.gethostname(), os.getpid())
