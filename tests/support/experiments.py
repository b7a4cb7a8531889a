"""Helpers of the outcome tests: a running experiment written as the control plane stores
it (state key ``experiment/<model>``), and predictions that say which version answered."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from registry.models import Route
from registry.sqlite.store import SqliteRegistry, open_registry

ROW = [0.5, -1.0, 0.25, 2.0]
METRICS = [
    {"name": "conversion", "kind": "binary"},
    {"name": "revenue", "kind": "continuous"},
    {"name": "p95_latency_ms", "kind": "guardrail"},
]


def experiment_json(
    variants: dict[str, float], started_at: float, status: str = "running", exp_id: str = "exp-1"
) -> dict[str, Any]:
    return {
        "id": exp_id,
        "model": "clf",
        "status": status,
        "variants": variants,
        "metrics": METRICS,
        "started_at": started_at,
    }


async def start_experiment(
    registry: SqliteRegistry,
    variants: dict[str, float] | None = None,
    started_at: float | None = None,
) -> None:
    """Route the variants sticky and store the running experiment, as the control plane would."""
    variants = variants or {"1.0.0": 50.0, "1.1.0": 50.0}
    deployment = await registry.get_deployment("clf")
    routes = tuple(Route(v, w) for v, w in variants.items())
    await registry.set_deployment(replace(deployment, routes=routes, sticky=True))
    at = time.time() - 0.001 if started_at is None else started_at
    await registry.put_state("experiment/clf", experiment_json(variants, at))


async def start_experiment_at(home: Path) -> None:
    """``start_experiment`` with its defaults on the SQLite registry at ``home``."""
    registry = await open_registry(home)
    try:
        await start_experiment(registry)
    finally:
        await registry.close()


async def predict(
    http: httpx.AsyncClient, request_id: str, *, version: str | None = None, key: str | None = None
) -> str:
    """One prediction; the version that answered it."""
    headers = {"x-request-id": request_id}
    if version is not None:
        headers["x-model-version"] = version
    if key is not None:
        headers["x-routing-key"] = key
    response = await http.post("/predict/clf", json={"instances": [ROW]}, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["x-model-version"]
