"""Drift and health endpoints (and the drift gauges) on live traffic through the real app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from tests.support.asgi_app import running_gateway
from tests.support.polling import wait_until_async
from tests.support.publishing import publish_logistic
from tests.support.registry_copy import build_template, private_copy

TOKEN = "reports-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
N_FEATURES = 10
SHIFTED = ("x2", "x5", "x7")
NAMES = [f"x{j}" for j in range(N_FEATURES)]


async def _build_wide(root: Path) -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(5000, N_FEATURES)), columns=NAMES)
    frame["y"] = (frame["x0"] - frame["x1"] + 0.3 * frame["x2"] > 0).astype(int)
    await publish_logistic(root, "wide", frame, NAMES)


@pytest.fixture(scope="module")
def wide_template(tmp_path_factory) -> Path:
    """A registry with "wide": 10 standard-normal features, reference from 5,000 rows."""
    return build_template(tmp_path_factory, "wide", _build_wide)


async def _client(home: Path, **overrides) -> AsyncIterator[httpx.AsyncClient]:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(home, TOKEN, metrics=metrics, **overrides) as served:
        served.http.app = served.app  # type: ignore[attr-defined]
        yield served.http


@pytest.fixture
async def wide(wide_template, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    home = private_copy(wide_template, tmp_path)
    async for http in _client(home, ring_capacity=1000, drift_interval_s=0.1):
        yield http


async def send(http: httpx.AsyncClient, rows: np.ndarray, model: str = "wide") -> None:
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        response = await http.post(f"/predict/{model}", json={"instances": chunk.tolist()})
        assert response.status_code == 200, response.text


def gauges(text: str, name: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[sample.labels.get("feature", "")] = sample.value
    return out


async def test_half_sigma_shift_in_three_features_is_flagged(wide):
    rng = np.random.default_rng(5)
    await send(wide, rng.normal(size=(600, N_FEATURES)))
    calm = (await wide.get("/admin/models/wide/drift", headers=AUTH)).json()
    (version,) = calm["versions"]
    assert version["version"] == "1.0.0" and version["primary"] is True
    assert version["drifted_features"] == [] and version["share_drifted"] == 0.0

    shifted = rng.normal(size=(1000, N_FEATURES))
    for name in SHIFTED:
        shifted[:, NAMES.index(name)] += 0.5
    await send(wide, shifted)  # one whole window (capacity 1000) of shifted rows
    report = (await wide.get("/admin/models/wide/drift", headers=AUTH)).json()
    (version,) = report["versions"]
    assert version["window"]["size"] == 1000 and version["window"]["capacity"] == 1000
    assert version["window"]["recorded_total"] == 1600
    assert version["window"]["time_span_s"] >= 0 and version["n_samples"] == 1000
    assert version["drifted_features"] == list(SHIFTED)
    assert version["share_drifted"] == pytest.approx(0.3) == version["drift_score"]
    by_name = {f["name"]: f for f in version["features"]}
    assert set(by_name) == set(NAMES)
    for name, feature in by_name.items():
        assert feature["test"] == "ks" and feature["kind"] == "numerical"
        assert 0.0 <= feature["statistic"] <= 1.0 and 0.0 <= feature["pvalue"] <= 1.0
        assert feature["drifted"] is (name in SHIFTED)
        assert (feature["psi"] >= 0.2) is (name in SHIFTED)
    assert version["prediction"]["kind"] == "classes" and version["prediction"]["n"] == 1000

    # the timer exports the same PSI values as gauges (once a tick has run on the full
    # shifted window: a tick during the send saw part of it)
    async def psi_gauges() -> dict[str, float]:
        return gauges((await wide.get("/metrics")).text, "modelgate_feature_psi")

    def complete(psi: dict[str, float]) -> bool:
        return len(psi) == N_FEATURES and psi["x5"] == pytest.approx(by_name["x5"]["psi"])

    psi = await wait_until_async(psi_gauges, 5.0, 0.05, done=complete)
    assert {name for name, value in psi.items() if value >= 0.2} == set(SHIFTED)
    assert psi["x5"] == pytest.approx(by_name["x5"]["psi"])
    predicted = gauges((await wide.get("/metrics")).text, "modelgate_prediction_psi")
    assert predicted[""] == pytest.approx(version["prediction"]["psi"])


async def test_categorical_features_get_a_chi_squared_test(zoo_home):
    rng = np.random.default_rng(3)
    async for http in _client(zoo_home, drift_min_samples=50):
        a, b = rng.normal(size=120), rng.normal(size=120)
        plans = rng.choice(["basic", "pro"], 120)
        rows = [
            {"a": float(x), "b": float(y), "plan": str(plan)}
            for x, y, plan in zip(a, b, plans, strict=True)
        ]
        for start in range(0, 120, 30):
            answer = await http.post("/predict/mixed", json={"instances": rows[start : start + 30]})
            assert answer.status_code == 200
        report = (await http.get("/admin/models/mixed/drift", headers=AUTH)).json()
    features = {f["name"]: f for f in report["versions"][0]["features"]}
    plan = features["plan"]
    assert plan["kind"] == "categorical" and plan["test"] == "chi2"
    assert plan["n"] == 120 and plan["dof"] >= 1
    # "team" never arrives: its share is gone, the PSI shows it
    assert plan["drifted"] is True and plan["psi"] >= 0.2
    assert features["a"]["test"] == "ks" and features["a"]["n"] == 120


async def test_admin_token_unknown_model_and_monitoring_off(zoo_home):
    async for http in _client(zoo_home):
        for what in ("drift", "health"):
            assert (await http.get(f"/admin/models/clf/{what}")).status_code == 401
            wrong = {"authorization": "Bearer nope"}
            assert (await http.get(f"/admin/models/clf/{what}", headers=wrong)).status_code == 401
            unknown = await http.get(f"/admin/models/nope/{what}", headers=AUTH)
            assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    async for http in _client(zoo_home, monitoring=False):
        off = await http.get("/admin/models/clf/drift", headers=AUTH)
        assert off.status_code == 503 and "MODELGATE_MONITORING" in off.json()["error"]


LOW = [0.5, -1.0, 0.25, 2.0]  # clf 1.0.0: top probability ~0.55
SURE = [3.0, 2.0, 0.0, 0.0]  # ~0.99


async def test_health_verdicts_fire_on_their_thresholds(zoo_home):
    async for http in _client(zoo_home):
        body = {"instances": [LOW] * 3 + [SURE]}  # 75 % low confidence
        for _ in range(5):
            assert (await http.post("/predict/clf", json=body)).status_code == 200
        assert (await http.post("/predict/clf", json={"instances": [[1.0]]})).status_code == 400
        report = (await http.get("/admin/models/clf/health", headers=AUTH)).json()
    assert report["model"] == "clf" and report["healthy"] is False
    first, staging = report["versions"]
    assert (first["version"], staging["version"]) == ("1.0.0", "1.1.0")
    assert first["total_predictions"] == 20 and first["low_confidence_rate"] == 0.75
    assert first["issues"] == ["High low-confidence rate: 75.00%"]
    assert first["requests"] == 6 and first["input_errors"] == 1 and first["error_rate"] == 0.0
    assert first["input_error_rate"] == pytest.approx(1 / 6)
    assert first["prediction_distribution"] == {"0": 0, "1": 20}
    assert first["p50_latency_ms"] > 0 and first["thresholds"]["max_low_confidence_rate"] == 0.15
    assert staging["healthy"] is True and staging["total_predictions"] == 0

    # tight latency and error thresholds: a version whose requests fail with 5xx
    async for http in _client(zoo_home, health_max_p95_ms=0.001, health_max_error_rate=0.0):
        pinned = "/predict/clf/versions/1.1.0"
        for _ in range(3):
            assert (await http.post(pinned, json={"instances": [SURE]})).status_code == 200
        variant = http.app.state.gateway.holder.current.models["clf"].variants["1.1.0"]
        await variant.batcher.aclose()  # it is being unloaded: 503 from now on
        for _ in range(2):
            assert (await http.post(pinned, json={"instances": [SURE]})).status_code == 503
        report = (await http.get("/admin/models/clf/health", headers=AUTH)).json()
    staging = report["versions"][1]
    assert staging["server_errors"] == 2 and staging["requests"] == 5
    assert staging["error_rate"] == pytest.approx(0.4)
    assert staging["issues"][0].startswith("High p95 latency")
    assert staging["issues"][1] == "High error rate: 40.00%"
    assert report["versions"][0]["healthy"] is True  # no traffic, nothing to judge


async def test_low_confidence_warning_is_rate_limited(zoo_home, caplog):
    caplog.set_level(logging.WARNING, logger="modelgate.monitoring")
    async for http in _client(zoo_home, drift_interval_s=0.1, drift_min_samples=20):
        assert (await http.post("/predict/clf", json={"instances": [LOW] * 30})).is_success

        def warnings_seen() -> list[str]:
            messages = [record.getMessage() for record in caplog.records]
            return [m for m in messages if "confidence below" in m]

        await wait_until_async(warnings_seen, 5.0, 0.05)
        # more low-confidence traffic and several more timer ticks: still one warning
        for _ in range(3):
            assert (await http.post("/predict/clf", json={"instances": [LOW] * 10})).is_success
            await asyncio.sleep(0.15)
    (message,) = warnings_seen()
    assert message.startswith("clf 1.0.0: 100.0% of the last 30 predictions")
