"""Multivariate drift and estimated accuracy through the real app: drift and health JSON,
gauges, health verdict, for a version registered with a labelled sample."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from gateway.app import create_app
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.settings import Settings
from tests.support.publishing import publish_logistic

TOKEN = "label-free-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
NAMES = ["a", "b", "c"]


def rows(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    cov = [[1.0, corr, 0.0], [corr, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return rng.multivariate_normal(np.zeros(3), cov, size=n)


@asynccontextmanager
async def gateway(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app serving ``home``, drift recomputed every 0.1 s."""
    settings = Settings.from_environ(
        {}, home=str(home), admin_token=TOKEN, ring_capacity=1000, drift_interval_s=0.1
    )
    app = create_app(settings, metrics=MetricsRegistry(multiprocess_dir=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


@pytest.fixture
async def pair(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    home = tmp_path / "home"
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rows(rng, 4000, 0.8), columns=NAMES)
    frame["y"] = (rng.random(4000) < 1 / (1 + np.exp(-(frame["a"] + frame["c"])))).astype(int)
    await publish_logistic(home, "pair", frame, NAMES)
    async with gateway(home) as http:
        yield http


async def send(http: httpx.AsyncClient, data: np.ndarray, model: str = "pair") -> None:
    for start in range(0, len(data), 100):
        body = {"instances": data[start : start + 100].tolist()}
        response = await http.post(f"/predict/{model}", json=body)
        assert response.status_code == 200, response.text


def gauge(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_correlation_flip_reaches_drift_health_and_gauges(pair) -> None:
    rng = np.random.default_rng(8)
    await send(pair, rows(rng, 1000, 0.8))
    calm = (await pair.get("/admin/models/pair/drift", headers=AUTH)).json()
    (version,) = calm["versions"]
    assert version["multivariate"]["drifted"] is False
    assert version["multivariate"]["components"] >= 1
    health = (await pair.get("/admin/models/pair/health", headers=AUTH)).json()
    (entry,) = health["versions"]
    estimate = entry["estimated_performance"]
    assert estimate["n"] == 1000 and estimate["realized_accuracy"] is None  # no labels yet
    accuracy = estimate["accuracy"]
    assert 0.5 < accuracy["lower"] <= accuracy["value"] <= accuracy["upper"] <= 1.0
    assert estimate["roc_auc"]["value"] > 0.5
    assert entry["multivariate_drift"]["drifted"] is False

    for _ in range(100):  # the drift timer exports both gauges
        text = (await pair.get("/metrics")).text
        error = gauge(text, "modelgate_multivariate_drift_error")
        if error is not None and gauge(text, "modelgate_estimated_accuracy") is not None:
            break
        await asyncio.sleep(0.05)
    assert error == pytest.approx(version["multivariate"]["error"], rel=0.2)
    upper = gauge(text, "modelgate_multivariate_drift_upper_bound")
    lower = gauge(text, "modelgate_multivariate_drift_lower_bound")
    assert upper == pytest.approx(version["multivariate"]["upper"], rel=0.2)
    assert lower == pytest.approx(version["multivariate"]["lower"], rel=0.2)
    assert lower < error < upper  # the window the gauges saw was calm too
    assert gauge(text, "modelgate_estimated_accuracy") == pytest.approx(accuracy["value"], abs=0.05)

    await send(pair, rows(rng, 1000, -0.8))  # a whole window with the relation flipped
    report = (await pair.get("/admin/models/pair/drift", headers=AUTH)).json()
    (version,) = report["versions"]
    assert version["drifted_features"] == []  # the marginals did not move
    assert version["multivariate"]["drifted"] is True
    assert version["multivariate"]["error"] > version["multivariate"]["upper"]
    health = (await pair.get("/admin/models/pair/health", headers=AUTH)).json()
    assert health["healthy"] is False
    (entry,) = health["versions"]
    assert any(issue.startswith("Multivariate drift") for issue in entry["issues"])


def test_drift_verb_prints_the_multivariate_line_or_not_available() -> None:
    from gateway.cli.monitor_commands import render_drift

    window = {"size": 500, "capacity": 1000, "time_span_s": 2.0}
    base = {"version": "1.0.0", "weight": 100.0, "primary": True, "window": window,
            "drifted": False, "share_drifted": 0.0, "features": [], "prediction": None}  # fmt: skip
    legacy = render_drift({"model": "m", "versions": [{**base, "multivariate": None}]})
    assert "multivariate drift: not available" in legacy
    flagged = {"n": 500, "error": 1.4, "lower": 0.9, "upper": 1.0, "drifted": True,
               "reason": None, "components": 2, "reference_error": 0.95}  # fmt: skip
    text = render_drift({"model": "m", "versions": [{**base, "multivariate": flagged}]})
    assert "reconstruction error 1.4000, bounds [0.9000, 1.0000], drifted yes" in text


COLOURS = np.array(["red", "green", "blue"])


def colours(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Labels drawn from softmax(2x)."""
    true = np.exp(2.0 * x) / np.exp(2.0 * x).sum(axis=1, keepdims=True)
    return COLOURS[(rng.random((len(x), 1)) > true.cumsum(axis=1)).sum(axis=1)]


async def test_multiclass_estimated_roc_auc_reaches_health_and_gauge(tmp_path) -> None:
    home = tmp_path / "home"
    rng = np.random.default_rng(14)
    frame = pd.DataFrame(rng.normal(size=(4000, 3)), columns=NAMES)
    frame["y"] = colours(rng, frame[NAMES].to_numpy())
    model = await publish_logistic(home, "tri", frame, NAMES)
    async with gateway(home) as http:
        rng = np.random.default_rng(15)
        data = rng.normal(size=(600, 3)) + np.array([0.5, -0.5, 0.0])  # covariate shift
        await send(http, data, "tri")
        health = (await http.get("/admin/models/tri/health", headers=AUTH)).json()
        (entry,) = health["versions"]
        estimate = entry["estimated_performance"]
        assert estimate["n"] == 600
        auc = estimate["roc_auc"]
        assert 0.5 < auc["lower"] <= auc["value"] <= auc["upper"] <= 1.0
        # what labels would have shown (the same law, so the calibration holds)
        realized = roc_auc_score(
            colours(rng, data),
            model.predict_proba(pd.DataFrame(data, columns=NAMES)),
            multi_class="ovr",
        )
        assert auc["value"] == pytest.approx(realized, abs=0.03)
        for _ in range(100):
            text = (await http.get("/metrics")).text
            if gauge(text, "modelgate_estimated_roc_auc") is not None:
                break
            await asyncio.sleep(0.05)
        assert gauge(text, "modelgate_estimated_roc_auc") == pytest.approx(auc["value"], abs=1e-9)
