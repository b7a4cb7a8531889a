"""POST /v2/models/{name}/feedback through the real app: live accuracy from labels."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.prometheus import MetricsRegistry
from tests.support.asgi_app import running_gateway

ROWS = [[0.5, -1.0, 0.25, 2.0], [3.0, 2.0, 0.0, 0.0], [-2.5, -1.0, 1.0, 0.5], [-3.0, 0.1, 0.0, 0.0]]


@pytest.fixture
async def client(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, "tok", metrics=metrics) as served:
        served.http.state = served.state  # type: ignore[attr-defined]
        yield served.http


async def predict(http: httpx.AsyncClient, rows, request_id: str | None = None, model="clf"):
    headers = {"x-request-id": request_id} if request_id else {}
    response = await http.post(f"/predict/{model}", json={"instances": rows}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_labels_give_live_accuracy_and_the_gauge(client):
    predicted = {}
    for i, row in enumerate(ROWS):
        answer = await predict(client, [row], f"req-{i}")
        assert answer["id"] == f"req-{i}"
        predicted[f"req-{i}"] = answer["predictions"][0]
    # one generated id, as a client that sent none sees it
    plain = await client.post("/predict/clf", json={"instances": [ROWS[1]]})
    generated = plain.headers["x-request-id"]
    assert plain.json()["id"] == generated
    items = [{"id": rid, "label": label} for rid, label in predicted.items()]
    items[0]["label"] = 1 - items[0]["label"]  # one wrong prediction
    items[1]["label"] = str(items[1]["label"])  # "1" matches class 1 like 1 does
    items.append({"id": generated, "label": plain.json()["predictions"][0]})
    items.append({"id": "never-served", "label": 1})
    answer = await client.post("/v2/models/clf/feedback", json=items)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "accepted": 5,
        "labelled_rows": 5,
        "unknown": ["never-served"],
        "expired": 0,
        "duplicate": [],
        "invalid": [],
    }
    assert answer.headers["x-request-id"]
    feedback = client.state.feedback
    assert feedback.live_accuracy("clf", "1.0.0", since=0.0) == (0.8, 5)
    assert feedback.live_accuracy("clf", "1.0.0", since=time.time() + 60) == (None, 0)
    assert feedback.labelled_count("clf") == 5
    quality = feedback.get("clf").quality("1.0.0")
    assert quality["accuracy"] == 0.8 and set(quality) == {
        "labelled",
        "accuracy",
        "precision",
        "recall",
    }

    again = await client.post("/v2/models/clf/feedback", json={"id": "req-1", "label": 1})
    assert again.json()["duplicate"] == ["req-1"] and again.json()["accepted"] == 0

    client.state.monitoring.tasks.gauges(client.state.monitoring.recorder("clf", "1.0.0"))
    text = (await client.get("/metrics")).text
    accuracy = {
        s.labels["version"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "modelgate_live_accuracy"
    }
    assert accuracy == {"1.0.0": 0.8}


async def test_multi_row_requests_invalid_labels_and_expiry(client):
    three = await predict(client, ROWS[:3], "batch-1")
    labels = three["predictions"]
    short = await client.post("/v2/models/clf/feedback", json={"id": "batch-1", "label": 1})
    (invalid,) = short.json()["invalid"]
    assert invalid["id"] == "batch-1" and "list of 3 labels" in invalid["error"]
    ok = await client.post("/v2/models/clf/feedback", json={"id": "batch-1", "label": labels})
    assert ok.json()["accepted"] == 1 and ok.json()["labelled_rows"] == 3
    await predict(client, [ROWS[0]], "odd-label")
    odd = await client.post("/v2/models/clf/feedback", json={"id": "odd-label", "label": 7})
    assert "is not a class of version 1.0.0" in odd.json()["invalid"][0]["error"]

    await predict(client, [ROWS[1]], "old")
    store = client.state.feedback
    store.clock = lambda: time.time() + store.ttl_s + 1  # a day later
    late = await client.post("/v2/models/clf/feedback", json=[{"id": "old", "label": 1}])
    assert late.json()["expired"] == 1 and late.json()["accepted"] == 0


async def test_regressor_labels_give_mae(client):
    answer = await predict(client, ROWS[:2], "reg-1", model="reg")
    truth = [v + 0.5 for v in answer["predictions"]]
    response = await client.post("/v2/models/reg/feedback", json={"id": "reg-1", "label": truth})
    assert response.json()["accepted"] == 1
    tables = client.state.feedback.get("reg")
    assert tables.quality("1.0.0")["mae"] == pytest.approx(0.5, abs=1e-5)
    assert client.state.feedback.live_accuracy("reg", "1.0.0", 0.0) == (None, 0)
    assert client.state.feedback.labelled_count("reg") == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "invalid JSON"),
        (b"[]", "no feedback"),
        (b'{"label": 1}', "'id' must be the request id"),
        (b'{"id": "x"}', "'label' is missing"),
        (b'[{"id": "x", "label": 1}, 5]', "feedback item 1 must be an object"),
    ],
)
async def test_malformed_bodies_are_400(client, body, fragment):
    response = await client.post("/v2/models/clf/feedback", content=body)
    assert response.status_code == 400 and fragment in response.json()["error"]


async def test_unknown_model_and_monitoring_off(client, zoo_home):
    missing = await client.post("/v2/models/nope/feedback", json={"id": "x", "label": 1})
    assert missing.status_code == 404
    metrics = MetricsRegistry(multiprocess_dir=None)
    async with running_gateway(zoo_home, "tok", metrics=metrics, monitoring=False) as served:
        off = await served.http.post("/v2/models/clf/feedback", json={"id": "x", "label": 1})
    assert off.status_code == 503 and "MODELGATE_MONITORING" in off.json()["error"]
